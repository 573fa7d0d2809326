// Updates of the state in one process, without Kubernetes: three reference Coordinators with
// their recovery sidecars on 127.0.0.1 (each pod its own state directory and tokens), the fake
// handler with the head routes (fake-head.ts) over real TLS, real pod tokens, real workload
// owner keys and signatures. The update goes through the real `set --workload-owner-key`, the
// Coordinator's commit through its sidecar's local commit API, the others stage the proposal
// from the proposer's peer API and hold it, and every pod swaps the committed state in.
import { generateKeyPairSync } from "node:crypto";
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ownerKeyDigest, signUpdate } from "../../src/coordinator/owner-key.ts";
import { startCoordinator, type RunningCoordinator } from "../../src/coordinator/server.ts";
import { decodeState, encodeState, updatedState, type Manifest } from "../../src/coordinator/state.ts";
import { ExitCode, runSet } from "../../src/coordinator/user-cli.ts";
import { handlerTokenVerifier } from "../../src/handler/service.ts";
import { close, listen } from "../../src/http/listen.ts";
import { cachedJwksSource } from "../../src/identity/index.ts";
import { PEER_TOKEN_AUDIENCE, TOKEN_AUDIENCE } from "../../src/names.ts";
import { parseSidecarConfig } from "../../src/recovery/config.ts";
import { peerTokenVerifier } from "../../src/recovery/peer-token.ts";
import { SidecarEnv } from "../../src/recovery/sidecar-env.ts";
import { startSidecar, type RunningSidecar } from "../../src/recovery/sidecar.ts";
import { readBundle, stateDigest } from "../../src/state/store.ts";
import { createCa, issueServingCert } from "../../webhook-certs/x509.ts";
import { ISSUER, jwks, podToken, signingKey, type SigningKey } from "../unit/identity/issuer.ts";
import type { FakeHead } from "./fake-head.ts";
import { FakeHandler } from "./fake-handler.ts";

const logger = pino({ level: process.env["LOG_LEVEL"] ?? "silent" });
const NAMESPACE = "default";
const SERVICE_ACCOUNT = "coordinator";
const owner = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
const manifest = (policy: string): Manifest => ({ policy, workloadOwnerKeyDigests: [ownerKeyDigest(owner)] });

let root: string;
let issuerKey: SigningKey;
let handler: FakeHandler;
let head: FakeHead;
let handlerUrl: string;
let handlerCa: string;

interface Pod {
  name: string;
  stateDir: string;
  sidecar: RunningSidecar;
  coordinator: RunningCoordinator;
}
const pods: Pod[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "cha-update-"));
  issuerKey = await signingKey("ES256");
  const ca = await createCa({ commonName: "test handler CA" });
  handlerCa = ca.certPem;
  handler = new FakeHandler(
    await issueServingCert(ca, { ips: ["127.0.0.1"] }),
    handlerTokenVerifier(
      ISSUER,
      cachedJwksSource(async () => jwks(issuerKey)),
    ),
  );
  head = handler.withHead();
  handlerUrl = `https://127.0.0.1:${await handler.start()}`;
}, 30_000);

afterAll(async () => {
  for (const pod of pods) {
    await pod.coordinator.close();
    await pod.sidecar.close();
  }
  await handler.stop();
  await rm(root, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const server = createNetServer();
  const port = await listen(server, 0, "127.0.0.1");
  await close(server);
  return port;
}

/** A pod as the kubelet starts it: the sidecar, and the app once its startup probe passes. */
async function startPod(name: string): Promise<Pod> {
  const dir = join(root, name);
  const stateDir = join(dir, "state");
  await mkdir(stateDir, { recursive: true });
  const uid = `uid-${name}`;
  const claims = { namespace: NAMESPACE, serviceAccount: SERVICE_ACCOUNT, podName: name, podUid: uid };
  await writeFile(join(dir, "token"), await podToken(issuerKey, { pod: claims, audience: TOKEN_AUDIENCE }));
  await writeFile(
    join(dir, "peer-token"),
    await podToken(issuerKey, { pod: claims, audience: PEER_TOKEN_AUDIENCE }),
  );
  const appProbePort = await freePort();
  const config = parseSidecarConfig({
    [SidecarEnv.podName]: name,
    [SidecarEnv.podNamespace]: NAMESPACE,
    [SidecarEnv.podUid]: uid,
    [SidecarEnv.podIp]: "127.0.0.1",
    [SidecarEnv.serviceAccount]: SERVICE_ACCOUNT,
    [SidecarEnv.handlerUrl]: handlerUrl,
    [SidecarEnv.handlerCa]: handlerCa,
    [SidecarEnv.stateDir]: stateDir,
    [SidecarEnv.tokenFile]: join(dir, "token"),
    [SidecarEnv.peerTokenFile]: join(dir, "peer-token"),
    [SidecarEnv.peerPort]: "0",
    [SidecarEnv.probePort]: "0",
    [SidecarEnv.commitPort]: "0",
    [SidecarEnv.appReadinessUrl]: `http://127.0.0.1:${appProbePort}/probe/readiness`,
  });
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
    updaterTimings: {
      waitSeconds: 5,
      pollMs: 50,
      // As in a pod: its own looks are the fallback, the confirmer's looks wake it on a new digest.
      idlePollMs: 60_000,
      retryMs: 50,
      unsupportedRetryMs: 1000,
      commitTimeoutMs: 10_000,
      proposeRetryMs: 2000,
    },
  });
  handler.pods.set(name, { uid, peerPort: sidecar.peerPort });
  await vi.waitFor(
    async () => expect((await fetch(`http://127.0.0.1:${sidecar.probePort}/startupz`)).status).toBe(200),
    { timeout: 10_000, interval: 10 },
  );
  const coordinator = await startCoordinator({
    stateDir,
    apiPort: 0,
    probePort: appProbePort,
    host: "127.0.0.1",
    logger: logger.child({ pod: name, component: "coordinator" }),
    pollMs: 50,
    commitUrl: new URL(`http://127.0.0.1:${sidecar.commitPort}/v1/commit`),
  });
  const pod = { name, stateDir, sidecar, coordinator };
  pods.push(pod);
  return pod;
}

const get = async (pod: Pod) => {
  const res = await fetch(`http://127.0.0.1:${pod.coordinator.apiPort}/v1/manifest`);
  return (await res.json()) as { digest: string; manifest: Manifest; publicKey: string; history: unknown[] };
};

const post = async (pod: Pod, body: unknown) => {
  const res = await fetch(`http://127.0.0.1:${pod.coordinator.apiPort}/v1/manifest`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

/** Every pod's Coordinator answers `digest`, and every sidecar confirmed it. */
async function converged(digest: string, timeout = 10_000): Promise<number> {
  const started = performance.now();
  await vi.waitFor(
    async () => {
      for (const pod of pods) {
        expect((await get(pod)).digest).toBe(digest);
        expect(handler.confirmed(pod.name)?.digest).toBe(digest);
      }
    },
    { timeout, interval: 20 },
  );
  return performance.now() - started;
}

async function writeManifestFile(name: string, m: Manifest): Promise<string> {
  const file = join(root, name);
  await writeFile(file, JSON.stringify(m));
  return file;
}

describe("updates of the state across three pods", () => {
  let publicKey: string;

  it("the first set is confirmed and becomes the head; two more pods recover it", async () => {
    // The StatefulSet is scaled to 3 before its first state is committed (the e2e's `set` and
    // `kubectl scale` back to back): the first state must not wait for a quorum that cannot
    // exist before the first pod is Ready.
    head.quorum = 2;
    const first = await startPod("coordinator-0");
    const out: string[] = [];
    const io = { out: (l: string) => out.push(l), err: (l: string) => out.push(l) };
    expect(
      await runSet(
        {
          coordinator: `127.0.0.1:${first.coordinator.apiPort}`,
          manifestFile: await writeManifestFile("m1.json", manifest("v1")),
        },
        io,
      ),
    ).toBe(ExitCode.Ok);
    const set = await get(first);
    await vi.waitFor(() => expect(head.committed?.digest).toBe(set.digest), { timeout: 5000 });
    publicKey = set.publicKey;

    await startPod("coordinator-1");
    await startPod("coordinator-2");
    await converged(set.digest);
  });

  it("an update through the second pod is committed by a quorum and reaches all three", async () => {
    const before = await get(pods[1]!);
    const out: string[] = [];
    const io = { out: (l: string) => out.push(l), err: (l: string) => out.push(l) };
    const started = performance.now();
    const code = await runSet(
      {
        coordinator: `127.0.0.1:${pods[1]!.coordinator.apiPort}`,
        manifestFile: await writeManifestFile("m2.json", manifest("v2")),
        ownerKeyFile: await writeKey(),
      },
      io,
    );
    const ackMs = performance.now() - started;
    expect(code, out.join("\n")).toBe(ExitCode.Ok);
    expect(out[0]).toMatch(/Manifest updated/);
    const after = await get(pods[1]!);
    expect(after.digest).not.toBe(before.digest);
    expect(head.committed).toMatchObject({
      digest: after.digest,
      parent: before.digest,
      by: "coordinator-1",
    });
    const convergeMs = await converged(after.digest);
    for (const pod of pods) {
      const state = await get(pod);
      expect(state.publicKey).toBe(publicKey);
      expect(state.history).toHaveLength(2);
      expect(state.manifest).toEqual(manifest("v2"));
    }
    console.log(
      `update through coordinator-1: acknowledged in ${ackMs.toFixed(0)} ms, all three on it ${convergeMs.toFixed(0)} ms later`,
    );
  });

  it("of two concurrent updates exactly one is acknowledged (200) and the other refused (409); all converge on the winner", async () => {
    const current = await get(pods[0]!);
    const a = manifest("v3-a");
    const b = manifest("v3-b");
    const results = await Promise.all([
      post(pods[0]!, { manifest: a, update: signUpdate(owner, current.digest, a) }),
      post(pods[2]!, { manifest: b, update: signUpdate(owner, current.digest, b) }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    const loser = results.find((r) => r.status === 409)!;
    expect(loser.body["error"]).toMatch(/refused|committing|another update/);
    const winner = results.find((r) => r.status === 200)!;
    await converged(winner.body["digest"] as string);
    // The losing pod returned to (stayed on) the committed state.
    expect(head.history).toContain(winner.body["digest"]);
  });

  it("a state the app writes without a commit call is proposed by its sidecar and reaches all three", async () => {
    const pod = pods[2]!;
    const current = decodeState((await readBundle(pod.stateDir)).files[0]!.content);
    const next = updatedState(current, manifest("v4-unasked"));
    // What an app unaware of coordinator-ha does: temp file + rename over its state file.
    const temp = join(pod.stateDir, "tmp-write");
    await writeFile(temp, encodeState(next));
    await rename(temp, join(pod.stateDir, "coordinator.json"));
    const digest = (await stateDigest(pod.stateDir))!;
    await vi.waitFor(() => expect(head.committed?.digest).toBe(digest), { timeout: 10_000 });
    expect(head.committed?.by).toBe(pod.name);
    await converged(digest);
    expect((await get(pods[0]!)).manifest).toEqual(manifest("v4-unasked"));
  });

  it("a write of the app that loses to another pod's update is refused, kept aside, and the pod returns to the head", async () => {
    const writer = pods[2]!;
    const current = await get(pods[0]!);
    // A quorum that cannot be reached yet keeps coordinator-0's update pending.
    head.setQuorum(4);
    const next = manifest("v5-committed");
    const pending = post(pods[0]!, { manifest: next, update: signUpdate(owner, current.digest, next) });
    await vi.waitFor(() => expect(head.proposal?.holders.size).toBe(3), { timeout: 5000 });

    const state = decodeState((await readBundle(writer.stateDir)).files[0]!.content);
    const temp = join(writer.stateDir, "tmp-write");
    await writeFile(temp, encodeState(updatedState(state, manifest("v5-unasked"))));
    await rename(temp, join(writer.stateDir, "coordinator.json"));
    const unasked = (await stateDigest(writer.stateDir))!;

    head.setQuorum(2);
    const committed = await pending;
    expect(committed.status).toBe(200);
    await converged(committed.body["digest"] as string);
    expect(head.history).not.toContain(unasked);
    const kept = await readBundle(join(writer.stateDir, ".coordinator-ha", "refused", unasked.slice(7)));
    expect(decodeState(kept.files[0]!.content).manifest).toEqual(manifest("v5-unasked"));
  });

  it("with a quorum of one the proposer commits alone; the others catch up from a pod that holds the head", async () => {
    head.setQuorum(1);
    const current = await get(pods[1]!);
    const next = manifest("v6-alone");
    const res = await post(pods[1]!, { manifest: next, update: signUpdate(owner, current.digest, next) });
    expect(res.status).toBe(200);
    await converged(res.body["digest"] as string);
    head.setQuorum(2);
  });
});

async function writeKey(): Promise<string> {
  const file = join(root, "workload-owner.pem");
  await writeFile(file, owner.export({ format: "pem", type: "sec1" }));
  return file;
}
