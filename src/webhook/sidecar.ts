// The pieces that injection adds to a pod, as pure builders. Everything here is fixed by
// DESIGN.md and src/recovery/sidecar-env.ts, the contract with `coordinator-ha recover`.
import { basename } from "node:path/posix";
import type { V1Container, V1EnvVar, V1Probe, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import {
  KUBE_API_CA_FILE,
  KUBE_API_NAMESPACE_FILE,
  KUBE_API_TOKEN_EXPIRATION_SECONDS,
  KUBE_API_TOKEN_FILE,
  PEER_PORT,
  PEER_PORT_NAME,
  PEER_TOKEN_AUDIENCE,
  PEER_TOKEN_FILE,
  SIDECAR_NAME,
  SIDECAR_PROBE_COMMAND,
  SIDECAR_PROBE_PORT,
  STATE_VOLUME,
  TOKEN_AUDIENCE,
  TOKEN_DIR,
  TOKEN_EXPIRATION_SECONDS,
  TOKEN_FILE,
  TOKEN_VOLUME,
} from "../names.ts";
import { SidecarEnv } from "../recovery/sidecar-env.ts";
import type { SidecarUser } from "./sidecar-user.ts";

export type PullPolicy = "Always" | "IfNotPresent" | "Never";

/**
 * How the kubelet probes the sidecar: httpGet on its probe port (the default), or an exec
 * action that asks the same endpoint over loopback, for pods whose network takes no inbound
 * connection until the app is up (Contrast's pod VMs).
 */
export type SidecarProbes = "http" | "exec";
export const SIDECAR_PROBES: readonly SidecarProbes[] = ["http", "exec"];

/** What the webhook's flags decide about every injected pod. */
export interface InjectionParams {
  image: string;
  /** Unset leaves it to the apiserver's default (Always for :latest, else IfNotPresent). */
  imagePullPolicy?: PullPolicy | undefined;
  handlerUrl: string;
  /** PEM bundle that verifies the handler; "" means the system trust store. */
  handlerCa: string;
  stateDir: string;
  /** Unset: http. */
  probes?: SidecarProbes | undefined;
}

/**
 * The sidecar's startup probe holds every app container back until the state is in place
 * (or the handler said that no initialized peer exists). Waiting for a peer can take long
 * (OrderedReady rollouts, a slow handler), so it tolerates ten minutes; after that the
 * kubelet restarts the sidecar, which then simply asks again.
 */
const STARTUP_PERIOD_SECONDS = 1;
const STARTUP_FAILURE_THRESHOLD = 600;

export function sidecarContainer(
  params: InjectionParams,
  appReadinessUrl: string,
  user: SidecarUser,
): V1Container {
  const container: V1Container = {
    name: SIDECAR_NAME,
    image: params.image,
    args: ["recover"],
    // An init container with restartPolicy Always is a native sidecar: it starts before
    // the app, keeps running beside it, and its startup probe gates the app's start.
    restartPolicy: "Always",
    env: sidecarEnv(params, appReadinessUrl),
    ports: [{ name: PEER_PORT_NAME, containerPort: PEER_PORT, protocol: "TCP" }],
    startupProbe: {
      ...probeAction(params.probes, "startup", "/startupz"),
      periodSeconds: STARTUP_PERIOD_SECONDS,
      failureThreshold: STARTUP_FAILURE_THRESHOLD,
    },
    // Peers fetch their state from this sidecar; a wedged one is restarted.
    livenessProbe: {
      ...probeAction(params.probes, "liveness", "/healthz"),
      periodSeconds: 10,
      failureThreshold: 3,
    },
    // Node needs about 50 MiB to run at all; the limit leaves room for a state transfer.
    resources: {
      requests: { cpu: "10m", memory: "64Mi" },
      limits: { cpu: "200m", memory: "256Mi" },
    },
    securityContext: {
      runAsNonRoot: true,
      runAsUser: user.runAsUser,
      runAsGroup: user.runAsGroup,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    terminationMessagePolicy: "FallbackToLogsOnError",
    volumeMounts: [stateMount(params.stateDir), { name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true }],
  };
  if (params.imagePullPolicy) container.imagePullPolicy = params.imagePullPolicy;
  return container;
}

/**
 * One probe of the sidecar. The exec form runs `coordinator-ha probe` in the sidecar's
 * container, which asks the same path on 127.0.0.1; it gets the time of an HTTP probe plus
 * Node's start (about 0.1 s of CPU), hence a longer timeout than the kubelet's default 1 s.
 */
function probeAction(probes: SidecarProbes | undefined, kind: "startup" | "liveness", path: string): V1Probe {
  if (probes === "exec") return { exec: { command: [...SIDECAR_PROBE_COMMAND, kind] }, timeoutSeconds: 5 };
  return { httpGet: { path, port: SIDECAR_PROBE_PORT } };
}

/**
 * V8 flags of the sidecar, which sits in every Coordinator pod and mostly waits (measured in
 * docs/performance.md): a 1 MiB young generation instead of up to 16 MiB kept resident, and
 * no JIT compiler, whose code and compiled functions are about 10 MiB of resident memory. The
 * sidecar's heavy work (TLS, hashing, JWE, base64: src/recovery/native-base64.ts) is native
 * code, so a 16 MiB state transfer takes about 10% longer without the JIT. --jitless also
 * turns WebAssembly off: the sidecar must not use Node's fetch (undici) or any WebAssembly,
 * and V8 says so once on stderr at start ("disabling flag --expose_wasm").
 */
export const SIDECAR_NODE_OPTIONS = "--max-semi-space-size=1 --jitless";

function sidecarEnv(params: InjectionParams, appReadinessUrl: string): V1EnvVar[] {
  const field = (name: string, fieldPath: string): V1EnvVar => ({
    name,
    valueFrom: { fieldRef: { apiVersion: "v1", fieldPath } },
  });
  return [
    field(SidecarEnv.podName, "metadata.name"),
    field(SidecarEnv.podNamespace, "metadata.namespace"),
    field(SidecarEnv.podUid, "metadata.uid"),
    field(SidecarEnv.podIp, "status.podIP"),
    field(SidecarEnv.serviceAccount, "spec.serviceAccountName"),
    { name: SidecarEnv.handlerUrl, value: params.handlerUrl },
    { name: SidecarEnv.handlerCa, value: params.handlerCa },
    { name: SidecarEnv.stateDir, value: params.stateDir },
    { name: SidecarEnv.tokenFile, value: TOKEN_FILE },
    { name: SidecarEnv.peerTokenFile, value: PEER_TOKEN_FILE },
    { name: SidecarEnv.peerPort, value: String(PEER_PORT) },
    { name: SidecarEnv.probePort, value: String(SIDECAR_PROBE_PORT) },
    { name: SidecarEnv.appReadinessUrl, value: appReadinessUrl },
    { name: "NODE_OPTIONS", value: SIDECAR_NODE_OPTIONS },
  ];
}

export function stateMount(stateDir: string): V1VolumeMount {
  return { name: STATE_VOLUME, mountPath: stateDir };
}

/** Memory-backed, so the state never touches the node's disk and dies with the pod. */
export function stateVolume(): V1Volume {
  return { name: STATE_VOLUME, emptyDir: { medium: "Memory" } };
}

/**
 * The pod-bound identity of the sidecar, as two tokens of the same pod: one for the handler
 * (audience coordinator-ha) and one for its peers (coordinator-ha-peer). A peer receives the
 * token it checks; with a single audience it could replay it to the handler. The handler's
 * source stays first and unchanged, as DESIGN.md fixes it.
 *
 * After them come the sidecar's Kubernetes API credentials, shaped like the kube-api-access
 * volume of the ServiceAccount admission plugin: a token for the apiserver's own audience (no
 * audience given), the cluster CA that the root-ca-cert-publisher puts into every namespace,
 * and the namespace. The sidecar reads the issuer's keys with them to verify its peers' tokens,
 * which every service account may (system:service-account-issuer-discovery). They live in this
 * volume rather than a third one because DESIGN.md fixes the injected volumes at two, and
 * because the webhook adds them, they are there whatever the pod says about
 * automountServiceAccountToken.
 */
export function tokenVolume(): V1Volume {
  return {
    name: TOKEN_VOLUME,
    projected: {
      sources: [
        {
          serviceAccountToken: {
            audience: TOKEN_AUDIENCE,
            expirationSeconds: TOKEN_EXPIRATION_SECONDS,
            path: basename(TOKEN_FILE),
          },
        },
        {
          serviceAccountToken: {
            audience: PEER_TOKEN_AUDIENCE,
            expirationSeconds: TOKEN_EXPIRATION_SECONDS,
            path: basename(PEER_TOKEN_FILE),
          },
        },
        // No audience: the apiserver's own. The ServiceAccount plugin's lifetime, so that the
        // apiserver treats it as every pod's default token (see
        // KUBE_API_TOKEN_EXPIRATION_SECONDS); the kubelet renews it and the sidecar re-reads it.
        {
          serviceAccountToken: {
            expirationSeconds: KUBE_API_TOKEN_EXPIRATION_SECONDS,
            path: basename(KUBE_API_TOKEN_FILE),
          },
        },
        {
          configMap: {
            name: "kube-root-ca.crt",
            items: [{ key: "ca.crt", path: basename(KUBE_API_CA_FILE) }],
          },
        },
        {
          downwardAPI: {
            items: [
              {
                path: basename(KUBE_API_NAMESPACE_FILE),
                fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" },
              },
            ],
          },
        },
      ],
    },
  };
}
