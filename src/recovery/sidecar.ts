// Wires the recovery sidecar: the peer API, the probes, the local commit API, the recovery
// loop, the updater and the confirmer, over the state directory, the handler and the app's
// readiness endpoint.
import { stat } from "node:fs/promises";
import { createServer as createHttpServer } from "../http/node-http.ts";
import { Agent, createServer as createHttpsServer } from "node:https";
import type { Logger } from "pino";
import { requestJson } from "../http/client.ts";
import { lazyListener } from "../http/lazy-listener.ts";
import { API_LIMITS, applyLimits, COMMIT_API_LIMITS, PROBE_LIMITS, serverOptions } from "../http/limits.ts";
import { close, listen } from "../http/listen.ts";
import { probeListener } from "../http/probes.ts";
import type { PodTokenVerifier } from "../identity/index.ts";
import { STATE_VOLUME } from "../names.ts";
import { bundleDigest } from "../state/bundle.ts";
import { readBundle, stateDigest, writeBundle } from "../state/store.ts";
import type { SidecarConfig } from "./config.ts";
import { DEFAULT_CONFIRMER_TIMINGS, runConfirmer, type ConfirmerTimings } from "./confirmer.ts";
import { handlerCall, handlerClient, readToken } from "./handler-client.ts";
import { headClient } from "./head-client.ts";
import { createPeerCertificate } from "./peer-cert.ts";
import { fetchFromPeer } from "./peer-client.ts";
import {
  DEFAULT_RECOVERY_TIMINGS,
  runRecovery,
  type RecoveryTimings,
  type StartupReason,
} from "./recovery.ts";
import { sourceOf, writeSourceRecord } from "./source-record.ts";
import { peerApi } from "./peer-api.ts";
import { createUpdater, DEFAULT_UPDATER_TIMINGS, type UpdaterTimings } from "./updater.ts";
import { createWaker } from "./waker.ts";

export interface SidecarDeps {
  verifier: PodTokenVerifier;
  logger: Logger;
  /** Bind address of both servers; default all addresses. */
  host?: string;
  recoveryTimings?: RecoveryTimings;
  confirmerTimings?: ConfirmerTimings;
  updaterTimings?: UpdaterTimings;
}

export interface RunningSidecar {
  peerPort: number;
  probePort: number;
  commitPort: number;
  certSha256: string;
  /** Why startup passed, once it has. */
  startup(): StartupReason | undefined;
  close(): Promise<void>;
}

const APP_PROBE_TIMEOUT_MS = 2000;

export async function startSidecar(config: SidecarConfig, deps: SidecarDeps): Promise<RunningSidecar> {
  const logger = deps.logger.child({ namespace: config.self.namespace, pod: config.self.podName });
  const dir = config.stateDir;
  if (!(await stat(dir).catch(() => undefined))?.isDirectory()) {
    throw new Error(`the state directory ${dir} does not exist; is the ${STATE_VOLUME} volume mounted?`);
  }
  const cert = await createPeerCertificate(config.self.podName);
  const handler = handlerClient(config);

  let startup: StartupReason | undefined;
  let waiting = "asking the handler for peers";
  let broken: string | undefined;

  // The connection of the head's long-poll, kept from one poll to the next.
  const longPollAgent = new Agent({ keepAlive: true });
  const confirmerWaker = createWaker();
  const updater = createUpdater(
    {
      self: config.self.podName,
      dir,
      certSha256: cert.sha256,
      head: headClient(handlerCall(config), handlerCall(config, longPollAgent)),
      peers: () => handler.peers(),
      // The peer-audience token only: the peer could replay whatever it receives.
      fetch: async (peer, staged) => fetchFromPeer(peer, await readToken(config.peerTokenFile), staged),
      swapped: () => confirmerWaker.wake(),
      logger,
    },
    deps.updaterTimings ?? DEFAULT_UPDATER_TIMINGS,
  );
  const peerServer = createHttpsServer(
    { cert: cert.certPem, key: cert.keyPem, minVersion: "TLSv1.3", ...serverOptions(API_LIMITS) },
    // A bare listener, ready at once: the first pod that recovers from this one is waiting.
    peerApi({
      self: config.self,
      verifier: deps.verifier,
      checkMember: (caller) => handler.peerAccess(caller),
      readState: async (digest) => {
        const live = await readBundle(dir);
        if (digest === undefined || bundleDigest(live) === digest) return live;
        return updater.staged(digest);
      },
      logger,
    }),
  );
  // A peer that stalls mid-request must not hold a connection for minutes.
  applyLimits(peerServer, API_LIMITS);
  const commitServer = createHttpServer(
    serverOptions(COMMIT_API_LIMITS),
    // Loaded on the first commit: most apps commit rarely, and express is the bulk of it.
    lazyListener(async () => {
      const { commitApi } = await import("./commit-api.ts");
      return commitApi({ commit: (parent, bundle) => updater.commit(parent, bundle), logger });
    }, logger),
  );
  applyLimits(commitServer, COMMIT_API_LIMITS);
  const probeServer = createHttpServer(
    serverOptions(PROBE_LIMITS),
    probeListener({
      "/startupz": () => (startup ? undefined : waiting),
      "/healthz": () => broken,
    }),
  );
  applyLimits(probeServer, PROBE_LIMITS);

  const abort = new AbortController();
  // The confirmer waits for startup: until then the recovery may be writing a recovered state
  // file by file, and a look in between would see a state that is not the one delivered.
  let startupPassed = () => {};
  const startedUp = new Promise<void>((resolve) => (startupPassed = resolve));
  const aborted = new Promise<void>((resolve) => abort.signal.addEventListener("abort", () => resolve()));
  let loops: Promise<unknown>[] = [];
  try {
    const peerPort = await listen(peerServer, config.peerPort, deps.host);
    const probePort = await listen(probeServer, config.probePort, deps.host);
    // Loopback only: the app shares the pod's network namespace, nothing else reaches it.
    const commitPort = await listen(commitServer, config.commitPort, "127.0.0.1");
    logger.info(
      { peerPort, probePort, commitPort, certSha256: cert.sha256, stateDir: dir },
      "recovery sidecar listening",
    );

    const recovery = runRecovery(
      {
        stateDigest: () => stateDigest(dir),
        askHandler: () => handler.peers(),
        // The peer-audience token only: the peer could replay whatever it receives.
        fetchFromPeer: async (peer) => fetchFromPeer(peer, await readToken(config.peerTokenFile)),
        writeState: async (bundle, peer, failedPeers) => {
          // The record first: a crash in between leaves a record about a digest that no
          // state has, which says nothing.
          await writeSourceRecord(dir, { source: peer.pod, digest: bundleDigest(bundle), failedPeers });
          await writeBundle(dir, bundle);
        },
        logger,
      },
      {
        onStartup: (reason) => {
          startup = reason;
          startupPassed();
          logger.info({ reason: reason.kind }, "startup passed: the app may start");
        },
        onWaiting: (why) => {
          waiting = why;
        },
      },
      abort.signal,
      deps.recoveryTimings ?? DEFAULT_RECOVERY_TIMINGS,
    );
    const confirmer = Promise.race([startedUp, aborted]).then(() =>
      runConfirmer(
        {
          stateDigest: () => stateDigest(dir),
          appReady: () => appReady(config.appReadinessUrl, dir),
          sourceOf: (digest) => sourceOf(dir, digest),
          confirm: (request) => handler.confirm(request),
          confirmable: (digest) => updater.confirmable(digest),
          sawDigest: (digest) => updater.saw(digest),
          waker: confirmerWaker,
          certSha256: cert.sha256,
          logger,
        },
        abort.signal,
        deps.confirmerTimings ?? DEFAULT_CONFIRMER_TIMINGS,
      ),
    );
    loops = [recovery, confirmer, updater.run(abort.signal)].map((loop) =>
      loop.catch((err: unknown) => {
        if (abort.signal.aborted) return;
        // Both loops catch their own errors; reaching this is a bug, and a sidecar that no
        // longer recovers or confirms must be restarted by its liveness probe.
        broken = `a sidecar loop stopped: ${String(err)}`;
        logger.fatal({ err: String(err) }, "a sidecar loop stopped");
      }),
    );

    return {
      peerPort,
      probePort,
      commitPort,
      certSha256: cert.sha256,
      startup: () => startup,
      close: async () => {
        abort.abort();
        await Promise.all(loops);
        await Promise.all([close(peerServer), close(probeServer), close(commitServer)]);
        longPollAgent.destroy();
      },
    };
  } catch (err) {
    abort.abort();
    await Promise.all([close(peerServer), close(probeServer), close(commitServer)]).catch(() => undefined);
    longPollAgent.destroy();
    throw err;
  }
}

/** The app holds the state: its readiness endpoint says so, or, without one, the state exists. */
async function appReady(url: URL | undefined, dir: string): Promise<boolean> {
  if (!url) return (await stateDigest(dir)) !== undefined;
  try {
    // Like the kubelet: any 2xx/3xx is ready, and an https endpoint is not verified.
    const res = await requestJson({
      url,
      method: "GET",
      insecure: true,
      timeoutMs: APP_PROBE_TIMEOUT_MS,
      maxResponseBytes: 64 * 1024,
    });
    return res.status >= 200 && res.status < 400;
  } catch {
    return false;
  }
}
