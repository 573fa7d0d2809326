// The environment that the webhook injects into the recovery sidecar, and that
// `coordinator-ha recover` reads. This file is the contract between the two.

export const SidecarEnv = {
  /** Downward API: metadata.name */
  podName: "CHA_POD_NAME",
  /** Downward API: metadata.namespace */
  podNamespace: "CHA_POD_NAMESPACE",
  /** Downward API: metadata.uid */
  podUid: "CHA_POD_UID",
  /** Downward API: status.podIP */
  podIp: "CHA_POD_IP",
  /** Downward API: spec.serviceAccountName */
  serviceAccount: "CHA_SERVICE_ACCOUNT",
  /** https URL of the event handler Service. */
  handlerUrl: "CHA_HANDLER_URL",
  /** PEM CA bundle that verifies the handler's serving certificate (empty: system trust). */
  handlerCa: "CHA_HANDLER_CA",
  /** The shared state directory (the coordinator-ha-state volume). */
  stateDir: "CHA_STATE_DIR",
  /** The projected service-account token for the handler (audience coordinator-ha). */
  tokenFile: "CHA_TOKEN_FILE",
  /** The projected service-account token for peers (audience coordinator-ha-peer). */
  peerTokenFile: "CHA_PEER_TOKEN_FILE",
  /** Port of the peer API (HTTPS), named cha-peer. */
  peerPort: "CHA_PEER_PORT",
  /** Port of the sidecar's own probes (HTTP): /startupz, /healthz. */
  probePort: "CHA_PROBE_PORT",
  /**
   * Port of the local commit API on 127.0.0.1 (default 7445). The webhook does not set it: the
   * app and the sidecar share the pod's loopback, and the app knows the fixed port.
   */
  commitPort: "CHA_COMMIT_PORT",
  /**
   * URL of the app's readiness endpoint, derived from the first app container's
   * readinessProbe (httpGet) at injection time; empty when the app has none, and then the
   * state's presence in the state directory stands for "the app holds it".
   */
  appReadinessUrl: "CHA_APP_READINESS_URL",
} as const;
