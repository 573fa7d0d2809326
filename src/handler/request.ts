// Validates the body of POST /v1/recovered (RecoveredRequest in api.ts) before anything
// else looks at it. Unknown fields are refused: a sidecar and its handler ship in the same
// image, so an unexpected field is a bug or an attack, not a newer client.
import type { PeerAccessRequest, RecoveredRequest } from "./api.ts";
import { CERT_SHA256_PATTERN, DIGEST_PATTERN } from "./condition.ts";

const FIELDS = ["digest", "source", "certSha256"];
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

  const { digest, source, certSha256 } = fields;
  if (typeof digest !== "string" || !DIGEST_PATTERN.test(digest)) {
    return bad('digest must be "sha256:" followed by 64 lower-case hex digits');
  }
  if (typeof certSha256 !== "string" || !CERT_SHA256_PATTERN.test(certSha256)) {
    return bad("certSha256 must be 64 lower-case hex digits");
  }
  if (source !== null && (typeof source !== "string" || !POD_NAME.test(source))) {
    return bad("source must be null (initialized by its user) or the name of the peer pod");
  }
  return { ok: true, request: { digest, source, certSha256 } };
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
