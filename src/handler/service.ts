// The handler's two API calls, from the bearer token to the answer: who is calling
// (identity), is that pod allowed (caller.ts), what the call means (confirm.ts, peers.ts),
// and the write. HTTP stays in server.ts; Kubernetes access is injected.
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
import type { ErrorBody, PeersResponse, RecoveredResponse } from "./api.ts";
import { checkCaller, checkWatched, type CallerCheck } from "./caller.ts";
import type { ConditionWriter } from "./condition-writer.ts";
import { decideConfirmation } from "./confirm.ts";
import type { HandlerMetrics } from "./metrics.ts";
import { selectPeers } from "./peers.ts";
import { refuse, refusalStatus, type Refusal } from "./reasons.ts";
import { parseRecoveredRequest } from "./request.ts";

export interface Answer {
  status: number;
  body: RecoveredResponse | PeersResponse | ErrorBody;
}

export interface HandlerService {
  /** `body` is the raw request body (JSON text). */
  confirm(authorization: string | undefined, body: string): Promise<Answer>;
  peers(authorization: string | undefined): Promise<Answer>;
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
  metrics: HandlerMetrics;
  logger: Logger;
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

  type Who = PodIdentity | undefined;
  const fieldsOf = (who: Who) => (who ? { namespace: who.namespace, pod: who.podName } : {});
  const refused = (call: "confirmation" | "peers", who: Who, refusal: Refusal, detail?: object): Answer => {
    const status = refusalStatus[refusal.reason];
    if (call === "confirmation") metrics.confirmation("refused", refusal.reason);
    else metrics.peersRequest("refused", refusal.reason);
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

  return {
    async confirm(authorization, body) {
      const who = await authenticate(authorization);
      if (!isIdentity(who)) return refused("confirmation", undefined, who);
      const unwatched = checkWatched(who, opts.namespaces);
      if (unwatched) return refused("confirmation", who, unwatched);
      const parsed = parseRecoveredRequest(body);
      if (!parsed.ok) return refused("confirmation", who, refuse("bad_request", parsed.message));
      // The peer and split-brain checks read the other pods from the cache.
      if (!opts.cache.synced()) return refused("confirmation", who, notSynced());

      for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
        const caller = await livePod(who);
        if (!isCallerCheck(caller)) return refused("confirmation", who, caller);
        if (!caller.ok) return refused("confirmation", who, caller.refusal);
        const decision = decideConfirmation(
          caller.pod,
          caller.statefulSet,
          parsed.request,
          opts.cache.inNamespace(who.namespace),
        );
        if (decision.kind === "refuse") {
          return refused("confirmation", who, decision.refusal, {
            digest: parsed.request.digest,
            source: parsed.request.source,
          });
        }
        const { desired } = decision;
        const answer = (changed: boolean): Answer => {
          metrics.confirmation(changed ? "recorded" : "unchanged", "");
          logger.info(
            {
              ...fieldsOf(who),
              call: "confirmation",
              changed,
              reason: desired.reason,
              digest: parsed.request.digest,
            },
            changed ? "confirmation recorded" : "confirmation unchanged",
          );
          return { status: 200, body: { changed, reason: desired.reason, message: desired.message } };
        };
        if (decision.kind === "unchanged") return answer(false);
        try {
          if ((await opts.writer.write(caller.pod, desired, decision.event)) === "patched")
            return answer(true);
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

    async peers(authorization) {
      const who = await authenticate(authorization);
      if (!isIdentity(who)) return refused("peers", undefined, who);
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
      const peers = selectPeers(caller.pod, caller.statefulSet, opts.cache.inNamespace(who.namespace));
      metrics.peersRequest("answered", "");
      logger.info({ ...fieldsOf(who), call: "peers", peers: peers.map((p) => p.pod) }, "peers answered");
      return {
        status: 200,
        body: { namespace: who.namespace, statefulSet: caller.statefulSet.name, peers },
      };
    },
  };
}

function isIdentity(value: PodIdentity | Refusal): value is PodIdentity {
  return !("reason" in value);
}

function isCallerCheck(value: CallerCheck | Refusal): value is CallerCheck {
  return "ok" in value;
}
