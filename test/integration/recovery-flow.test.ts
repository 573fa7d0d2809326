// The whole recovery flow in one process, without Kubernetes: reference Coordinators and
// recovery sidecars on 127.0.0.1 (each "pod" a pair with its own state directory and its two
// tokens: audience coordinator-ha for the handler, coordinator-ha-peer for peers; each
// side's verifier takes only its own, so the flow recovers only if each goes where it belongs),
// a fake handler over real TLS, and the real pod-token verifier fed by a local issuer whose
// tokens have the kube claim layout. Each pod is started as the kubelet would: the sidecar
// first, the app only once the sidecar's startup probe passes.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createNetServer, type Server as NetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import express from "express";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startCoordinator, type RunningCoordinator } from "../../src/coordinator/server.ts";
import { runSet } from "../../src/coordinator/user-cli.ts";
import { close, listen } from "../../src/http/listen.ts";
import { handlerTokenVerifier } from "../../src/handler/service.ts";
import { cachedJwksSource } from "../../src/identity/index.ts";
import { PEER_TOKEN_AUDIENCE, TOKEN_AUDIENCE } from "../../src/names.ts";
import { parseSidecarConfig } from "../../src/recovery/config.ts";
import { peerTokenVerifier } from "../../src/recovery/peer-token.ts";
import { fetchFromPeer } from "../../src/recovery/peer-client.ts";
import { createPeerCertificate } from "../../src/recovery/peer-cert.ts";
import { SidecarEnv } from "../../src/recovery/sidecar-env.ts";
import { startSidecar, type RunningSidecar } from "../../src/recovery/sidecar.ts";
import { recipientKey, sealBundle } from "../../src/recovery/transfer.ts";
import { createBundle, encodeBundle } from "../../src/state/bundle.ts";
import { createCa, issueServingCert } from "../../webhook-certs/x509.ts";
import { ISSUER, jwks, podToken, signingKey, type SigningKey } from "../unit/identity/issuer.ts";
import { FakeHandler } from "./fake-handler.ts";

const logger = pino({ level: process.env["LOG_LEVEL"] ?? "silent" });
const NAMESPACE = "default";
const SERVICE_ACCOUNT = "coordinator";

let root: string;
let issuerKey: SigningKey;
let handlerCa: string;
let handler: FakeHandler;
let handlerPort: number;

interface Pod {
  name: string;
  sidecar: RunningSidecar;
  coordinator?: RunningCoordinator;
  /** ms from the sidecar's start until its startup probe passed. */
  startupMs: number;
}
const pods: Pod[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "cha-flow-"));
  issuerKey = await signingKey("ES256");
  const ca = await createCa({ commonName: "test handler CA" });
  handlerCa = ca.certPem;
  const verifier = handlerTokenVerifier(
    ISSUER,
    cachedJwksSource(async () => jwks(issuerKey)),
  );
  handler = new FakeHandler(await issueServingCert(ca, { ips: ["127.0.0.1"] }), verifier);
  handlerPort = await handler.start();
}, 30_000);

afterAll(async () => {
  for (const pod of pods) {
    await pod.sidecar.close();
    await pod.coordinator?.close();
  }
  await handler.stop();
  await rm(root, { recursive: true, force: true });
});

const probe = async (port: number, path: string) => {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, text: await res.text() };
};

/** Starts a pod's sidecar; the returned promise resolves once its startup probe passes. */
async function startPod(name: string, opts: { waitForStartup?: boolean } = {}): Promise<Pod> {
  const dir = join(root, name);
  const stateDir = join(dir, "state");
  await mkdir(stateDir, { recursive: true });
  const tokenFile = join(dir, "token");
  const peerTokenFile = join(dir, "peer-token");
  const uid = `uid-${name}`;
  const podClaims = { namespace: NAMESPACE, serviceAccount: SERVICE_ACCOUNT, podName: name, podUid: uid };
  // As the kubelet writes the two sources of the coordinator-ha-token volume.
  await writeFile(tokenFile, await podToken(issuerKey, { pod: podClaims, audience: TOKEN_AUDIENCE }));
  await writeFile(
    peerTokenFile,
    await podToken(issuerKey, { pod: podClaims, audience: PEER_TOKEN_AUDIENCE }),
  );
  // The app's probe port has to be known before the app starts (it is in the pod spec).
  const appProbePort = await freePort();
  const config = parseSidecarConfig({
    [SidecarEnv.podName]: name,
    [SidecarEnv.podNamespace]: NAMESPACE,
    [SidecarEnv.podUid]: uid,
    [SidecarEnv.podIp]: "127.0.0.1",
    [SidecarEnv.serviceAccount]: SERVICE_ACCOUNT,
    [SidecarEnv.handlerUrl]: `https://127.0.0.1:${handlerPort}`,
    [SidecarEnv.handlerCa]: handlerCa,
    [SidecarEnv.stateDir]: stateDir,
    [SidecarEnv.tokenFile]: tokenFile,
    [SidecarEnv.peerTokenFile]: peerTokenFile,
    [SidecarEnv.peerPort]: "0",
    [SidecarEnv.probePort]: "0",
    [SidecarEnv.commitPort]: "0",
    [SidecarEnv.appReadinessUrl]: `http://127.0.0.1:${appProbePort}/probe/readiness`,
  });
  const started = performance.now();
  const sidecar = await startSidecar(config, {
    verifier: peerTokenVerifier(
      ISSUER,
      cachedJwksSource(async () => jwks(issuerKey)),
    ),
    logger: logger.child({ pod: name }),
    host: "127.0.0.1",
    recoveryTimings: { initialBackoffMs: 20, maxBackoffMs: 200, pollMs: 100 },
    confirmerTimings: {
      pollMs: 20,
      idlePollMs: 160,
      reconfirmMs: 500,
      initialBackoffMs: 20,
      maxBackoffMs: 200,
    },
  });
  handler.pods.set(name, { uid, peerPort: sidecar.peerPort });
  const pod: Pod = { name, sidecar, startupMs: NaN };
  pods.push(pod);
  if (opts.waitForStartup === false) return pod;

  await vi.waitFor(async () => expect((await probe(sidecar.probePort, "/startupz")).status).toBe(200), {
    timeout: 10_000,
    interval: 5,
  });
  pod.startupMs = performance.now() - started;
  // The kubelet starts the app once the sidecar's startup probe passed.
  pod.coordinator = await startCoordinator({
    stateDir,
    apiPort: 0,
    probePort: appProbePort,
    host: "127.0.0.1",
    logger: logger.child({ pod: name, component: "coordinator" }),
    pollMs: 100,
  });
  return pod;
}

async function freePort(): Promise<number> {
  const server = createNetServer();
  const port = await listen(server, 0, "127.0.0.1");
  await close(server);
  return port;
}

async function manifestOf(pod: Pod): Promise<{ status: number; body: Record<string, string> }> {
  const res = await fetch(`http://127.0.0.1:${pod.coordinator!.apiPort}/v1/manifest`);
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

async function waitForConfirmation(pod: string, source: string | null) {
  await vi.waitFor(() => expect(handler.confirmed(pod)?.source).toBe(source), { timeout: 10_000 });
  return handler.confirmed(pod)!;
}

describe("recovery without Kubernetes", () => {
  let first: Pod;
  let initialized: { digest: string; publicKey: string };

  it("first instance: starts uninitialized, is set by its user, turns ready and is confirmed", async () => {
    first = await startPod("coordinator-0");
    expect(first.sidecar.startup()).toEqual({ kind: "first-instance" });
    expect((await manifestOf(first)).status).toBe(503);
    expect(handler.confirmed("coordinator-0")).toBeUndefined();

    const manifestFile = join(root, "manifest.json");
    await writeFile(manifestFile, JSON.stringify({ policies: { web: "sha256:abc" } }));
    const io = { out: () => undefined, err: (l: string) => console.error(l) };
    expect(await runSet({ coordinator: `127.0.0.1:${first.coordinator!.apiPort}`, manifestFile }, io)).toBe(
      0,
    );
    const manifest = await manifestOf(first);
    expect(manifest.status).toBe(200);
    initialized = { digest: manifest.body["digest"]!, publicKey: manifest.body["publicKey"]! };

    const confirmation = await waitForConfirmation("coordinator-0", null);
    expect(confirmation.digest).toBe(initialized.digest);
    expect(confirmation.certSha256).toBe(first.sidecar.certSha256);
  });

  it("second instance: recovers from the first before its app starts, and answers the same key", async () => {
    const second = await startPod("coordinator-1");
    expect(second.sidecar.startup()).toEqual({
      kind: "recovered",
      digest: initialized.digest,
      source: "coordinator-0",
    });
    const manifest = await manifestOf(second);
    expect(manifest.status).toBe(200);
    expect(manifest.body["publicKey"]).toBe(initialized.publicKey);
    expect(manifest.body["digest"]).toBe(initialized.digest);
    const confirmed = performance.now();
    const confirmation = await waitForConfirmation("coordinator-1", "coordinator-0");
    expect(confirmation.digest).toBe(initialized.digest);
    console.log(
      `[figures] recovery of coordinator-1: startup probe passed ${second.startupMs.toFixed(1)} ms after the ` +
        `sidecar started (handler query, TLS to the peer, token check, ECDH + JWE, digest check, atomic write); ` +
        `confirmed ${(performance.now() - confirmed).toFixed(1)} ms after its app started`,
    );
  });

  it("serves nobody whom the handler does not count as a live member, with a valid token", async () => {
    const asked = handler.peerAccessQueries;
    // coordinator-9 has a token as good as a member's, but no pod behind it (deleted, or never one).
    const stranger = {
      namespace: NAMESPACE,
      serviceAccount: SERVICE_ACCOUNT,
      podName: "coordinator-9",
      podUid: "uid-gone",
    };
    const token = await podToken(issuerKey, { pod: stranger, audience: PEER_TOKEN_AUDIENCE });
    const peer = {
      pod: "coordinator-0",
      uid: "uid-coordinator-0",
      ip: "127.0.0.1",
      port: first.sidecar.peerPort,
      digest: initialized.digest,
      certSha256: first.sidecar.certSha256,
    };
    await expect(fetchFromPeer(peer, token)).rejects.toThrow(/peer answered 403: not a live member/);
    expect(handler.peerAccessQueries).toBe(asked + 1);
  });

  it("skips a peer that returns a tampered bundle, and recovers from the next one", async () => {
    const tampered = await startTamperingPeer();
    try {
      handler.extraPeers = [tamperingPeerEntry(tampered, initialized.digest)];
      const third = await startPod("coordinator-2");
      expect(tampered.requests()).toBeGreaterThanOrEqual(1);
      expect(third.sidecar.startup()).toMatchObject({ kind: "recovered", digest: initialized.digest });
      expect(third.sidecar.startup()).not.toMatchObject({ source: "coordinator-7" });
      expect((await manifestOf(third)).body["publicKey"]).toBe(initialized.publicKey);
      // The handler is told which peer failed and why, in at most 200 characters.
      await vi.waitFor(() => expect(handler.confirmed("coordinator-2")).toBeDefined(), { timeout: 10_000 });
      const reason =
        /^bundle digest sha256:[0-9a-f]{64} is not the digest sha256:[0-9a-f]{64} the handler .*…$/;
      const confirmation = handler.confirmations.find(
        (c) => c.pod === "coordinator-2" && c.digest === initialized.digest,
      );
      expect(confirmation).toMatchObject({
        source: "coordinator-0",
        failedPeers: [{ pod: "coordinator-7", reason: expect.stringMatching(reason) }],
      });
      expect(confirmation?.failedPeers?.[0]?.reason).toHaveLength(200);
    } finally {
      handler.extraPeers = [];
      await tampered.close();
    }
  });

  it("started alone, it recovers from a peer that appears later and its app picks the state up", async () => {
    for (const pod of ["coordinator-0", "coordinator-1", "coordinator-2"]) handler.notReady.add(pod);
    const late = await startPod("coordinator-3");
    expect(late.sidecar.startup()).toEqual({ kind: "first-instance" });
    expect((await manifestOf(late)).status).toBe(503);
    handler.notReady.delete("coordinator-1");
    await vi.waitFor(async () => expect((await manifestOf(late)).status).toBe(200), { timeout: 10_000 });
    expect((await manifestOf(late)).body["publicKey"]).toBe(initialized.publicKey);
    await waitForConfirmation("coordinator-3", "coordinator-1");
    handler.notReady.clear();
  });

  it("while the handler is down or unsynced, a new pod keeps waiting, then recovers", async () => {
    await handler.stop();
    // Something on the handler's port that drops every connection: an unreachable handler.
    let dropped = 0;
    const blackhole: NetServer = createNetServer((socket) => {
      dropped++;
      socket.destroy();
    });
    await listen(blackhole, handlerPort, "127.0.0.1");
    const waiting = await startPod("coordinator-4", { waitForStartup: false });
    await vi.waitFor(() => expect(dropped).toBeGreaterThanOrEqual(3), { timeout: 10_000 });
    const down = await probe(waiting.sidecar.probePort, "/startupz");
    expect(down.status).toBe(503);
    expect(down.text).toMatch(/waiting for the handler/);
    expect(waiting.sidecar.startup()).toBeUndefined();

    await close(blackhole);
    handler.synced = false;
    await handler.start(handlerPort);
    const queries = handler.peerQueries;
    await vi.waitFor(() => expect(handler.peerQueries).toBeGreaterThanOrEqual(queries + 3), {
      timeout: 10_000,
    });
    const unsynced = await probe(waiting.sidecar.probePort, "/startupz");
    expect(unsynced.status).toBe(503);
    expect(unsynced.text).toMatch(/503: pod cache not synced yet/);

    handler.synced = true;
    await vi.waitFor(
      async () => expect((await probe(waiting.sidecar.probePort, "/startupz")).status).toBe(200),
      {
        timeout: 10_000,
      },
    );
    expect(waiting.sidecar.startup()).toMatchObject({ kind: "recovered", digest: initialized.digest });
  });

  it("a handler older than failedPeers refuses them: the pod is confirmed without them", async () => {
    const tampered = await startTamperingPeer();
    handler.refusesFailedPeers = true;
    try {
      handler.extraPeers = [tamperingPeerEntry(tampered, initialized.digest)];
      await startPod("coordinator-5");
      expect(tampered.requests()).toBeGreaterThanOrEqual(1);
      const confirmation = await waitForConfirmation("coordinator-5", "coordinator-0");
      expect(confirmation.failedPeers).toBeUndefined();
    } finally {
      handler.refusesFailedPeers = false;
      handler.extraPeers = [];
      await tampered.close();
    }
  });
});

/** How the handler names the tampering peer: as a holder of the initialized state. */
function tamperingPeerEntry(tampered: Awaited<ReturnType<typeof startTamperingPeer>>, digest: string) {
  return {
    pod: "coordinator-7",
    uid: "uid-coordinator-7",
    ip: "127.0.0.1",
    port: tampered.port,
    digest,
    certSha256: tampered.certSha256,
  };
}

/** A peer with a valid certificate and token check skipped, that serves a forged bundle. */
async function startTamperingPeer() {
  const cert = await createPeerCertificate("coordinator-7");
  let requests = 0;
  const app = express();
  app.post("/v1/state", express.json(), async (req, res) => {
    requests++;
    const forged = createBundle([
      { path: "coordinator.json", content: Buffer.from('{"version":1,"seed":"forged","manifest":{}}') },
    ]);
    const jwe = await sealBundle(encodeBundle(forged), await recipientKey(req.body.publicKey));
    // It claims the digest the handler reported, but the content does not have it.
    res.json({ digest: handler.extraPeers[0]?.digest, jwe });
  });
  const server = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, app);
  const port = await listen(server, 0, "127.0.0.1");
  return { port, certSha256: cert.sha256, requests: () => requests, close: () => close(server) };
}
