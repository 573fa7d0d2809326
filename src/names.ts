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
  AppRestarted: "AppRestarted",
  /** False while the pod waits: for a peer, for its user's `set`, or for its app. */
  AwaitingState: "AwaitingState",
} as const;

export const INJECT_ANNOTATION = `${GROUP}/inject`;
export const STATUS_ANNOTATION = `${GROUP}/status`;
export const STATUS_INJECTED = "injected";

export const SIDECAR_NAME = "coordinator-ha-recovery";
export const STATE_VOLUME = "coordinator-ha-state";
export const TOKEN_VOLUME = "coordinator-ha-token";
/**
 * The sidecar's own Kubernetes API credentials (token for the apiserver's audience, cluster
 * CA, namespace), so that it does not depend on the pod's automountServiceAccountToken. The
 * name does not start with "kube-api-access-", so that the ServiceAccount admission plugin,
 * which takes the first volume with that prefix for its own, never mounts this one into the
 * app containers.
 */
export const KUBE_API_VOLUME = "coordinator-ha-kube-api";

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
/** Where the projected token volume is mounted in the sidecar; it holds both tokens. */
export const TOKEN_DIR = "/var/run/secrets/coordinator-ha";
export const TOKEN_FILE = `${TOKEN_DIR}/token`;
export const PEER_TOKEN_FILE = `${TOKEN_DIR}/peer-token`;
export const TOKEN_EXPIRATION_SECONDS = 3600;
/**
 * Where in-cluster clients (@kubernetes/client-node's loadFromCluster) look for their
 * credentials. Exactly this string: the ServiceAccount admission plugin skips a container
 * that already mounts something at it, compared as a plain string.
 */
export const KUBE_API_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
/**
 * The lifetime the ServiceAccount admission plugin gives its own kube-api-access token
 * (WarnOnlyBoundTokenExpirationSeconds). The apiserver recognizes it and, with
 * --service-account-extend-token-expiration (the default), issues a longer-lived token
 * that only warns when used after an hour, exactly as for every pod's default token.
 */
export const KUBE_API_TOKEN_EXPIRATION_SECONDS = 3607;

export const DEFAULT_POD_SELECTOR = { "app.kubernetes.io/name": "coordinator" } as const;

export const IMAGE_REPOSITORY = "ghcr.io/coordinator-ha/coordinator-ha";

/** Ports of the recovery sidecar. */
export const PEER_PORT = 7443;
export const PEER_PORT_NAME = "cha-peer";
export const SIDECAR_PROBE_PORT = 7444;

/** Ports of the reference Coordinator (as Contrast has them). */
export const COORDINATOR_API_PORT = 1313;
export const COORDINATOR_PROBE_PORT = 9102;
