// Wire format of the event handler's API, shared by the handler and the recovery sidecar.
// Both endpoints take the sidecar's projected service-account token (audience
// coordinator-ha) as `Authorization: Bearer <token>`; the token the sidecar shows its peers
// (audience coordinator-ha-peer) is refused.

/** A Ready peer of the caller's StatefulSet whose sidecar confirmed that it holds the state. */
export interface Peer {
  pod: string;
  uid: string;
  /** Pod IP; the peer API listens on `https://<ip>:<port>`. */
  ip: string;
  port: number;
  /** Digest of the peer's state bundle, as its sidecar confirmed it (`sha256:<hex>`). */
  digest: string;
  /** SHA-256 (hex) of the peer API's self-signed certificate, as its sidecar confirmed it. */
  certSha256: string;
}

/**
 * GET /v1/peers. 200 only from a handler whose pod cache has synced: then an empty
 * `peers` list is a trustworthy "no initialized peer exists". Any other answer (503 while
 * unsynced, 4xx, a network error) means "unknown" to the sidecar.
 */
export interface PeersResponse {
  namespace: string;
  statefulSet: string;
  peers: Peer[];
  /** The StatefulSet's committed head (null: no state committed yet); every peer holds it. */
  head: { digest: string | null };
}

/** POST /v1/recovered: the sidecar confirms that its app holds the state. */
export interface RecoveredRequest {
  /** Digest of the bundle in the pod's state directory (`sha256:<hex>`). */
  digest: string;
  /** The peer pod it recovered from, or null when its own user initialized it. */
  source: string | null;
  /** SHA-256 (hex) of this sidecar's peer API certificate, so that later peers can pin it. */
  certSha256: string;
  /**
   * The peers that failed to deliver this state before `source` did, in the order they were
   * asked: at most MAX_FAILED_PEERS, each reason 1 to MAX_FAILED_PEER_REASON characters
   * without control characters. Only with a `source`. The handler records them as a Warning
   * Event on the pod. Optional: sidecars before it send none.
   */
  failedPeers?: FailedPeer[];
}

/** A peer that failed to deliver the state, and why (the transfer's error message). */
export interface FailedPeer {
  pod: string;
  reason: string;
}

export const MAX_FAILED_PEERS = 8;
export const MAX_FAILED_PEER_REASON = 200;

export interface RecoveredResponse {
  /** True when the condition was written, false when it already said the same. */
  changed: boolean;
  reason: string;
  message: string;
}

/** Every 4xx/5xx of the handler and of the peer API has this body. */
export interface ErrorBody {
  error: string;
}

/**
 * POST /v1/peer-access, asked by a sidecar (with its own token, audience coordinator-ha)
 * before its peer API serves the state: is this pod, as its verified peer token names it, a
 * live member of the asking pod's StatefulSet? Answered from live reads of both pods.
 */
export interface PeerAccessRequest {
  namespace: string;
  pod: string;
  uid: string;
  serviceAccount: string;
}

/** Why a pod may not receive the state (src/handler/peer-access.ts). */
export type PeerAccessRefusal =
  | "other_namespace"
  | "self"
  | "pod_gone"
  | "uid_mismatch"
  | "service_account_mismatch"
  | "not_member"
  | "not_selected"
  | "not_gated"
  | "terminating";

/**
 * 200 is a verdict either way; any other status (the asking pod refused, 503 while the
 * handler cannot read pods) means "unknown", and the peer API then serves nothing.
 */
export type PeerAccessResponse =
  { allowed: true } | { allowed: false; reason: PeerAccessRefusal; message: string };

/** POST /v1/proposals: the sidecar proposes `digest` as the child of `parent` (the head it holds). */
export interface ProposalRequest {
  digest: string;
  /** The committed head it replaces; null for the first state of the StatefulSet. */
  parent: string | null;
  /** SHA-256 (hex) of the proposer's peer API certificate: the others stage the bundle from it. */
  certSha256: string;
}

/** POST /v1/holds: the caller staged the proposed bundle (digest-checked) and holds it. */
export interface HoldRequest {
  digest: string;
}

/** A pending proposal as GET /v1/head shows it: where to stage it from. */
export interface ProposalView {
  digest: string;
  parent: string | null;
  by: string;
  ip: string;
  port: number;
  certSha256: string;
  expiresAt: string;
  /** The pods that hold it so far. */
  holders: string[];
}

export interface CommittedView {
  digest: string;
  parent: string | null;
  by: string;
  at: string;
}

/** GET /v1/head (and the 202 of a proposal, and the refusals of the head). */
export interface HeadResponse {
  committed: CommittedView | null;
  proposal: ProposalView | null;
  /** Holders needed to commit. */
  quorum: number;
  /**
   * Set when the replica holds too many long-polls to hold this one (head-calls.ts): it
   * answered at once, and the sidecar asks again after this many seconds.
   */
  pollAfterSeconds?: number;
}

/** A 409 of the head: why, in words and as a code, and the head the caller should follow. */
export interface HeadRefusalBody extends ErrorBody {
  reason: string;
  head: string | null;
}
