// The peer that serves a transfer dies (or stalls) in the middle of it, in one process without
// Kubernetes: two sidecars hold a 4 MiB state, a third recovers from them. The first peer the
// handler names sits behind a TCP proxy that forwards the request and then, once 1 MiB of the
// answer has passed, either ends both connections (the peer's process killed: the kernel
// resets them, or sends what it holds and closes them) or stops forwarding without closing
// anything (the peer frozen, or its network cut). What must hold: the recovering sidecar writes nothing while the transfer is
// cut or stalled (its state directory stays empty), falls back to the next peer (at once after
// a cut, after its 15 s deadline after a stall), ends with exactly the state of the handler's
// digest and no temporary file, names the peer it really got it from, and the peer whose
// transfer broke serves the next caller (its one transfer slot is free again).
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer as createNetServer, connect, type Server as NetServer, type Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { performance } from "node:perf_hooks";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { Peer } from "../../src/handler/api.ts";
import { handlerTokenVerifier } from "../../src/handler/service.ts";
import { close, listen } from "../../src/http/listen.ts";
import { cachedJwksSource } from "../../src/identity/index.ts";
import { PEER_TOKEN_AUDIENCE, TOKEN_AUDIENCE } from "../../src/names.ts";
import { parseSidecarConfig } from "../../src/recovery/config.ts";
import { fetchFromPeer } from "../../src/recovery/peer-client.ts";
import { peerTokenVerifier } from "../../src/recovery/peer-token.ts";
import { SidecarEnv } from "../../src/recovery/sidecar-env.ts";
import { sourceOf } from "../../src/recovery/source-record.ts";
import { startSidecar, type RunningSidecar } from "../../src/recovery/sidecar.ts";
import { bundleDigest, createBundle, type Bundle } from "../../src/state/bundle.ts";
import { RESERVED_PREFIX } from "../../src/state/paths.ts";
import { stateDigest, writeBundle } from "../../src/state/store.ts";
import { createCa, issueServingCert } from "../../webhook-certs/x509.ts";
import { ISSUER, jwks, podToken, signingKey, type SigningKey } from "../unit/identity/issuer.ts";
import { FakeHandler } from "./fake-handler.ts";

const logger = pino({ level: process.env["LOG_LEVEL"] ?? "silent" });
const NAMESPACE = "default";
const SERVICE_ACCOUNT = "coordinator";
const STATE_BYTES = 4 * 1024 * 1024;
/** Bytes of the serving peer's answer (TLS records of the JWE) that pass before the fault. */
const FAULT_AFTER_BYTES = 1024 * 1024;

let root: string;
let issuerKey: SigningKey;
let handlerCa: string;
let handler: FakeHandler;
let handlerPort: number;
let bundle: Bundle;
let digest: string;
const sidecars: RunningSidecar[] = [];
const proxies: NetServer[] = [];
const sockets = new Set<Socket>();

interface Pod {
  name: string;
  stateDir: string;
  peerTokenFile: string;
  sidecar: RunningSidecar;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "cha-transfer-fault-"));
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
  handlerPort = await handler.start();
  // Incompressible, in a nested directory too: the bundle is several files, as an app's can be.
  bundle = createBundle([
    { path: "seed", content: randomBytes(64) },
    { path: "manifest.json", content: Buffer.from(randomBytes(STATE_BYTES / 2).toString("base64")) },
    { path: "history/1.json", content: randomBytes(STATE_BYTES / 4) },
  ]);
  digest = bundleDigest(bundle);
}, 30_000);

afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  await Promise.all(proxies.splice(0).map(close));
  await Promise.all(sidecars.splice(0).map((s) => s.close()));
  handler.pods.clear();
  handler.confirmations.length = 0;
});

afterAll(async () => {
  await handler.stop();
  await rm(root, { recursive: true, force: true });
});

/**
 * A pod's sidecar; `state`: written into its directory first (a pod that holds the state);
 * `watched.dir` is set to its state directory before the sidecar starts.
 */
async function startPod(name: string, state?: Bundle, watched?: { dir?: string }): Promise<Pod> {
  const dir = join(root, `${name}-${randomBytes(3).toString("hex")}`);
  const stateDir = join(dir, "state");
  await mkdir(stateDir, { recursive: true });
  if (watched) watched.dir = stateDir;
  if (state) await writeBundle(stateDir, state);
  const uid = `uid-${name}`;
  const claims = { namespace: NAMESPACE, serviceAccount: SERVICE_ACCOUNT, podName: name, podUid: uid };
  const tokenFile = join(dir, "token");
  const peerTokenFile = join(dir, "peer-token");
  await writeFile(tokenFile, await podToken(issuerKey, { pod: claims, audience: TOKEN_AUDIENCE }));
  await writeFile(peerTokenFile, await podToken(issuerKey, { pod: claims, audience: PEER_TOKEN_AUDIENCE }));
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
    // No app: the state's presence stands for "the app holds it".
    [SidecarEnv.appReadinessUrl]: "",
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
  });
  sidecars.push(sidecar);
  handler.pods.set(name, { uid, peerPort: sidecar.peerPort });
  return { name, stateDir, peerTokenFile, sidecar };
}

/**
 * "reset": the connection reset (a killed process with unread input); "close": closed cleanly
 * after part of the answer (a killed process whose kernel sends what it had, then FIN);
 * "stall": nothing more, nothing closed.
 */
type Fault = "reset" | "close" | "stall";

/**
 * A TCP proxy to `upstream` (TLS passes through it untouched, so the pin still holds). Once
 * FAULT_AFTER_BYTES of the answer have passed, it stops forwarding and calls `onFault`; then it
 * resets or closes both connections, or leaves them open (see Fault).
 */
async function faultyProxy(upstream: number, fault: Fault, onFault: () => Promise<void>) {
  const seen = { connections: 0, answerBytes: 0, faulted: false };
  const server = createNetServer((client) => {
    seen.connections++;
    const server = connect(upstream, "127.0.0.1");
    sockets.add(client).add(server);
    client.on("error", () => undefined);
    server.on("error", () => undefined);
    client.pipe(server);
    server.on("data", (chunk: Buffer) => {
      if (seen.faulted) return;
      seen.answerBytes += chunk.length;
      if (seen.answerBytes < FAULT_AFTER_BYTES) {
        client.write(chunk);
        return;
      }
      seen.faulted = true;
      server.pause();
      void onFault().then(() => {
        if (fault === "reset") {
          client.resetAndDestroy();
          server.resetAndDestroy();
        }
        if (fault === "close") {
          client.end();
          server.destroy();
        }
      });
    });
  });
  proxies.push(server);
  const port = await listen(server, 0, "127.0.0.1");
  return { port, seen };
}

/** Every path under `dir`, relative, directories with a trailing slash. */
async function tree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .map((e) => `${relative(dir, join(e.parentPath, e.name))}${e.isDirectory() ? "/" : ""}`)
    .sort();
}

async function expectWholeState(pod: Pod) {
  expect(await stateDigest(pod.stateDir)).toBe(digest);
  const paths = await tree(pod.stateDir);
  // Nothing half-written anywhere: no temporary file of a write, of a swap or of the record.
  expect(paths.filter((p) => p.includes(`${RESERVED_PREFIX}-tmp-`))).toEqual([]);
  for (const file of bundle.files) {
    expect(Buffer.compare(await readFile(join(pod.stateDir, file.path)), file.content), file.path).toBe(0);
  }
}

/** The peer whose transfer broke serves the next caller: its one transfer slot is free again. */
async function servesAgain(peer: Pod, caller: Pod) {
  const direct: Peer = {
    pod: peer.name,
    uid: `uid-${peer.name}`,
    ip: "127.0.0.1",
    port: peer.sidecar.peerPort,
    digest,
    certSha256: peer.sidecar.certSha256,
  };
  const token = (await readFile(caller.peerTokenFile, "utf8")).trim();
  // Busy (503) while the broken transfer still holds the slot: at most TRANSFER_WAIT_MS.
  const served = await vi.waitFor(() => fetchFromPeer(direct, token), { timeout: 10_000, interval: 250 });
  expect(bundleDigest(served)).toBe(digest);
}

describe("the peer serving a transfer fails in the middle of it", () => {
  const what: Record<Fault, string> = {
    reset: "killed (connection reset)",
    close: "killed (connection closed after part of the answer)",
    stall: "stalled (no byte more, nothing closed)",
  };
  // How the sidecar reports coordinator-0's failure to the handler.
  const reasonOf: Record<Fault, RegExp> = {
    reset: /ECONNRESET/,
    close: /^(aborted|socket hang up|ECONNRESET)/,
    stall: /^no answer within 15000 ms$/,
  };
  for (const fault of ["reset", "close", "stall"] as const) {
    it(`${what[fault]}: the sidecar falls back to the next peer and writes nothing partial`, async () => {
      const first = await startPod("coordinator-0", bundle);
      const second = await startPod("coordinator-1", bundle);
      await vi.waitFor(() => {
        expect(handler.confirmed("coordinator-0")?.digest).toBe(digest);
        expect(handler.confirmed("coordinator-1")?.digest).toBe(digest);
      });

      // The recovering pod's directory, looked at the moment the transfer breaks.
      const watched: { dir?: string } = {};
      let atFault: string[] | undefined;
      let faultAt = 0;
      const proxy = await faultyProxy(first.sidecar.peerPort, fault, async () => {
        faultAt = performance.now();
        atFault = watched.dir ? await tree(watched.dir) : undefined;
      });
      // The handler names coordinator-0 first (by name), at the proxy's port.
      handler.pods.set("coordinator-0", { uid: "uid-coordinator-0", peerPort: proxy.port });

      const started = performance.now();
      const recovering = await startPod("coordinator-2", undefined, watched);
      await vi.waitFor(() => expect(recovering.sidecar.startup()).toBeDefined(), {
        timeout: 30_000,
        interval: 20,
      });
      const recoveredAt = performance.now();
      console.log(
        `${fault}: ${(proxy.seen.answerBytes / 1024).toFixed(0)} KiB of coordinator-0's answer passed before the fault; ` +
          `recovered from coordinator-1 ${((recoveredAt - faultAt) / 1000).toFixed(2)} s after it ` +
          `(${((recoveredAt - started) / 1000).toFixed(2)} s after the start)`,
      );

      expect(proxy.seen.faulted).toBe(true);
      expect(proxy.seen.connections).toBe(1);
      // While the transfer was broken, the directory held nothing at all.
      expect(atFault).toEqual([]);
      expect(recovering.sidecar.startup()).toEqual({ kind: "recovered", digest, source: "coordinator-1" });
      await expectWholeState(recovering);
      const failedPeers = [{ pod: "coordinator-0", reason: expect.stringMatching(reasonOf[fault]) }];
      expect(await sourceOf(recovering.stateDir, digest)).toEqual({ source: "coordinator-1", failedPeers });
      await vi.waitFor(() => expect(handler.confirmed("coordinator-2")?.source).toBe("coordinator-1"));
      // The handler is told which peer failed, and why; and it is told of the whole state only:
      // the confirmer starts once startup passed, never between two files of the write.
      const confirmations = handler.confirmations.filter((c) => c.pod === "coordinator-2");
      expect(confirmations.map((c) => c.digest)).toEqual(confirmations.map(() => digest));
      expect(confirmations[0]).toMatchObject({ failedPeers });
      // A stall costs the client's deadline (15 s, peer-client.ts), a cut nothing.
      if (fault !== "stall") expect(recoveredAt - faultAt).toBeLessThan(10_000);
      else expect(recoveredAt - faultAt).toBeGreaterThan(14_000);

      await servesAgain(first, second);
      await expectWholeState(first);
    }, 60_000);
  }
});
