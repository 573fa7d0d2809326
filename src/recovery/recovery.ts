// How a sidecar gets its pod the state (DESIGN.md, component 3):
//
// Before startup passes (the app is held back):
//   - state already in the directory (a container restart within the pod): done;
//   - else ask the handler. Peers: try each in turn until one delivers a bundle with the
//     reported digest, write it, done. No peers, from a synced handler: this is the first
//     instance, done (the app starts uninitialized, its user runs `set`). Anything else is
//     "unknown": wait with capped back-off and ask again, never conclude "first instance".
// After startup, while the directory holds no state: ask the handler now and then, and
// recover from a peer that appears (the pod that started alone and finds a peer later).
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import type { FailedPeer, Peer } from "../handler/api.ts";
import { type Bundle } from "../state/bundle.ts";
import { StateExistsError } from "../state/store.ts";
import { recordFailure } from "./failed-peers.ts";
import type { PeersAnswer } from "./handler-client.ts";

export interface RecoveryDeps {
  /** Digest of the state in the directory, undefined when it holds none. */
  stateDigest(): Promise<string | undefined>;
  askHandler(): Promise<PeersAnswer>;
  /** Fetches and checks one peer's bundle; throws on any failure. */
  fetchFromPeer(peer: Peer): Promise<Bundle>;
  /**
   * Records where the state came from (`peer`, after the peers in `failed` failed), then
   * writes it; StateExistsError when state appeared.
   */
  writeState(bundle: Bundle, peer: Peer, failed: FailedPeer[]): Promise<void>;
  logger: Logger;
}

export interface RecoveryTimings {
  /** First wait after an unknown answer or a round in which every peer failed. */
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** After startup, how often a pod without state asks for peers. */
  pollMs: number;
}

export const DEFAULT_RECOVERY_TIMINGS: RecoveryTimings = {
  initialBackoffMs: 250,
  maxBackoffMs: 5000,
  pollMs: 5000,
};

/** Why startup passed. */
export type StartupReason =
  | { kind: "existing"; digest: string }
  | { kind: "recovered"; digest: string; source: string }
  | { kind: "first-instance" };

/** One round of asking. `state`: the directory holds state now (found or written). */
type Round = { kind: "state"; reason: StartupReason } | { kind: "no-peers" } | { kind: "wait"; why: string };

export interface RecoveryHooks {
  /** Startup may pass now (called once). */
  onStartup(reason: StartupReason): void;
  /** Why startup has not passed yet, for the startup probe's answer. */
  onWaiting(why: string): void;
}

/** Runs until `signal` aborts. Never throws but for the abort. */
export async function runRecovery(
  deps: RecoveryDeps,
  hooks: RecoveryHooks,
  signal: AbortSignal,
  timings: RecoveryTimings = DEFAULT_RECOVERY_TIMINGS,
): Promise<void> {
  const { logger } = deps;
  let backoff = timings.initialBackoffMs;
  for (;;) {
    const round = await recoveryRound(deps);
    if (round.kind === "state") {
      if (round.reason.kind === "existing") {
        logger.info(
          { digest: round.reason.digest },
          "the state directory already holds state (a restart within the pod)",
        );
      }
      hooks.onStartup(round.reason);
      return;
    }
    if (round.kind === "no-peers") {
      logger.info(
        "the handler knows no initialized peer: first instance, letting the app start uninitialized",
      );
      hooks.onStartup({ kind: "first-instance" });
      break;
    }
    hooks.onWaiting(round.why);
    await sleep(backoff, undefined, { signal });
    backoff = Math.min(backoff * 2, timings.maxBackoffMs);
  }

  // Started alone: keep looking for a peer until the directory holds state, whoever put it there.
  for (;;) {
    await sleep(timings.pollMs, undefined, { signal });
    const round = await recoveryRound(deps);
    if (round.kind === "state") {
      if (round.reason.kind === "existing") {
        logger.info(
          { digest: round.reason.digest },
          "the state directory holds state now; no longer looking for peers",
        );
      }
      return;
    }
  }
}

async function recoveryRound(deps: RecoveryDeps): Promise<Round> {
  const { logger } = deps;
  let digest: string | undefined;
  try {
    digest = await deps.stateDigest();
  } catch (err) {
    logger.error({ err: String(err) }, "cannot read the state directory");
    return { kind: "wait", why: `cannot read the state directory: ${String(err)}` };
  }
  if (digest !== undefined) return { kind: "state", reason: { kind: "existing", digest } };

  const answer = await deps.askHandler();
  if (answer.kind === "unknown") {
    logger.warn(
      { reason: answer.reason },
      "no answer from the handler about peers; waiting (never assuming first instance)",
    );
    return { kind: "wait", why: `waiting for the handler: ${answer.reason}` };
  }
  if (answer.peers.length === 0) return { kind: "no-peers" };

  logger.info({ peers: answer.peers.map((p) => p.pod) }, "the handler named initialized peers");
  const failed: FailedPeer[] = [];
  for (const peer of answer.peers) {
    const fields = { peer: peer.pod, digest: peer.digest };
    logger.info(fields, "asking a peer for the state");
    let bundle: Bundle;
    try {
      bundle = await deps.fetchFromPeer(peer);
    } catch (err) {
      logger.warn({ ...fields, reason: (err as Error).message }, "peer failed; trying the next one");
      recordFailure(failed, peer.pod, err);
      continue;
    }
    try {
      await deps.writeState(bundle, peer, failed);
    } catch (err) {
      if (err instanceof StateExistsError) {
        logger.info("state appeared in the directory while recovering; keeping it");
        return recoveryRound(deps);
      }
      logger.error({ ...fields, err: String(err) }, "cannot write the recovered state");
      return { kind: "wait", why: `cannot write the state: ${String(err)}` };
    }
    logger.info(fields, "wrote the state recovered from a peer");
    return { kind: "state", reason: { kind: "recovered", digest: peer.digest, source: peer.pod } };
  }
  logger.warn({ peers: answer.peers.length }, "no peer delivered the state; asking again");
  return { kind: "wait", why: "no peer delivered the state yet" };
}
