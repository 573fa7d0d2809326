// Validates the body of POST /v1/recovered (RecoveredRequest in api.ts) before anything
// else looks at it. Unknown fields are refused: a sidecar and its handler ship in the same
// image, so an unexpected field is a bug or an attack, not a newer client.
import {
  MAX_FAILED_PEER_REASON,
  MAX_FAILED_PEERS,
  type HoldRequest,
  type PeerAccessRequest,
  type ProposalRequest,
  type RecoveredRequest,
} from "./api.ts";
import { CERT_SHA256_PATTERN, DIGEST_PATTERN } from "./condition.ts";

const FIELDS = ["digest", "source", "certSha256", "failedPeers"];
const POD_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export type ParsedRequest = { ok: true; request: RecoveredRequest } | { ok: false; message: string };

export function parseRecoveredRequest(text: string): ParsedRequest {
  const bad = (message: string): ParsedRequest => ({ ok: false, message });
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return bad("body is not valid JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return bad("body must be a JSON object {digest, source, certSha256}");
  }
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !FIELDS.includes(k));
  if (unknown.length > 0) return bad(`unknown field(s): ${unknown.join(", ")}`);

  const { digest, source, certSha256, failedPeers } = fields;
  if (typeof digest !== "string" || !DIGEST_PATTERN.test(digest)) {
    return bad('digest must be "sha256:" followed by 64 lower-case hex digits');
  }
  if (typeof certSha256 !== "string" || !CERT_SHA256_PATTERN.test(certSha256)) {
    return bad("certSha256 must be 64 lower-case hex digits");
  }
  if (source !== null && (typeof source !== "string" || !POD_NAME.test(source))) {
    return bad("source must be null (initialized by its user) or the name of the peer pod");
  }
  if (failedPeers === undefined) return { ok: true, request: { digest, source, certSha256 } };
  const problem = failedPeersProblem(failedPeers);
  if (problem) return bad(problem);
  const failed = failedPeers as NonNullable<RecoveredRequest["failedPeers"]>;
  if (source === null && failed.length > 0) {
    return bad("failedPeers must be empty when source is null: a pod its user initialized asked no peer");
  }
  return { ok: true, request: { digest, source, certSha256, failedPeers: failed } };
}

const CONTROL = /\p{Cc}/u;

/**
 * Why `value` is not a list of failed peers (RecoveredRequest.failedPeers), or undefined. The
 * sidecar checks its own record with it too: the app can write into the state directory.
 */
export function failedPeersProblem(value: unknown): string | undefined {
  if (!Array.isArray(value)) return "failedPeers must be a list of {pod, reason}";
  if (value.length > MAX_FAILED_PEERS) return `failedPeers lists at most ${MAX_FAILED_PEERS} peers`;
  for (const [i, peer] of value.entries()) {
    const at = `failedPeers[${i}]`;
    if (typeof peer !== "object" || peer === null || Array.isArray(peer)) {
      return `${at} must be an object {pod, reason}`;
    }
    const keys = Object.keys(peer);
    if (keys.length !== 2 || !keys.includes("pod") || !keys.includes("reason")) {
      return `${at} must have exactly the fields pod and reason`;
    }
    const { pod, reason } = peer as Record<string, unknown>;
    if (typeof pod !== "string" || !POD_NAME.test(pod)) return `${at}.pod must be the name of a pod`;
    if (
      typeof reason !== "string" ||
      reason.length === 0 ||
      reason.length > MAX_FAILED_PEER_REASON ||
      CONTROL.test(reason)
    ) {
      return `${at}.reason must be 1 to ${MAX_FAILED_PEER_REASON} characters without control characters`;
    }
  }
  return undefined;
}

const PEER_ACCESS_FIELDS = ["namespace", "pod", "uid", "serviceAccount"];
/** Kubernetes names (DNS-1123 subdomain for service accounts) and uids, at most 253 characters. */
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const UID = /^[A-Za-z0-9-]{1,64}$/;

export type ParsedPeerAccess = { ok: true; request: PeerAccessRequest } | { ok: false; message: string };

/** Validates the body of POST /v1/peer-access (PeerAccessRequest in api.ts). */
export function parsePeerAccessRequest(text: string): ParsedPeerAccess {
  const bad = (message: string): ParsedPeerAccess => ({ ok: false, message });
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return bad("body is not valid JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return bad("body must be a JSON object {namespace, pod, uid, serviceAccount}");
  }
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !PEER_ACCESS_FIELDS.includes(k));
  if (unknown.length > 0) return bad(`unknown field(s): ${unknown.slice(0, 5).join(", ").slice(0, 200)}`);
  const { namespace, pod, uid, serviceAccount } = fields;
  for (const [name, value] of [
    ["namespace", namespace],
    ["pod", pod],
    ["serviceAccount", serviceAccount],
  ] as const) {
    if (typeof value !== "string" || !NAME.test(value)) return bad(`${name} must be a Kubernetes name`);
  }
  if (typeof uid !== "string" || !UID.test(uid)) return bad("uid must be a Kubernetes uid");
  return {
    ok: true,
    request: {
      namespace: namespace as string,
      pod: pod as string,
      uid,
      serviceAccount: serviceAccount as string,
    },
  };
}

export type Parsed<T> = { ok: true; request: T } | { ok: false; message: string };

/** An object with exactly `fields` (a subset may be optional), or the reason it is not. */
function objectWith(text: string, fields: string[], shape: string): Parsed<Record<string, unknown>> {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { ok: false, message: "body is not valid JSON" };
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return { ok: false, message: `body must be a JSON object ${shape}` };
  }
  const unknown = Object.keys(body).filter((k) => !fields.includes(k));
  if (unknown.length > 0) return { ok: false, message: `unknown field(s): ${unknown.join(", ")}` };
  return { ok: true, request: body as Record<string, unknown> };
}

const DIGEST_RULE = 'must be "sha256:" followed by 64 lower-case hex digits';

export function parseProposalRequest(text: string): Parsed<ProposalRequest> {
  const parsed = objectWith(text, ["digest", "parent", "certSha256"], "{digest, parent, certSha256}");
  if (!parsed.ok) return parsed;
  const { digest, parent, certSha256 } = parsed.request;
  if (typeof digest !== "string" || !DIGEST_PATTERN.test(digest)) {
    return { ok: false, message: `digest ${DIGEST_RULE}` };
  }
  if (parent !== null && (typeof parent !== "string" || !DIGEST_PATTERN.test(parent))) {
    return {
      ok: false,
      message: `parent must be null (the first state) or a digest that ${DIGEST_RULE.slice(5)}`,
    };
  }
  if (parent === digest)
    return { ok: false, message: "parent and digest are the same state: nothing to update" };
  if (typeof certSha256 !== "string" || !CERT_SHA256_PATTERN.test(certSha256)) {
    return { ok: false, message: "certSha256 must be 64 lower-case hex digits" };
  }
  return { ok: true, request: { digest, parent, certSha256 } };
}

export function parseHoldRequest(text: string): Parsed<HoldRequest> {
  const parsed = objectWith(text, ["digest"], "{digest}");
  if (!parsed.ok) return parsed;
  const { digest } = parsed.request;
  if (typeof digest !== "string" || !DIGEST_PATTERN.test(digest)) {
    return { ok: false, message: `digest ${DIGEST_RULE}` };
  }
  return { ok: true, request: { digest } };
}

export interface HeadQuery {
  /** The committed digest the caller knows ("" for none). */
  known: string;
  /** The proposal digest the caller knows ("" for none). */
  proposal: string;
  waitSeconds: number;
}

export const MAX_WAIT_SECONDS = 30;

/** The query of GET /v1/head; each value given once at most. */
export function parseHeadQuery(query: Record<string, unknown>): Parsed<HeadQuery> {
  const one = (name: string): string | undefined | false => {
    const value = query[name];
    if (value === undefined) return undefined;
    return typeof value === "string" ? value : false;
  };
  const unknown = Object.keys(query).filter((k) => !["known", "proposal", "waitSeconds"].includes(k));
  if (unknown.length > 0) return { ok: false, message: `unknown query parameter(s): ${unknown.join(", ")}` };
  const known = one("known");
  const proposal = one("proposal");
  const wait = one("waitSeconds");
  for (const [name, value] of [
    ["known", known],
    ["proposal", proposal],
  ] as const) {
    if (value === false) return { ok: false, message: `${name} given more than once` };
    if (value && !DIGEST_PATTERN.test(value))
      return { ok: false, message: `${name} ${DIGEST_RULE}, or empty` };
  }
  if (
    wait === false ||
    (wait !== undefined && !/^\d{1,2}$/.test(wait)) ||
    Number(wait ?? 0) > MAX_WAIT_SECONDS
  ) {
    return { ok: false, message: `waitSeconds must be a whole number from 0 to ${MAX_WAIT_SECONDS}` };
  }
  return {
    ok: true,
    request: { known: known || "", proposal: proposal || "", waitSeconds: Number(wait ?? 0) },
  };
}
