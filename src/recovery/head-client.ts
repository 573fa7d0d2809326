// The sidecar's calls about the StatefulSet's head (the committed state and a pending
// proposal, kept by the handler in a StateHead object; the protocol is in docs/recovery.md):
//
//   GET  /v1/head?known=&proposal=&waitSeconds=N   long-poll until the head differs
//   POST /v1/proposals {digest, parent, certSha256} 202 pending, 200 committed, 409 refused
//   POST /v1/holds {digest}                         200 {committed}, 409 no such proposal
//
// Same token and CA as the other handler calls. A handler that does not know these routes
// (404, an older release) is "unsupported": the sidecar then recovers and confirms as before,
// and its commit API answers 503.
import { isIP } from "node:net";
import type { JsonResponse } from "../http/client.ts";
import { isDigest } from "../state/bundle.ts";
import { errorOf } from "./handler-client.ts";

export interface HeadProposal {
  digest: string;
  parent: string | null;
  by: string;
  ip: string;
  port: number;
  certSha256: string;
}

export interface Head {
  committed: string | null;
  proposal: HeadProposal | null;
}

export type HeadAnswer =
  /** `pollAfterMs`: the handler held too many long-polls and answered at once; ask again then. */
  | { kind: "head"; head: Head; pollAfterMs?: number }
  | { kind: "unsupported"; reason: string }
  | { kind: "unknown"; reason: string };

export type ProposeAnswer =
  | { kind: "pending" }
  | { kind: "committed" }
  /** `reason`: the handler's code (update_in_progress, stale_parent, conflict). */
  | { kind: "refused"; reason: string; error: string; head: string | null }
  | { kind: "unknown"; reason: string };

export type HoldAnswer =
  | { kind: "held"; committed: boolean }
  | { kind: "refused"; error: string }
  | { kind: "unknown"; reason: string };

export interface HeadClient {
  head(known: Head | undefined, waitSeconds: number): Promise<HeadAnswer>;
  propose(digest: string, parent: string | null, certSha256: string): Promise<ProposeAnswer>;
  hold(digest: string): Promise<HoldAnswer>;
}

/** How the handler client makes a call (handler-client.ts's, with the token and the CA). */
export type HandlerCall = (
  method: "GET" | "POST",
  path: string,
  body?: unknown,
  timeoutMs?: number,
) => Promise<JsonResponse>;

const CERT_SHA256 = /^[0-9a-f]{64}$/;
/** A handler's pollAfterSeconds is capped here: a sidecar never waits longer for the head. */
const MAX_POLL_AFTER_SECONDS = 60;

/**
 * `longPoll` makes the GET /v1/head calls: the sidecar gives it a keep-alive connection, since a
 * long-poll loop asks again as soon as it has its answer (a TLS handshake every 25 s saved).
 * Proposals and holds, rare and far apart, take a new connection each: one kept idle would be
 * closed by the handler after a few seconds, and a call on it just then would fail.
 */
export function headClient(call: HandlerCall, longPoll: HandlerCall = call): HeadClient {
  const attempt = async (
    via: HandlerCall,
    ...args: Parameters<HandlerCall>
  ): Promise<JsonResponse | string> => {
    try {
      return await via(...args);
    } catch (err) {
      return (err as Error).message;
    }
  };
  return {
    async head(known, waitSeconds) {
      const query = new URLSearchParams({
        known: known?.committed ?? "",
        proposal: known?.proposal?.digest ?? "",
        waitSeconds: String(waitSeconds),
      });
      const res = await attempt(longPoll, "GET", `/v1/head?${query}`, undefined, (waitSeconds + 10) * 1000);
      if (typeof res === "string") return { kind: "unknown", reason: res };
      if (res.status === 404)
        return { kind: "unsupported", reason: `handler answered 404: ${errorOf(res.body)}` };
      if (res.status !== 200)
        return { kind: "unknown", reason: `handler answered ${res.status}: ${errorOf(res.body)}` };
      const head = parseHead(res.body);
      if (!head) return { kind: "unknown", reason: "handler answered 200 with a malformed head" };
      const after = isObject(res.body) ? res.body["pollAfterSeconds"] : undefined;
      return typeof after === "number" && Number.isInteger(after) && after > 0
        ? { kind: "head", head, pollAfterMs: Math.min(after, MAX_POLL_AFTER_SECONDS) * 1000 }
        : { kind: "head", head };
    },
    async propose(digest, parent, certSha256) {
      const res = await attempt(call, "POST", "/v1/proposals", { digest, parent, certSha256 });
      if (typeof res === "string") return { kind: "unknown", reason: res };
      if (res.status === 202) return { kind: "pending" };
      if (res.status === 200) return { kind: "committed" };
      if (res.status === 409) {
        const body = isObject(res.body) ? res.body : {};
        return {
          kind: "refused",
          reason: typeof body["reason"] === "string" ? body["reason"] : "conflict",
          error: errorOf(res.body),
          head: headDigest(body["head"]),
        };
      }
      return { kind: "unknown", reason: `handler answered ${res.status}: ${errorOf(res.body)}` };
    },
    async hold(digest) {
      const res = await attempt(call, "POST", "/v1/holds", { digest });
      if (typeof res === "string") return { kind: "unknown", reason: res };
      if (res.status === 200)
        return { kind: "held", committed: isObject(res.body) && res.body["committed"] === true };
      if (res.status === 409) return { kind: "refused", error: errorOf(res.body) };
      return { kind: "unknown", reason: `handler answered ${res.status}: ${errorOf(res.body)}` };
    },
  };
}

/** The head in a GET /v1/head answer, or undefined when it is malformed. */
export function parseHead(body: unknown): Head | undefined {
  if (!isObject(body)) return undefined;
  const committed = headDigest(body["committed"]);
  if (committed === null && body["committed"] !== null && body["committed"] !== undefined) return undefined;
  const p = body["proposal"];
  if (p === null || p === undefined) return { committed, proposal: null };
  if (
    !isObject(p) ||
    !isDigest(p["digest"]) ||
    !(p["parent"] === null || isDigest(p["parent"])) ||
    typeof p["by"] !== "string" ||
    typeof p["ip"] !== "string" ||
    isIP(p["ip"]) === 0 ||
    typeof p["port"] !== "number" ||
    !Number.isInteger(p["port"]) ||
    p["port"] < 1 ||
    p["port"] > 65535 ||
    typeof p["certSha256"] !== "string" ||
    !CERT_SHA256.test(p["certSha256"])
  ) {
    return undefined;
  }
  return {
    committed,
    proposal: {
      digest: p["digest"],
      parent: p["parent"] as string | null,
      by: p["by"],
      ip: p["ip"],
      port: p["port"],
      certSha256: p["certSha256"],
    },
  };
}

/** A digest given as a string or as {digest}. */
function headDigest(value: unknown): string | null {
  if (isDigest(value)) return value;
  if (isObject(value) && isDigest(value["digest"])) return value["digest"];
  return null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
