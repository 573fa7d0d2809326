// The pod condition coordinator-ha.io/recovered, and the record it carries.
//
// The handler keeps no state of its own: what a sidecar confirmed lives in the condition's
// message, after a human-readable sentence and a " | " separator:
//
//   Recovered the state from peer coordinator-0 | digest=sha256:<64 hex> certSha256=<64 hex> restarts=coordinator:0,metrics:2
//
// - digest: the state bundle's digest the sidecar confirmed (GET /v1/peers hands it out);
// - certSha256: SHA-256 of the sidecar's peer API certificate (peers pin it);
// - restarts: each app container's restartCount when the confirmation was recorded, sorted
//   by name; restart detection compares the live counts against it.
//
// Container names are DNS labels, so neither " ", "=", ":" nor "," can occur inside a field.
// A message without a well-formed record (AwaitingState, or written by someone else) parses
// to undefined, and such a pod is neither a peer nor checked for restarts.
import type { V1Pod, V1PodCondition } from "@kubernetes/client-node";
import { RECOVERED_CONDITION } from "../names.ts";

export interface ConfirmationRecord {
  digest: string;
  certSha256: string;
  restarts: Record<string, number>;
}

/** What the handler wants the condition to say; lastTransitionTime is the writer's business. */
export interface DesiredCondition {
  status: "True" | "False";
  reason: string;
  message: string;
}

export const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;
export const CERT_SHA256_PATTERN = /^[0-9a-f]{64}$/;
const CONTAINER_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SEPARATOR = " | ";

export function formatMessage(text: string, record?: ConfirmationRecord): string {
  if (!record) return text;
  const restarts = Object.keys(record.restarts)
    .sort()
    .map((name) => `${name}:${record.restarts[name]}`)
    .join(",");
  return `${text}${SEPARATOR}digest=${record.digest} certSha256=${record.certSha256} restarts=${restarts}`;
}

export function parseRecord(message: string | undefined): ConfirmationRecord | undefined {
  const at = message?.lastIndexOf(SEPARATOR) ?? -1;
  if (message === undefined || at < 0) return undefined;
  const fields = new Map<string, string>();
  for (const field of message.slice(at + SEPARATOR.length).split(" ")) {
    const eq = field.indexOf("=");
    if (eq < 0 || fields.has(field.slice(0, eq))) return undefined;
    fields.set(field.slice(0, eq), field.slice(eq + 1));
  }
  const digest = fields.get("digest");
  const certSha256 = fields.get("certSha256");
  const restartsText = fields.get("restarts");
  if (fields.size !== 3 || restartsText === undefined) return undefined;
  if (!digest || !DIGEST_PATTERN.test(digest) || !certSha256 || !CERT_SHA256_PATTERN.test(certSha256)) {
    return undefined;
  }
  const restarts: Record<string, number> = {};
  for (const entry of restartsText === "" ? [] : restartsText.split(",")) {
    const [name, count, extra] = entry.split(":");
    if (extra !== undefined || !name || !CONTAINER_NAME.test(name) || !/^\d{1,9}$/.test(count ?? "")) {
      return undefined;
    }
    if (Object.hasOwn(restarts, name)) return undefined;
    restarts[name] = Number(count);
  }
  return { digest, certSha256, restarts };
}

export function recoveredCondition(pod: V1Pod): V1PodCondition | undefined {
  return pod.status?.conditions?.find((c) => c.type === RECOVERED_CONDITION);
}

/** The confirmation recorded on the pod, whatever the condition's status is now. */
export function recordOf(pod: V1Pod): ConfirmationRecord | undefined {
  return parseRecord(recoveredCondition(pod)?.message);
}

/** True when writing `desired` would change nothing a reader can see. */
export function saysTheSame(existing: V1PodCondition | undefined, desired: DesiredCondition): boolean {
  return (
    existing !== undefined &&
    existing.status === desired.status &&
    existing.reason === desired.reason &&
    existing.message === desired.message
  );
}
