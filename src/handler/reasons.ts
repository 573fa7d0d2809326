// Every way the handler refuses a request, in one table: the reason labels the log line and
// the metric, and fixes the HTTP status. The message is specific to each case.
export const refusalStatus = {
  // Who is calling? (401: the caller must get a valid token for a pod that still exists.)
  missing_token: 401,
  invalid_token: 401,
  pod_gone: 401,
  uid_mismatch: 401,
  // A real pod, but not one that may do this.
  namespace_not_watched: 403,
  service_account_mismatch: 403,
  not_selected: 403,
  not_gated: 403,
  not_statefulset: 403,
  terminating: 409,
  // What the sidecar confirms.
  bad_request: 400,
  not_a_peer: 409,
  source_not_recovered: 409,
  source_digest_mismatch: 409,
  // The head (src/handler/head/rules.ts): the state confirmed or proposed does not fit it.
  conflicting_state: 409,
  stale_state: 409,
  update_in_progress: 409,
  stale_parent: 409,
  conflict: 409,
  no_proposal: 409,
  // The handler cannot answer now; the caller retries ("unknown", never "no").
  not_synced: 503,
  unavailable: 503,
} as const;
export type RefusalReason = keyof typeof refusalStatus;

export interface Refusal {
  reason: RefusalReason;
  message: string;
}

export function refuse(reason: RefusalReason, message: string): Refusal {
  return { reason, message };
}
