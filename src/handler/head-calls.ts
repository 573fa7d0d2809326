// The calls about a StatefulSet's head, for a caller that service.ts has authenticated and
// checked (a live, gated, selected pod of a StatefulSet):
//   POST /v1/proposals  propose an update (rules.ts, P1-P7)
//   POST /v1/holds      report that the caller staged the proposed bundle (H1-H4)
//   GET  /v1/head       the head and the pending proposal, long-polled
// Each decision is made on a live read of the StateHead and written by compare-and-swap
// (store.ts); the quorum comes from a live read of the StatefulSet. One log line per decision,
// with the digest asked about and the head's.
import { EventEmitter } from "node:events";
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { PodCache } from "../kube/pod-cache.ts";
import type { StatefulSetApi } from "../kube/statefulsets.ts";
import type {
  CommittedView,
  HeadRefusalBody,
  HeadResponse,
  HoldRequest,
  ProposalRequest,
  ProposalView,
} from "./api.ts";
import { podsNow } from "./confirm.ts";
import {
  abandonReason,
  decideHold,
  decidePropose,
  DEFAULT_PROPOSAL_TTL_MS,
  forgetLostHead,
  liveHolders,
  QUORUM_ANNOTATION,
  quorumOf,
  type Abandoned,
  type HeadContext,
} from "./head/rules.ts";
import type { HeadSpec, StatefulSetRef } from "./head/state-head.ts";
import type { HeadStore } from "./head/store.ts";
import type { HandlerMetrics } from "./metrics.ts";
import { peerPort, podFields } from "./pod.ts";
import { refuse, type Refusal } from "./reasons.ts";
import type { HeadQuery } from "./request.ts";

export interface HeadCaller {
  pod: V1Pod;
  statefulSet: StatefulSetRef;
}

export interface HeadAnswer {
  status: number;
  body:
    | HeadResponse
    | HeadRefusalBody
    | { committed: boolean }
    | { proposal: ProposalView | null; quorum: number };
}

export interface HeadCalls {
  propose(caller: HeadCaller, request: ProposalRequest): Promise<HeadAnswer | Refusal>;
  hold(caller: HeadCaller, request: HoldRequest): Promise<HeadAnswer | Refusal>;
  /** Answers at once when the head differs from the query, else on its next change or after the wait. */
  head(caller: HeadCaller, query: HeadQuery, gone: AbortSignal): Promise<HeadAnswer | Refusal>;
}

/** Tells the long-polls that a StateHead ("<namespace>/<name>") changed. */
export class HeadChanges extends EventEmitter {
  changed(namespace: string, name: string): void {
    this.emit(`${namespace}/${name}`);
  }
}

export interface HeadCallsOptions {
  store: HeadStore;
  statefulSets: StatefulSetApi;
  cache: PodCache;
  changes: HeadChanges;
  metrics: HandlerMetrics;
  logger: Logger;
  proposalTtlMs?: number;
  /** Long-polls held at once at most; see MAX_LONG_POLLS. */
  maxLongPolls?: number;
  now?: () => Date;
}

/**
 * Every sidecar holds one long-poll of GET /v1/head open, so a replica's long-polls grow with
 * the Coordinator pods it serves (about 85 KiB each, a TLS connection and its request). Past
 * this many, a replica answers at once and tells the sidecar to ask again after
 * POLL_LATER_SECONDS: the head then reaches those sidecars up to that much later, and the
 * connections left (HANDLER_LIMITS.maxConnections) stay free for confirmations and peers.
 */
export const MAX_LONG_POLLS = 512;
export const POLL_LATER_SECONDS = 10;

export function createHeadCalls(opts: HeadCallsOptions): HeadCalls {
  const { store, logger, metrics } = opts;
  const now = opts.now ?? (() => new Date());
  const ttl = opts.proposalTtlMs ?? DEFAULT_PROPOSAL_TTL_MS;
  opts.changes.setMaxListeners(0);
  const maxLongPolls = opts.maxLongPolls ?? MAX_LONG_POLLS;
  let longPolls = 0;

  const context = async (caller: HeadCaller): Promise<HeadContext | Refusal> => {
    const namespace = caller.pod.metadata?.namespace ?? "";
    let quorum: number;
    try {
      const sts = await opts.statefulSets.get(namespace, caller.statefulSet.name);
      if (!sts || sts.uid !== caller.statefulSet.uid) {
        return refuse("pod_gone", `StatefulSet ${caller.statefulSet.name} no longer exists`);
      }
      quorum = quorumOf(sts.replicas, sts.annotations[QUORUM_ANNOTATION]);
    } catch (err) {
      logger.error({ ...podFields(caller.pod), err: String(err) }, "reading the StatefulSet failed");
      return refuse("unavailable", "the handler cannot read the StatefulSet right now; retry");
    }
    return {
      now: now(),
      pods: podsNow(caller.statefulSet, opts.cache.inNamespace(namespace), caller.pod),
      quorum,
      proposalTtlMs: ttl,
    };
  };

  const proposalView = (head: HeadSpec, ctx: HeadContext, namespace: string): ProposalView | null => {
    const p = head.proposal;
    if (!p || abandonReason(p, ctx)) return null;
    const proposer = opts.cache.get(namespace, p.by);
    const ip = proposer?.metadata?.uid === p.byUid ? proposer.status?.podIP : undefined;
    const port = proposer ? peerPort(proposer) : undefined;
    // Nobody can stage from a proposer without an address; it shows once the cache has one.
    if (!ip || port === undefined) return null;
    return {
      digest: p.digest,
      parent: p.parent,
      by: p.by,
      ip,
      port,
      certSha256: p.certSha256,
      expiresAt: p.expiresAt,
      holders: Object.keys(liveHolders(p.holders, ctx)).sort(),
    };
  };

  const committedView = (head: HeadSpec): CommittedView | null =>
    head.committed
      ? {
          digest: head.committed.digest,
          parent: head.committed.parent,
          by: head.committed.by,
          at: head.committed.at,
        }
      : null;
  // A head that no existing pod holds is shown as none (rule L): a pod started after every
  // instance was gone must not take its user's new state for a write behind a lost head.
  const headBody = (read: HeadSpec, ctx: HeadContext, namespace: string): HeadResponse => {
    const head = forgetLostHead(read, ctx, null);
    return {
      committed: committedView(head),
      proposal: proposalView(head, ctx, namespace),
      quorum: ctx.quorum,
    };
  };

  const decided = (
    caller: HeadCaller,
    fields: Record<string, unknown>,
    abandoned: Abandoned | undefined,
    written: boolean,
    message: string,
  ) => {
    if (abandoned && written) {
      metrics.commit("abandoned", abandoned.reason);
      logger.info(
        {
          ...podFields(caller.pod),
          decision: "abandon",
          reason: abandoned.reason,
          digest: abandoned.proposal.digest,
          proposer: abandoned.proposal.by,
        },
        "proposal abandoned before its quorum",
      );
    }
    logger.info({ ...podFields(caller.pod), ...fields }, message);
  };

  const committedNow = (caller: HeadCaller, next: HeadSpec | undefined, proposedAt: string | undefined) => {
    metrics.commit("committed", "");
    if (proposedAt && next?.committed) {
      metrics.commitLatency(Math.max(0, (Date.parse(next.committed.at) - Date.parse(proposedAt)) / 1000));
    }
    logger.info(
      {
        ...podFields(caller.pod),
        statefulSet: caller.statefulSet.name,
        decision: "commit",
        digest: next?.committed?.digest,
        parent: next?.committed?.parent,
        by: next?.committed?.by,
        holders: Object.keys(next?.committed?.holders ?? {}).sort(),
      },
      "update committed: a quorum holds it",
    );
  };

  const write = async <D extends { next?: HeadSpec }>(
    caller: HeadCaller,
    decide: (head: HeadSpec) => D,
  ): Promise<(D & { written: boolean }) | Refusal> => {
    try {
      return await store.decide(caller.pod.metadata?.namespace ?? "", caller.statefulSet, decide);
    } catch (err) {
      logger.error({ ...podFields(caller.pod), err: String(err) }, "writing the StateHead failed");
      return refuse("unavailable", "the handler cannot write the head right now; retry");
    }
  };

  return {
    async propose(caller, request) {
      const ctx = await context(caller);
      if ("reason" in ctx) return ctx;
      let proposedAt: string | undefined;
      let read: HeadSpec | undefined;
      const result = await write(caller, (head) => {
        read = head;
        const decision = decidePropose(
          head,
          { pod: caller.pod.metadata?.name ?? "", uid: caller.pod.metadata?.uid ?? "", ...request },
          ctx,
        );
        proposedAt = decision.next?.proposal?.at ?? decision.next?.committed?.at;
        return decision;
      });
      if ("reason" in result && !("kind" in result)) return result;
      const head = result.next ?? read!;
      const fields = {
        call: "proposal",
        decision: "propose",
        rule: result.rule,
        outcome: result.kind,
        digest: request.digest,
        parent: request.parent,
        head: read?.committed?.digest ?? null,
      };
      if (result.kind === "refused") {
        metrics.commit("refused", result.reason);
        decided(caller, fields, result.abandoned, result.written, result.message);
        const body: HeadRefusalBody = {
          error: result.message,
          reason: result.reason,
          head: read?.committed?.digest ?? null,
        };
        return { status: 409, body };
      }
      decided(caller, fields, result.abandoned, result.written, `proposal ${result.kind}`);
      if (result.kind === "accepted" && result.committed) committedNow(caller, result.next, proposedAt);
      if (result.kind === "committed" || (result.kind === "accepted" && result.committed)) {
        return { status: 200, body: headBody(head, ctx, caller.pod.metadata?.namespace ?? "") };
      }
      return { status: 202, body: headBody(head, ctx, caller.pod.metadata?.namespace ?? "") };
    },

    async hold(caller, request) {
      const ctx = await context(caller);
      if ("reason" in ctx) return ctx;
      let read: HeadSpec | undefined;
      const result = await write(caller, (head) => {
        read = head;
        return decideHold(
          head,
          { pod: caller.pod.metadata?.name ?? "", uid: caller.pod.metadata?.uid ?? "", ...request },
          ctx,
        );
      });
      if ("reason" in result && !("kind" in result)) return result;
      const fields = {
        call: "hold",
        decision: "hold",
        rule: result.rule,
        outcome: result.kind,
        digest: request.digest,
        head: read?.committed?.digest ?? null,
        proposal: read?.proposal?.digest ?? null,
      };
      if (result.kind === "refused") {
        decided(caller, fields, result.abandoned, result.written, result.message);
        const body: HeadRefusalBody = {
          error: result.message,
          reason: result.reason,
          head: read?.committed?.digest ?? null,
        };
        return { status: 409, body };
      }
      decided(
        caller,
        fields,
        result.abandoned,
        result.written,
        `hold ${result.kind === "held" ? "recorded" : "of the head"}`,
      );
      if (result.rule === "H3" && result.written) committedNow(caller, result.next, read?.proposal?.at);
      return { status: 200, body: { committed: result.kind === "committed" } };
    },

    async head(caller, query, gone) {
      const namespace = caller.pod.metadata?.namespace ?? "";
      const ctx = await context(caller);
      if ("reason" in ctx) return ctx;
      const read = async () => {
        ctx.now = now();
        return headBody(await store.read(namespace, caller.statefulSet), ctx, namespace);
      };
      const differs = (body: HeadResponse) =>
        (body.committed?.digest ?? "") !== query.known || (body.proposal?.digest ?? "") !== query.proposal;
      let body: HeadResponse;
      try {
        body = await read();
        if (!differs(body) && query.waitSeconds > 0 && !gone.aborted && longPolls >= maxLongPolls) {
          metrics.headPollDeferred();
          return { status: 200, body: { ...body, pollAfterSeconds: POLL_LATER_SECONDS } };
        }
        if (!differs(body) && query.waitSeconds > 0 && !gone.aborted) {
          longPolls++;
          metrics.longPolls(longPolls);
          await new Promise<void>((resolve) => {
            const key = `${namespace}/${caller.statefulSet.name}`;
            const done = () => {
              clearTimeout(timer);
              opts.changes.off(key, done);
              gone.removeEventListener("abort", done);
              longPolls--;
              metrics.longPolls(longPolls);
              resolve();
            };
            const timer = setTimeout(done, query.waitSeconds * 1000);
            opts.changes.on(key, done);
            gone.addEventListener("abort", done);
          });
          body = await read();
        }
      } catch (err) {
        logger.error({ ...podFields(caller.pod), err: String(err) }, "reading the StateHead failed");
        return refuse("unavailable", "the handler cannot read the head right now; retry");
      }
      return { status: 200, body };
    },
  };
}
