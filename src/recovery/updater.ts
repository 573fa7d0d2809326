// Keeps this pod on the StatefulSet's head once it holds state (DESIGN.md, "State that
// changes"). It long-polls the handler's head and looks at the state directory, every second
// after a change and up to `idlePollMs` apart while nothing changes (cadence.ts), and at once
// when the confirmer's look saw a new digest (`saw`: one read of the directory serves both);
// update-rules.ts decides, this file acts:
//
// - hold: stage another pod's proposal from that pod (peer API with the digest, the same
//   encrypted, digest-checked transfer), then tell the handler (POST /v1/holds);
// - propose: a state the app wrote without asking (also its first `set`), with its parent;
// - catch up: swap the committed head in (staged here, or fetched from a pod that holds it);
// - refuse: keep an unasked write that cannot be a child of the head aside in
//   `.coordinator-ha/refused/<digest>/`, logged with both digests, then catch up.
//
// It also carries out the app's commits (commit-api.ts): stage, propose, wait for the quorum,
// swap in, answer. One step at a time: steps and the swap of a commit never interleave.
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import type { FailedPeer, Peer } from "../handler/api.ts";
import { bundleDigest, type Bundle } from "../state/bundle.ts";
import { keepBundle, keptBundle, pruneStaged, REFUSED, STAGED, swapBundle } from "../state/layout.ts";
import { readBundle, stateDigest } from "../state/store.ts";
import { recordFailure } from "./failed-peers.ts";
import type { PeersAnswer } from "./handler-client.ts";
import type { Head, HeadClient, ProposeAnswer } from "./head-client.ts";
import { nextLookMs } from "./cadence.ts";
import { writeSourceRecord } from "./source-record.ts";
import { decideUpdate, NO_STATE, type UpdateAction } from "./update-rules.ts";
import { createWaker } from "./waker.ts";

export interface UpdaterDeps {
  self: string;
  dir: string;
  certSha256: string;
  head: HeadClient;
  peers(): Promise<PeersAnswer>;
  /** Fetches a bundle from a peer; `staged`: ask for the given digest (a proposal). */
  fetch(peer: Peer, staged: boolean): Promise<Bundle>;
  /** Told of every state swapped in here (the confirmer confirms it at once). */
  swapped?(digest: string): void;
  logger: Logger;
}

export interface UpdaterTimings {
  /** Long-poll length of GET /v1/head (at most 30). */
  waitSeconds: number;
  /** How soon to look at the state directory again after a look that found a change. */
  pollMs: number;
  /** The longest wait between two looks while nothing changes (cadence.ts). */
  idlePollMs: number;
  /** Wait after an unknown answer of the handler. */
  retryMs: number;
  /** Wait before asking a handler without heads (404) again. */
  unsupportedRetryMs: number;
  /** How long a commit waits for its quorum; a proposal expires at the handler after 60 s. */
  commitTimeoutMs: number;
  /**
   * How long a commit sends its proposal again while the handler cannot be reached (every
   * handler replica restarting): a proposal is idempotent, and nothing is committed meanwhile.
   */
  proposeRetryMs: number;
}

export const DEFAULT_UPDATER_TIMINGS: UpdaterTimings = {
  waitSeconds: 25,
  pollMs: 1000,
  // The confirmer's looks (at most 8 s apart) wake the updater on a new digest: its own looks
  // are the fallback.
  idlePollMs: 60_000,
  retryMs: 1000,
  unsupportedRetryMs: 30_000,
  commitTimeoutMs: 70_000,
  // With the quorum's 70 s, within the 90 s that the app's commit call waits (commit-client.ts).
  proposeRetryMs: 15_000,
};

const MAX_BACKOFF_MS = 10_000;
/** How long a commit waits to see its own proposal in the head before it counts as gone. */
const UNSEEN_GRACE_MS = 5_000;

export type CommitResult =
  | { status: 200; digest: string }
  | { status: 409; error: string; head: string | null }
  | { status: 503; error: string };

export interface Updater {
  /** Runs until `signal` aborts. */
  run(signal: AbortSignal): Promise<void>;
  commit(parent: string | null, bundle: Bundle): Promise<CommitResult>;
  /**
   * Whether a confirmation of `digest` can be right now: the committed head, or no head yet.
   * A state the app wrote is proposed first, so that its pod is not marked conflicting for
   * the moment until it is committed. Without a head from the handler (an older handler, or
   * none seen yet), anything can.
   */
  confirmable(digest: string): boolean;
  /** Digests staged here, served to peers that hold a proposal. */
  staged(digest: string): Promise<Bundle | undefined>;
  /** Another look at the directory found `digest`: look now if it is not the last one seen here. */
  saw(digest: string | undefined): void;
}

export function createUpdater(deps: UpdaterDeps, timings: UpdaterTimings = DEFAULT_UPDATER_TIMINGS): Updater {
  const { dir, logger } = deps;
  let head: Head | "unsupported" | undefined;
  let base: string | undefined;
  let looked = false;
  let committing = false;
  let lastFailure: string | undefined;
  /** The live digest at the last step; null before the first. */
  let lastLive: string | undefined | null = null;
  /** The local loop's wait between looks; a new digest seen elsewhere ends it. */
  const looks = createWaker();
  const held = new Set<string>();
  const refused = new Set<string>();

  /** Committed digests in the order this sidecar saw them: the head never moves back. */
  const seenCommitted: string[] = [];
  /** Takes `next` as the head unless its committed state is older than one seen already. */
  const accept = (next: Head): boolean => {
    const c = next.committed;
    if (c !== null) {
      const at = seenCommitted.indexOf(c);
      if (at !== -1 && at < seenCommitted.length - 1) return false;
      if (at === -1) seenCommitted.push(c);
    } else if (seenCommitted.length > 0) {
      return false;
    }
    head = next;
    return true;
  };

  let queue: Promise<unknown> = Promise.resolve();
  const serialized = <T>(job: () => Promise<T>): Promise<T> => {
    const run = queue.then(job);
    queue = run.catch(() => undefined);
    return run;
  };

  const catchUp = async (digest: string): Promise<void> => {
    let bundle = await keptBundle(dir, STAGED, digest);
    let source: string | null = null;
    const failedPeers: FailedPeer[] = [];
    if (!bundle) {
      const answer = await deps.peers();
      if (answer.kind === "unknown") throw new Error(`cannot ask for peers: ${answer.reason}`);
      for (const peer of answer.peers.filter((p) => p.digest === digest)) {
        try {
          bundle = await deps.fetch(peer, false);
          source = peer.pod;
          break;
        } catch (err) {
          logger.warn(
            { peer: peer.pod, digest, reason: (err as Error).message },
            "peer failed; trying the next one",
          );
          recordFailure(failedPeers, peer.pod, err);
        }
      }
      if (!bundle) throw new Error(`no peer delivered the head ${digest} yet`);
    }
    if (source) await writeSourceRecord(dir, { source, digest, failedPeers });
    await swapBundle(dir, bundle);
    base = digest;
    logger.info({ digest, source }, "swapped the committed head in: this pod holds it now");
    deps.swapped?.(digest);
  };

  const act = async (action: UpdateAction, live: string | undefined, now: Head): Promise<void> => {
    switch (action.kind) {
      case "none":
        if (action.rule === "U4") {
          base = live;
          await pruneStaged(dir, new Set(now.proposal ? [now.proposal.digest] : []));
        }
        return;
      case "hold": {
        const p = now.proposal!;
        const bundle = await deps.fetch(
          { pod: p.by, uid: "", ip: p.ip, port: p.port, digest: p.digest, certSha256: p.certSha256 },
          true,
        );
        await keepBundle(dir, STAGED, p.digest, bundle);
        const answer = await deps.head.hold(p.digest);
        if (answer.kind === "unknown") throw new Error(`cannot report the hold: ${answer.reason}`);
        held.add(p.digest);
        const fields = { digest: p.digest, parent: p.parent, proposer: p.by };
        if (answer.kind === "refused")
          logger.info({ ...fields, reason: answer.error }, "the proposal is gone");
        else
          logger.info(
            { ...fields, committed: answer.committed },
            "staged and holding another pod's proposal",
          );
        return;
      }
      case "propose": {
        const fields = { digest: action.digest, parent: action.parent };
        const answer = await deps.head.propose(action.digest, action.parent, deps.certSha256);
        if (answer.kind === "unknown") throw new Error(`cannot propose: ${answer.reason}`);
        if (answer.kind === "pending")
          logger.info(fields, "proposed a state the app wrote (without a commit call)");
        if (answer.kind === "committed") {
          base = action.digest;
          accept({ committed: action.digest, proposal: null });
          logger.info(fields, "the state the app wrote is committed");
        }
        if (answer.kind === "refused" && answer.reason !== "update_in_progress") {
          await refuse(action.digest, answer.head ?? now.committed, answer.error);
        }
        return;
      }
      case "catch-up":
        await catchUp(action.digest);
        return;
      case "refuse":
        await refuse(action.digest, action.then, "this pod did not hold the head when its app wrote it");
        await catchUp(action.then);
        return;
    }
  };

  const refuse = async (digest: string, headDigest: string | null, why: string): Promise<void> => {
    const bundle = await readBundle(dir);
    if (bundleDigest(bundle) === digest) {
      const where = await keepBundle(dir, REFUSED, digest, bundle);
      logger.error(
        { digest, head: headDigest, keptAt: where, reason: why },
        "refused a state the app wrote: it is kept aside for the operator, and the pod returns to the head",
      );
    }
    refused.add(digest);
  };

  /** One look and what it calls for; true when it found the pod settled (cadence.ts, L2). */
  const step = () => serialized(look);

  const look = async (): Promise<boolean> => {
    const now = head;
    // Without a head there is nothing to follow; a head that arrives steps at once.
    if (now === undefined || now === "unsupported") return true;
    let live: string | undefined;
    try {
      live = await stateDigest(dir);
    } catch (err) {
      logger.warn({ err: String(err) }, "cannot read the state directory");
      return false;
    }
    const unchanged = live === lastLive;
    lastLive = live;
    if (!looked) {
      looked = true;
      base = live ?? NO_STATE;
    }
    const action = decideUpdate({ self: deps.self, live, base, head: now, held, refused, committing });
    if (action.kind !== "none") logger.debug({ rule: action.rule, action: action.kind, live }, "update step");
    try {
      await act(action, live, now);
      lastFailure = undefined;
      return unchanged && action.kind === "none";
    } catch (err) {
      // Retried every poll: log a failure when it first happens, not every second.
      const reason = (err as Error).message;
      const fields = { rule: action.rule, action: action.kind, live, reason };
      if (reason !== lastFailure) logger.warn(fields, "update step failed; retrying");
      else logger.debug(fields, "update step failed again");
      lastFailure = reason;
      return false;
    }
  };

  return {
    async run(signal) {
      const stopped = new Promise<undefined>((resolve) =>
        signal.addEventListener("abort", () => resolve(undefined)),
      );
      const local = (async () => {
        let wait = timings.pollMs;
        for (;;) {
          await looks.nap(wait, signal);
          if (signal.aborted) return;
          const settled = await step();
          wait = nextLookMs({ settled, lastWaitMs: wait }, timings);
        }
      })();
      const remote = (async () => {
        let unsupportedLogged = false;
        let backoff = timings.retryMs;
        for (;;) {
          const known = head === "unsupported" ? undefined : head;
          // A long-poll must not hold up the sidecar's shutdown.
          // The first ask returns at once: a pod learns the head it starts with.
          const wait = head === undefined ? 0 : timings.waitSeconds;
          const answer = await Promise.race([deps.head.head(known, wait), stopped]);
          if (answer === undefined || signal.aborted) return;
          if (answer.kind === "unsupported") {
            if (!unsupportedLogged) {
              logger.warn(
                { reason: answer.reason },
                "the handler keeps no head: updates cannot be committed",
              );
            }
            unsupportedLogged = true;
            head = "unsupported";
            await sleep(timings.unsupportedRetryMs, undefined, { signal });
            continue;
          }
          if (answer.kind === "unknown") {
            logger.warn(
              { reason: answer.reason, retryInMs: backoff },
              "no head from the handler; asking again",
            );
            await sleep(backoff, undefined, { signal });
            backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
            continue;
          }
          backoff = timings.retryMs;
          if (!accept(answer.head)) {
            // An answer older than one seen before (a lagging handler replica): never go back.
            logger.debug({ committed: answer.head.committed }, "ignored a head older than one seen before");
            await sleep(timings.retryMs, undefined, { signal });
            continue;
          }
          // A head that calls for more (a fetch that failed, a proposal to hold) is followed by
          // the local loop's closer looks from now on.
          if (!(await step())) looks.wake();
          // A busy handler answered at once instead of holding the poll: ask again later.
          if (answer.pollAfterMs) await sleep(answer.pollAfterMs, undefined, { signal });
        }
      })();
      await Promise.all([local, remote]);
    },

    async commit(parent, bundle) {
      const digest = bundleDigest(bundle);
      const fields = { digest, parent };
      if (head === "unsupported") {
        return {
          status: 503,
          error: "the handler keeps no head (an older coordinator-ha): updates cannot be committed",
        };
      }
      if (committing) return { status: 409, error: "another commit of this pod is in progress", head: null };
      committing = true;
      try {
        const live = await serialized(() => stateDigest(dir));
        if (parent !== (live ?? null) && digest !== live) {
          return {
            status: 409,
            error: `the parent ${parent} is not the live state ${live ?? "(none)"}: reload the state and update from it`,
            head: head?.committed ?? null,
          };
        }
        await keepBundle(dir, STAGED, digest, bundle);
        const answer = await proposeRetrying(digest, parent);
        logger.info({ ...fields, answer: answer.kind }, "proposed an update of the app");
        if (answer.kind === "unknown")
          return { status: 503, error: `cannot reach the handler: ${answer.reason}; nothing committed` };
        if (answer.kind === "refused") return { status: 409, error: answer.error, head: answer.head };
        if (answer.kind === "pending") {
          const outcome = await awaitQuorum(digest, parent);
          if (outcome) return outcome;
        }
        // The head as the handler now has it: a step must not take the parent for the head.
        accept({ committed: digest, proposal: null });
        await serialized(async () => {
          await swapBundle(dir, bundle);
          base = digest;
        });
        deps.swapped?.(digest);
        logger.info(fields, "committed an update of the app: a quorum holds it, and it is live here");
        return { status: 200, digest };
      } finally {
        committing = false;
      }
    },

    confirmable(digest) {
      if (head === undefined || head === "unsupported") return true;
      return head.committed === digest || (head.committed === null && head.proposal === null);
    },

    staged: (digest) => keptBundle(dir, STAGED, digest),

    saw(digest) {
      if (digest !== lastLive) looks.wake();
    },
  };

  /** Proposes `digest`, again while the handler cannot be reached, for up to proposeRetryMs. */
  async function proposeRetrying(digest: string, parent: string | null): Promise<ProposeAnswer> {
    const giveUpAt = Date.now() + timings.proposeRetryMs;
    for (;;) {
      const answer = await deps.head.propose(digest, parent, deps.certSha256);
      if (answer.kind !== "unknown" || Date.now() + timings.retryMs > giveUpAt) return answer;
      logger.warn(
        { digest, parent, reason: answer.reason, retryInMs: timings.retryMs },
        "cannot reach the handler to propose the update; proposing again",
      );
      await sleep(timings.retryMs);
    }
  }

  /** Undefined once `digest` is committed; else the answer for the app. */
  async function awaitQuorum(digest: string, parent: string | null): Promise<CommitResult | undefined> {
    const started = Date.now();
    const deadline = started + timings.commitTimeoutMs;
    let seen = false;
    let known: Head = { committed: parent, proposal: null };
    // The first poll with no proposal known returns at once with the head as it is.
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) {
        return {
          status: 503,
          error: `no quorum held ${digest} within ${timings.commitTimeoutMs / 1000} s; nothing committed`,
        };
      }
      const answer = await deps.head.head(
        known,
        Math.max(1, Math.min(timings.waitSeconds, Math.ceil(left / 1000))),
      );
      if (answer.kind !== "head") {
        await sleep(timings.retryMs);
        continue;
      }
      const now = answer.head;
      if (!accept(now)) {
        await sleep(timings.retryMs);
        continue;
      }
      if (now.committed === digest) return undefined;
      if (now.committed !== parent) {
        return {
          status: 409,
          error: `another update was committed first: the head is ${now.committed}`,
          head: now.committed,
        };
      }
      if (now.proposal?.digest !== digest) {
        // A handler replica whose view of the StateHead lags behind the one that accepted the
        // proposal answers without it: only a proposal seen and then gone is abandoned.
        if (!seen && Date.now() - started < UNSEEN_GRACE_MS) {
          await sleep(Math.min(timings.retryMs, 200));
          continue;
        }
        return {
          status: 503,
          error: `the update of ${digest} was abandoned before a quorum held it (it expired, or its proposer was replaced); nothing committed`,
        };
      }
      seen = true;
      known = now;
      // A busy handler did not hold the poll: a commit waiting for its quorum asks every second.
      if (answer.pollAfterMs) await sleep(Math.min(answer.pollAfterMs, timings.retryMs));
    }
  }
}
