// The handler's API calls, from the bearer token to the answer: who is calling
// (identity), is that pod allowed (caller.ts), what the call means (confirm.ts, peers.ts,
// peer-access.ts), and the write. HTTP stays in server.ts; Kubernetes access is injected.
import type { Logger } from "pino";
import {
  createPodTokenVerifier,
  IdentityError,
  type JwksSource,
  type PodIdentity,
  type PodTokenVerifier,
} from "../identity/index.ts";
import type { LabelSelector } from "../kube/label-selector.ts";
import type { PodCache } from "../kube/pod-cache.ts";
import type { PodApi } from "../kube/pods.ts";
import { TOKEN_AUDIENCE } from "../names.ts";
import type { ErrorBody, PeerAccessResponse, PeersResponse, RecoveredResponse } from "./api.ts";
import { checkCaller, checkWatched, type CallerCheck } from "./caller.ts";
import type { ConditionWriter } from "./condition-writer.ts";
import { decideConfirmation, podsNow, type ConfirmDecision } from "./confirm.ts";
import { DEFAULT_PROPOSAL_TTL_MS } from "./head/rules.ts";
import type { HeadStore } from "./head/store.ts";
import type { HandlerMetrics } from "./metrics.ts";
import { selectPeers } from "./peers.ts";
import { refuse, refusalStatus, type Refusal } from "./reasons.ts";
import { decidePeerAccess } from "./peer-access.ts";
import type { HeadAnswer, HeadCaller, HeadCalls } from "./head-calls.ts";
import {
  parseHeadQuery,
  parseHoldRequest,
  parsePeerAccessRequest,
  parseProposalRequest,
  parseRecoveredRequest,
  type Parsed,
} from "./request.ts";

export interface Answer {
  status: number;
  body: RecoveredResponse | PeersResponse | PeerAccessResponse | ErrorBody | HeadAnswer["body"];
}

/** The calls of the API, for log lines and metrics. */
export type Call = "confirmation" | "peers" | "peer-access" | HeadCall;
export type HeadCall = "proposal" | "hold" | "head";

/** Who is calling (the token's pod), or the refusal to send without reading the body. */
export type Authenticated = { ok: true; who: PodIdentity } | { ok: false; answer: Answer };

export interface HandlerService {
  /**
   * Verifies the bearer token. Every call starts here, before its body is read: a stranger
   * costs one header and one signature check, never a body.
   */
  authenticate(call: Call, authorization: string | undefined): Promise<Authenticated>;
  /** `body` is the raw request body (JSON text). */
  confirm(who: PodIdentity, body: string): Promise<Answer>;
  peers(who: PodIdentity): Promise<Answer>;
  /** May the pod named in `body` receive the state from the caller (a peer)? */
  peerAccess(who: PodIdentity, body: string): Promise<Answer>;
  propose(who: PodIdentity, body: string): Promise<Answer>;
  hold(who: PodIdentity, body: string): Promise<Answer>;
  /** `gone` aborts when the caller hangs up (the long-poll ends). */
  head(who: PodIdentity, query: Record<string, unknown>, gone: AbortSignal): Promise<Answer>;
}

export interface HandlerServiceOptions {
  verifier: PodTokenVerifier;
  selector: LabelSelector;
  /** The only namespaces served (the handler's --namespace); undefined: all. */
  namespaces?: readonly string[] | undefined;
  cache: PodCache;
  /** Live reads: a confirmation is checked against the pod as the apiserver has it now. */
  pods: Pick<PodApi, "get">;
  writer: ConditionWriter;
  /** The StateHeads, read live and written by compare-and-swap. */
  store: HeadStore;
  /** POST /v1/proposals, POST /v1/holds, GET /v1/head. */
  headCalls: HeadCalls;
  metrics: HandlerMetrics;
  logger: Logger;
  now?: () => Date;
}

/** A write that loses a race re-reads the pod and decides again, this many times in all. */
const ATTEMPTS = 3;

/**
 * The verifier of the handler's callers: tokens for the handler's audience only. A sidecar's
 * peer token (audience coordinator-ha-peer) is in the hands of the peer it recovered from,
 * which must not be able to confirm or ask for peers as that pod.
 */
export function handlerTokenVerifier(issuer: string, keys: JwksSource): PodTokenVerifier {
  return createPodTokenVerifier({ issuer, audience: TOKEN_AUDIENCE, keys });
}

export function createHandlerService(opts: HandlerServiceOptions): HandlerService {
  const { logger, metrics } = opts;
  const now = opts.now ?? (() => new Date());

  type Who = PodIdentity | undefined;
  const fieldsOf = (who: Who) => (who ? { namespace: who.namespace, pod: who.podName } : {});
  const refused = (call: Call, who: Who, refusal: Refusal, detail?: object): Answer => {
    const status = refusalStatus[refusal.reason];
    if (call === "confirmation") metrics.confirmation("refused", refusal.reason);
    else if (call === "peers") metrics.peersRequest("refused", refusal.reason);
    else if (call === "peer-access") metrics.peerAccess("refused", refusal.reason);
    else metrics.headRequest(call, "refused", refusal.reason);
    logger.warn({ ...fieldsOf(who), call, status, reason: refusal.reason, ...detail }, refusal.message);
    return { status, body: { error: refusal.message } };
  };

  const authenticate = async (authorization: string | undefined): Promise<PodIdentity | Refusal> => {
    const token = /^Bearer +([A-Za-z0-9._~+/=-]+) *$/i.exec(authorization ?? "")?.[1];
    if (!token)
      return refuse(
        "missing_token",
        `missing bearer token: send the pod's projected token (audience ${TOKEN_AUDIENCE})`,
      );
    try {
      return await opts.verifier.verify(token);
    } catch (err) {
      if (err instanceof IdentityError) return refuse("invalid_token", `token refused: ${err.message}`);
      logger.error({ err: String(err) }, "cannot verify tokens: the issuer's keys are unavailable");
      return refuse("unavailable", "the handler cannot verify tokens right now; retry");
    }
  };

  const livePod = async (who: PodIdentity): Promise<CallerCheck | Refusal> => {
    try {
      return checkCaller(who, await opts.pods.get(who.namespace, who.podName), opts.selector);
    } catch (err) {
      logger.error({ ...fieldsOf(who), err: String(err) }, "reading the pod failed");
      return refuse("unavailable", "the handler cannot read the pod right now; retry");
    }
  };

  const notSynced = (): Refusal =>
    refuse("not_synced", `the handler's pod cache is not synced (${opts.cache.problem() ?? "stale"}); retry`);

  /** The head calls: the same checks of the caller as a confirmation, then head-calls.ts. */
  const headCall = async <T>(
    call: HeadCall,
    who: PodIdentity,
    parsed: Parsed<T>,
    run: (caller: HeadCaller, request: T) => Promise<HeadAnswer | Refusal>,
  ): Promise<Answer> => {
    const unwatched = checkWatched(who, opts.namespaces);
    if (unwatched) return refused(call, who, unwatched);
    if (!parsed.ok) return refused(call, who, refuse("bad_request", parsed.message));
    // Holders and proposers count only as live pods, which the cache knows.
    if (!opts.cache.synced()) return refused(call, who, notSynced());
    const caller = await livePod(who);
    if (!isCallerCheck(caller)) return refused(call, who, caller);
    if (!caller.ok) return refused(call, who, caller.refusal);
    const answer = await run(caller, parsed.request);
    if (!("status" in answer)) return refused(call, who, answer);
    metrics.headRequest(
      call,
      answer.status < 300 ? "answered" : "refused",
      answer.status < 300 ? "" : "head",
    );
    return answer;
  };

  return {
    async authenticate(call, authorization) {
      const who = await authenticate(authorization);
      if (!isIdentity(who)) return { ok: false, answer: refused(call, undefined, who) };
      return { ok: true, who };
    },

    async confirm(who, body) {
      const unwatched = checkWatched(who, opts.namespaces);
      if (unwatched) return refused("confirmation", who, unwatched);
      const parsed = parseRecoveredRequest(body);
      if (!parsed.ok) return refused("confirmation", who, refuse("bad_request", parsed.message));
      // The peer and split-brain checks read the other pods from the cache.
      if (!opts.cache.synced()) return refused("confirmation", who, notSynced());

      const request = parsed.request;
      for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
        const caller = await livePod(who);
        if (!isCallerCheck(caller)) return refused("confirmation", who, caller);
        if (!caller.ok) return refused("confirmation", who, caller.refusal);
        const { pod, statefulSet } = caller;
        const ctx = {
          now: now(),
          pods: podsNow(statefulSet, opts.cache.inNamespace(who.namespace), pod),
          quorum: Number.MAX_SAFE_INTEGER,
          proposalTtlMs: DEFAULT_PROPOSAL_TTL_MS,
        };
        // The member record goes into the StateHead first, by compare-and-swap; only a
        // recorded confirmation may open the gate. A replica that loses the race decides
        // again on the winner's head.
        let decision: ConfirmDecision | undefined;
        let headDigest: string | null = null;
        try {
          await opts.store.decide(who.namespace, statefulSet, (head) => {
            decision = decideConfirmation(pod, statefulSet, request, head, ctx);
            headDigest = head.committed?.digest ?? null;
            return decision.kind === "accept" && decision.next ? { next: decision.next } : {};
          });
        } catch (err) {
          logger.error(
            { ...fieldsOf(who), err: String(err) },
            "recording the confirmation in the StateHead failed",
          );
          return refused(
            "confirmation",
            who,
            refuse("unavailable", "the handler cannot record the confirmation right now; retry"),
          );
        }
        if (!decision) throw new Error("the head store decided nothing");
        const decided: ConfirmDecision = decision;
        const fields = {
          ...fieldsOf(who),
          call: "confirmation",
          decision: "confirm",
          rule: decided.head?.rule,
          digest: request.digest,
          head: decided.kind === "accept" ? (decided.head.next?.committed?.digest ?? headDigest) : headDigest,
          source: request.source,
          // Bounded by the parser: at most 8 pods, each reason at most 200 characters.
          ...(request.failedPeers?.length ? { failedPeers: request.failedPeers } : {}),
        };
        if (decided.kind === "refuse") return refused("confirmation", who, decided.refusal, fields);
        const { desired } = decided;
        const answer = (changed: boolean): Answer => {
          metrics.confirmation(changed ? "recorded" : "unchanged", "");
          logger.info(
            { ...fields, changed, reason: desired.reason },
            changed ? "confirmation recorded" : "confirmation unchanged",
          );
          return { status: 200, body: { changed, reason: desired.reason, message: desired.message } };
        };
        if (decided.events.length === 0) return answer(decided.next !== undefined);
        try {
          if ((await opts.writer.write(pod, desired, decided.events)) === "patched") {
            metrics.peerTransferFailures(decided.failedPeers);
            return answer(true);
          }
        } catch (err) {
          logger.error({ ...fieldsOf(who), err: String(err) }, "writing the condition failed");
          return refused(
            "confirmation",
            who,
            refuse("unavailable", "the handler cannot write the condition right now; retry"),
          );
        }
      }
      return refused(
        "confirmation",
        who,
        refuse(
          "unavailable",
          `the pod changed during each of ${ATTEMPTS} attempts to record the confirmation; retry`,
        ),
      );
    },

    async peers(who) {
      const unwatched = checkWatched(who, opts.namespaces);
      if (unwatched) return refused("peers", who, unwatched);
      // Only a synced cache may answer "no peer exists" (DESIGN.md, Trust).
      if (!opts.cache.synced()) return refused("peers", who, notSynced());
      const cached = opts.cache.get(who.namespace, who.podName);
      // A pod too new for the cache, or a namesake the cache has not caught up with, is
      // looked up live: a lagging cache must not turn a valid caller away.
      const caller =
        cached?.metadata?.uid === who.podUid ? checkCaller(who, cached, opts.selector) : await livePod(who);
      if (!isCallerCheck(caller)) return refused("peers", who, caller);
      if (!caller.ok) return refused("peers", who, caller.refusal);
      let head;
      try {
        head = await opts.store.read(who.namespace, caller.statefulSet);
      } catch (err) {
        logger.error({ ...fieldsOf(who), err: String(err) }, "reading the StateHead failed");
        return refused(
          "peers",
          who,
          refuse("unavailable", "the handler cannot read the head right now; retry"),
        );
      }
      const peers = selectPeers(caller.pod, caller.statefulSet, opts.cache.inNamespace(who.namespace), head);
      const digest = head.committed?.digest ?? null;
      metrics.peersRequest("answered", "");
      logger.info(
        { ...fieldsOf(who), call: "peers", peers: peers.map((p) => p.pod), head: digest },
        "peers answered",
      );
      return {
        status: 200,
        body: { namespace: who.namespace, statefulSet: caller.statefulSet.name, peers, head: { digest } },
      };
    },

    propose: (who, body) =>
      headCall("proposal", who, parseProposalRequest(body), (caller, request) =>
        opts.headCalls.propose(caller, request),
      ),
    hold: (who, body) =>
      headCall("hold", who, parseHoldRequest(body), (caller, request) =>
        opts.headCalls.hold(caller, request),
      ),
    head: (who, query, gone) =>
      headCall("head", who, parseHeadQuery(query), (caller, request) =>
        opts.headCalls.head(caller, request, gone),
      ),

    async peerAccess(who, body) {
      const unwatched = checkWatched(who, opts.namespaces);
      if (unwatched) return refused("peer-access", who, unwatched);
      const parsed = parsePeerAccessRequest(body);
      if (!parsed.ok) return refused("peer-access", who, refuse("bad_request", parsed.message));
      const candidate: PodIdentity = {
        namespace: parsed.request.namespace,
        podName: parsed.request.pod,
        podUid: parsed.request.uid,
        serviceAccount: parsed.request.serviceAccount,
      };
      // Both pods live from the apiserver, never from the cache: a pod deleted a moment ago
      // must not receive the state because the watch has not told us yet.
      const serving = await livePod(who);
      if (!isCallerCheck(serving)) return refused("peer-access", who, serving);
      if (!serving.ok) return refused("peer-access", who, serving.refusal);
      let live;
      try {
        // Another namespace is refused by the decision without a read (nor may we read there).
        live =
          candidate.namespace === who.namespace
            ? await opts.pods.get(candidate.namespace, candidate.podName)
            : undefined;
      } catch (err) {
        logger.error({ ...fieldsOf(who), err: String(err) }, "reading the pod failed");
        return refused(
          "peer-access",
          who,
          refuse("unavailable", "the handler cannot read the pod right now; retry"),
        );
      }
      const decision = decidePeerAccess(serving, candidate, live, opts.selector);
      const fields = {
        ...fieldsOf(who),
        call: "peer-access",
        callerNamespace: candidate.namespace,
        caller: candidate.podName,
        callerUid: candidate.podUid,
      };
      if (decision.allowed) {
        metrics.peerAccess("allowed", "");
        logger.info(fields, "peer access allowed: the caller is a live member");
        return { status: 200, body: { allowed: true } };
      }
      metrics.peerAccess("denied", decision.reason);
      logger.warn({ ...fields, reason: decision.reason }, `peer access denied: ${decision.message}`);
      return { status: 200, body: decision };
    },
  };
}

function isIdentity(value: PodIdentity | Refusal): value is PodIdentity {
  return !("reason" in value);
}

function isCallerCheck(value: CallerCheck | Refusal): value is CallerCheck {
  return "ok" in value;
}
