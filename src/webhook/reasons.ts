// Every way an admission request can end, in one table: the reason label feeds the log
// line, the metric label and, for skips, the message. (The shape follows Linkerd's
// pkg/inject/report.go, so that "why was my pod not injected?" has one answer everywhere.)
import { INJECT_ANNOTATION, STATUS_ANNOTATION, STATUS_INJECTED } from "../names.ts";

export type Outcome = "injected" | "skipped" | "rejected";

/** Requests that are allowed unchanged. */
export const skipReasons = {
  not_pod: "the request is not about a Pod",
  not_create: "only Pod CREATE is mutated",
  opted_out: `the pod opts out with ${INJECT_ANNOTATION}: "false"`,
  already_injected: `the pod already carries ${STATUS_ANNOTATION}: ${STATUS_INJECTED}`,
} as const;
export type SkipReason = keyof typeof skipReasons;

/**
 * Requests that get no patch because something is wrong with them. The message is
 * specific to each case; these are only the labels.
 */
export const rejectReasons = [
  // The HTTP body is not a usable AdmissionReview (answered with a 4xx).
  "body_too_large",
  "encoded_body",
  "unreadable_body",
  "invalid_json",
  "invalid_review",
  "object_not_pod",
  // A well-formed pod that cannot be injected safely (answered with allowed: false).
  "state_dir_conflict",
  "reserved_name",
] as const;
export type RejectReason = (typeof rejectReasons)[number];
