// The fixed external interface of coordinator-ha (see DESIGN.md, "Fixed interface").
// Every component, the chart and the tests take these names from here, so that a
// rename is one change.

export const GROUP = "coordinator-ha.io";

/** Readiness gate and pod condition type that the handler sets. */
export const RECOVERED_CONDITION = `${GROUP}/recovered`;

/** Reasons of the recovered condition. */
export const Reason = {
  RecoveredFromPeer: "RecoveredFromPeer",
  Initialized: "Initialized",
  /** True: the pod committed the head, or swapped it in after being stale. */
  Updated: "Updated",
  AppRestarted: "AppRestarted",
  /** False: the pod holds an ancestor of the StatefulSet's committed head. */
  StateStale: "StateStale",
  /** False: the pod holds a state that is not in the StatefulSet's history. */
  StateConflict: "StateConflict",
  /** False while the pod waits: for a peer, for its user's `set`, or for its app. */
  AwaitingState: "AwaitingState",
} as const;

/**
 * Reasons of the handler's Events that are no reason of the condition. The other Events carry
 * the condition's reason (Reason above).
 */
export const EventReason = {
  /** Warning: peers failed to deliver the state before another one did. */
  PeerTransferFailed: "PeerTransferFailed",
} as const;

export const INJECT_ANNOTATION = `${GROUP}/inject`;
export const STATUS_ANNOTATION = `${GROUP}/status`;
export const STATUS_INJECTED = "injected";

export const SIDECAR_NAME = "coordinator-ha-recovery";
export const STATE_VOLUME = "coordinator-ha-state";
export const TOKEN_VOLUME = "coordinator-ha-token";
/** The audience of the token that the sidecar presents to the event handler, and only to it. */
export const TOKEN_AUDIENCE = "coordinator-ha";
/**
 * The audience of the token that the sidecar presents to its peers (the peer API). A second
 * audience because a peer receives the token it verifies: were it the handler's, the peer
 * could replay it to the handler (confirm the caller's pod as recovered before it holds the
 * state) for as long as it lives. The handler refuses this audience, the peer API the other.
 */
export const PEER_TOKEN_AUDIENCE = "coordinator-ha-peer";
export const DEFAULT_STATE_DIR = "/var/run/coordinator-ha/state";
/**
 * Where the projected token volume is mounted in the sidecar. It holds both identity tokens
 * and the sidecar's Kubernetes API credentials.
 */
export const TOKEN_DIR = "/var/run/secrets/coordinator-ha";
export const TOKEN_FILE = `${TOKEN_DIR}/token`;
export const PEER_TOKEN_FILE = `${TOKEN_DIR}/peer-token`;
export const TOKEN_EXPIRATION_SECONDS = 3600;
/**
 * The sidecar's Kubernetes API credentials, in the token volume beside the identity tokens:
 * a token for the apiserver's own audience, the cluster CA and the namespace, as the
 * kube-api-access volume of the ServiceAccount admission plugin has them. Being the webhook's,
 * they are there whatever the pod says about automountServiceAccountToken.
 */
export const KUBE_API_TOKEN_FILE = `${TOKEN_DIR}/kube-api-token`;
export const KUBE_API_CA_FILE = `${TOKEN_DIR}/ca.crt`;
export const KUBE_API_NAMESPACE_FILE = `${TOKEN_DIR}/namespace`;
/**
 * The lifetime the ServiceAccount admission plugin gives its own kube-api-access token
 * (WarnOnlyBoundTokenExpirationSeconds). For a pod-bound token of the apiserver's own audience
 * the apiserver recognizes it and, with --service-account-extend-token-expiration (the
 * default), issues a longer-lived token that only warns when used after an hour, exactly as
 * for every pod's default token.
 */
export const KUBE_API_TOKEN_EXPIRATION_SECONDS = 3607;

export const DEFAULT_POD_SELECTOR = { "app.kubernetes.io/name": "coordinator" } as const;

export const IMAGE_REPOSITORY = "ghcr.io/coordinator-ha/coordinator-ha";

/** Ports of the recovery sidecar. */
export const PEER_PORT = 7443;
export const PEER_PORT_NAME = "cha-peer";
export const SIDECAR_PROBE_PORT = 7444;
/**
 * The exec form of the sidecar's probes (`--sidecar-probes exec`): the image's ENTRYPOINT
 * (the Dockerfile's `node /app/dist/cli.js`) with the `probe` subcommand, which asks the
 * probe port over loopback from inside the sidecar's container.
 */
export const SIDECAR_PROBE_COMMAND = ["node", "/app/dist/cli.js", "probe"] as const;
/** The sidecar's local commit API, on 127.0.0.1 only: the app asks it to commit an update. */
export const COMMIT_PORT = 7445;
export const COMMIT_API_URL = `http://127.0.0.1:${COMMIT_PORT}/v1/commit`;

/** Ports of the reference Coordinator (as Contrast has them). */
export const COORDINATOR_API_PORT = 1313;
export const COORDINATOR_PROBE_PORT = 9102;

/**
 * The reference Coordinator's own recovery (`coordinator --recovery self`, the guide's
 * mechanism without coordinator-ha): its peer endpoint's port, the audience of the pod-bound
 * tokens its peers present there, and Contrast's retry period.
 */
export const SELF_RECOVERY_PORT = 9103;
export const SELF_RECOVERY_AUDIENCE = "coordinator-self-recovery";
export const SELF_RECOVERY_PERIOD_SECONDS = 15;
export const SELF_RECOVERY_TOKEN_FILE = "/var/run/secrets/coordinator/self-recovery-token";
