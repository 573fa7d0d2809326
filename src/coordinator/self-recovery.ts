// The guide's own recovery, as a mode of the reference Coordinator (`coordinator --recovery
// self`), with no coordinator-ha installed: the mechanism the operator guide describes and
// Contrast's Coordinator implements, kept as the peer that coordinator-ha is measured against
// (npm run bench:cluster, docs/performance.md).
//
// - Serving: an HTTPS endpoint of its own (SELF_RECOVERY_PORT) with the sidecar's peer API
//   (POST /v1/state, peer-api.ts): the caller's pod-bound token, for this mode's own audience,
//   is verified against the cluster's service-account issuer; the caller must be another pod
//   of this StatefulSet that still exists (name and uid, listed through the Kubernetes API);
//   the state goes out as a JWE to the caller's one-time key (transfer.ts).
// - Recovering: while it holds no state, every period (Contrast's 15 s loop) it lists the
//   Ready pods of its StatefulSet and asks them, lowest ordinal first, then writes what it got
//   into its state directory, which the state holder picks up. Ready means "holds the state",
//   so the Coordinator is ready only once it does.
//
// Unlike the sidecar's transfer, nothing vouches for the serving pod: its certificate is
// self-signed and not pinned, and the digest is only checked against the sender's own claim.
// Contrast closes that gap with attestation; here it is the price of having no handler.
import { createServer } from "node:https";
import { isIPv6 } from "node:net";
import type { Logger } from "pino";
import { requestJson } from "../http/client.ts";
import { close, listen } from "../http/listen.ts";
import type { PodIdentity, PodTokenVerifier } from "../identity/index.ts";
import { errorOf } from "../recovery/handler-client.ts";
import { peerApi } from "../recovery/peer-api.ts";
import { createPeerCertificate } from "../recovery/peer-cert.ts";
import { ephemeralKey, MAX_JWE_LENGTH, openBundle } from "../recovery/transfer.ts";
import type { Bundle } from "../state/bundle.ts";
import { readBundle, StateExistsError, writeBundle } from "../state/store.ts";
import { liveMember, recoverySources, type ListedPod } from "./self-recovery-rules.ts";

const FETCH_TIMEOUT_MS = 15_000;

export interface SelfRecoveryOptions {
  self: PodIdentity;
  stateDir: string;
  /** The peer endpoint's port (0: any). */
  port: number;
  /** The port the peers listen on (default: `port`, as every pod of the set has the same). */
  peerPort?: number;
  host?: string;
  /** Between two rounds of asking, while this pod holds no state. */
  periodMs: number;
  logger: Logger;
  /** The pods of this StatefulSet (GET pods with its selector, as this pod's service account). */
  listPods(): Promise<ListedPod[]>;
  /** Verifies callers' tokens (audience SELF_RECOVERY_AUDIENCE). */
  verifier: PodTokenVerifier;
  /** This pod's own token for that audience, as presented to the peers. */
  token(): Promise<string>;
  /** Whether this pod holds the state now (the state holder's view). */
  holds(): boolean;
}

export interface RunningSelfRecovery {
  port: number;
  close(): Promise<void>;
}

export async function startSelfRecovery(opts: SelfRecoveryOptions): Promise<RunningSelfRecovery> {
  const { logger } = opts;
  const cert = await createPeerCertificate(opts.self.podName);
  const server = createServer(
    { cert: cert.certPem, key: cert.keyPem },
    peerApi({
      self: opts.self,
      verifier: opts.verifier,
      checkMember: async (caller) => liveMember(caller, await opts.listPods()),
      // Only the live state: this mode has no proposals to stage.
      readState: async (digest) => (digest === undefined ? readBundle(opts.stateDir) : undefined),
      logger,
    }),
  );
  const port = await listen(server, opts.port, opts.host);

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<void> = Promise.resolve();
  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      round = recoverOnce(opts).then(
        () => schedule(opts.periodMs),
        (err: unknown) => {
          logger.warn({ err: String(err) }, "self-recovery round failed");
          schedule(opts.periodMs);
        },
      );
    }, ms);
  };
  // The first round at once: a new pod of a running set should not wait a period.
  schedule(0);
  logger.info({ port, periodMs: opts.periodMs }, "self-recovery listening");
  return {
    port,
    close: async () => {
      stopped = true;
      clearTimeout(timer);
      await round;
      await close(server);
    },
  };
}

/** One round: nothing when this pod holds the state, else ask the sources until one answers. */
export async function recoverOnce(opts: SelfRecoveryOptions): Promise<"holds" | "recovered" | "no-source"> {
  const { logger } = opts;
  if (opts.holds()) return "holds";
  const sources = recoverySources(opts.self.podName, await opts.listPods());
  if (sources.length === 0) {
    logger.info("no Ready peer to recover from; waiting for a first set or for a peer");
    return "no-source";
  }
  const token = await opts.token();
  for (const source of sources) {
    try {
      const bundle = await fetchState(source, opts.peerPort ?? opts.port, token);
      await writeBundle(opts.stateDir, bundle);
      logger.info({ source: source.name }, "recovered the state from a peer");
      return "recovered";
    } catch (err) {
      // A `set` got there first: the holder picks that state up.
      if (err instanceof StateExistsError) return "holds";
      logger.warn({ source: source.name, err: String(err) }, "cannot recover from this peer");
    }
  }
  return "no-source";
}

async function fetchState(source: ListedPod, port: number, token: string): Promise<Bundle> {
  const key = await ephemeralKey();
  const host = isIPv6(source.ip) ? `[${source.ip}]` : source.ip;
  const res = await requestJson({
    url: new URL(`https://${host}:${port}/v1/state`),
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    body: { publicKey: key.publicJwk },
    // Self-signed and unpinned: see the header comment.
    insecure: true,
    timeoutMs: FETCH_TIMEOUT_MS,
    maxResponseBytes: MAX_JWE_LENGTH + 4096,
  });
  if (res.status !== 200) throw new Error(`peer answered ${res.status}: ${errorOf(res.body)}`);
  const body = res.body as { digest?: unknown; jwe?: unknown } | undefined;
  if (typeof body?.digest !== "string") throw new Error("peer sent no digest");
  return openBundle(body.jwe, key, body.digest);
}
