// Tells the handler that this pod's app holds the state (POST /v1/recovered), so that the
// handler sets the readiness gate. It confirms when the app is ready and the directory holds
// state, retries with capped back-off until the handler has recorded it, and then repeats
// the confirmation every `reconfirmMs` while the app stays ready: the handler skips
// unchanged writes, and a repeat re-opens a gate that the handler closed because the app
// container restarted while no look saw the app unready. A new digest or the app turning
// ready again confirms at the look that sees it. Looks are `pollMs` apart after a change and
// slow down to `idlePollMs` while the pod is settled (cadence.ts); a state that the updater
// swaps in wakes the confirmer (`waker`), so that its gate follows the swap at once.
import type { Logger } from "pino";
import type { RecoveredRequest } from "../handler/api.ts";
import { nextLookMs } from "./cadence.ts";
import type { ConfirmAnswer } from "./handler-client.ts";
import type { Provenance } from "./source-record.ts";
import { createWaker, type Waker } from "./waker.ts";

export interface ConfirmerDeps {
  stateDigest(): Promise<string | undefined>;
  /** The app's readiness now. */
  appReady(): Promise<boolean>;
  /**
   * The peer that state `digest` came from (null when it was initialized in this pod), and
   * the peers that failed to deliver it first.
   */
  sourceOf(digest: string): Promise<Provenance>;
  confirm(request: RecoveredRequest): Promise<ConfirmAnswer>;
  /**
   * Whether a confirmation of `digest` can be right now (updater.ts): not while a state the
   * app wrote waits to be committed. Default: always.
   */
  confirmable?(digest: string): boolean;
  /** Told the digest of every look (the updater looks again when it changed). */
  sawDigest?(digest: string | undefined): void;
  certSha256: string;
  logger: Logger;
  now?: () => number;
  /** Ends a wait between looks early (the updater swapped a state in); default: none does. */
  waker?: Waker;
  /** Waits between looks; default the waker's nap. */
  wait?: (ms: number, signal: AbortSignal) => Promise<unknown>;
}

export interface ConfirmerTimings {
  /** How soon to look at the app and the directory again after a look that found a change. */
  pollMs: number;
  /** The longest wait between two looks while nothing changes (cadence.ts). */
  idlePollMs: number;
  reconfirmMs: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
}

export const DEFAULT_CONFIRMER_TIMINGS: ConfirmerTimings = {
  pollMs: 1000,
  idlePollMs: 8000,
  reconfirmMs: 20_000,
  initialBackoffMs: 500,
  maxBackoffMs: 10_000,
};

/** What the confirmer remembers between looks. */
export interface ConfirmMemory {
  /** The last confirmation the handler accepted. */
  confirmed?: { digest: string; at: number };
  /** The app was ready at the last look. */
  wasReady: boolean;
  /** The last attempt failed and must be retried. */
  failing: boolean;
}

/** Whether to confirm now: pure, so that every rule above is one line and tested. */
export function confirmDue(
  memory: ConfirmMemory,
  look: { ready: boolean; digest: string | undefined; now: number },
  reconfirmMs: number,
): boolean {
  if (!look.ready || look.digest === undefined) return false;
  const last = memory.confirmed;
  return (
    memory.failing ||
    !memory.wasReady ||
    last === undefined ||
    last.digest !== look.digest ||
    look.now - last.at >= reconfirmMs
  );
}

/**
 * Whether a look found the pod settled: the app was and is ready, with the state that the
 * handler accepted last, and nothing is to be retried. Pure, like confirmDue; `memory` as it was
 * before the look.
 */
export function lookSettled(
  memory: ConfirmMemory,
  look: { ready: boolean; digest: string | undefined },
): boolean {
  return (
    look.ready &&
    memory.wasReady &&
    !memory.failing &&
    look.digest !== undefined &&
    memory.confirmed?.digest === look.digest
  );
}

/** Runs until `signal` aborts. */
export async function runConfirmer(
  deps: ConfirmerDeps,
  signal: AbortSignal,
  timings: ConfirmerTimings = DEFAULT_CONFIRMER_TIMINGS,
): Promise<void> {
  const { logger } = deps;
  const now = deps.now ?? Date.now;
  const memory: ConfirmMemory = { wasReady: false, failing: false };
  let backoff = timings.initialBackoffMs;
  let lastWaitMs = timings.pollMs;
  const waker = deps.waker ?? createWaker();
  /**
   * A state whose failed peers the handler refused (400: a handler older than the field). They
   * are not sent again: a report of failures must never keep the gate closed.
   */
  let unreported: string | undefined;
  const look = async (): Promise<number> => {
    const digest = await deps.stateDigest().catch((err: unknown) => {
      logger.error({ err: String(err) }, "cannot read the state directory");
      return undefined;
    });
    deps.sawDigest?.(digest);
    const ready = digest !== undefined && (await deps.appReady());
    if (ready && !memory.wasReady) logger.info({ digest }, "the app is ready and holds the state");
    if (!ready && memory.wasReady) logger.warn("the app is not ready any more");
    const due = confirmDue(memory, { ready, digest, now: now() }, timings.reconfirmMs);
    const pace = nextLookMs({ settled: lookSettled(memory, { ready, digest }), lastWaitMs }, timings);
    const wasReady = memory.wasReady;
    memory.wasReady = ready;
    if (!due || digest === undefined) return pace;
    if (deps.confirmable && !deps.confirmable(digest)) {
      // Looked at again next time: `wasReady` must not hide the first confirmation.
      memory.wasReady = wasReady;
      return timings.pollMs;
    }

    const { source, failedPeers } = await deps.sourceOf(digest);
    const request: RecoveredRequest = {
      digest,
      source,
      certSha256: deps.certSha256,
      // Until the handler accepted this state once: it recorded them then, and the confirmation
      // that re-opens the gate after an app restart must not report them again.
      ...(failedPeers.length > 0 && memory.confirmed?.digest !== digest && unreported !== digest
        ? { failedPeers }
        : {}),
    };
    const answer = await deps.confirm(request);
    if (!answer.ok) {
      if (answer.status === 400 && request.failedPeers) {
        unreported = digest;
        logger.warn(
          { digest, reason: answer.reason },
          "the handler refused the failed peers; confirming without them",
        );
      }
      return failed(digest, answer.reason);
    }
    const first = memory.failing || memory.confirmed?.digest !== digest || !wasReady;
    const fields = { digest, source: request.source, changed: answer.changed };
    if (first || answer.changed) logger.info(fields, "confirmed to the handler: the app holds the state");
    else logger.debug(fields, "re-confirmed to the handler");
    memory.confirmed = { digest, at: now() };
    memory.failing = false;
    backoff = timings.initialBackoffMs;
    return pace;
  };
  const failed = (digest: string | undefined, reason: string): number => {
    logger.warn({ digest, reason, retryInMs: backoff }, "confirmation failed; retrying");
    memory.failing = true;
    const wait = backoff;
    backoff = Math.min(backoff * 2, timings.maxBackoffMs);
    return wait;
  };

  for (;;) {
    // An unexpected error (the source record unreadable) is one failed attempt, not the end.
    const wait = await look().catch((err: unknown) => failed(undefined, String(err)));
    lastWaitMs = wait;
    await (deps.wait ?? ((ms, s) => waker.nap(ms, s)))(wait, signal);
    if (signal.aborted) return;
  }
}
