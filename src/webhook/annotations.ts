// The annotations that steer injection, and how each is read.
import type { V1ObjectMeta, V1Pod } from "@kubernetes/client-node";
import {
  INJECT_ANNOTATION,
  RECOVERED_CONDITION,
  SIDECAR_NAME,
  STATE_VOLUME,
  STATUS_ANNOTATION,
  STATUS_INJECTED,
  TOKEN_VOLUME,
} from "../names.ts";

/** `coordinator-ha.io/inject: "false"` (any case) opts a selected pod out. */
export function isOptedOut(pod: V1Pod): boolean {
  return pod.metadata?.annotations?.[INJECT_ANNOTATION]?.trim().toLowerCase() === "false";
}

/**
 * The status annotation marks a pod that this webhook has injected. The apiserver may call
 * the webhook again for the same pod (reinvocationPolicy: IfNeeded); then this is the
 * answer to "already done". It counts only together with the parts it stands for (the gate,
 * the sidecar first among the init containers, both volumes, the state mount in every app
 * container): set by hand on a pod without them, it would be an opt-out that nobody sees,
 * and such a pod is injected like any other.
 */
export function isInjected(pod: V1Pod): boolean {
  return pod.metadata?.annotations?.[STATUS_ANNOTATION] === STATUS_INJECTED && hasInjectedParts(pod);
}

function hasInjectedParts(pod: V1Pod): boolean {
  const spec = pod.spec;
  const sidecar = spec?.initContainers?.[0];
  const volumes = new Set(spec?.volumes?.map((v) => v.name));
  return (
    (spec?.readinessGates?.some((g) => g.conditionType === RECOVERED_CONDITION) ?? false) &&
    sidecar?.name === SIDECAR_NAME &&
    sidecar.restartPolicy === "Always" &&
    volumes.has(STATE_VOLUME) &&
    volumes.has(TOKEN_VOLUME) &&
    (spec?.containers ?? []).every((c) => c.volumeMounts?.some((m) => m.name === STATE_VOLUME) ?? false)
  );
}

/** The metadata with the status annotation set (a new object; the input is not modified). */
export function withInjectedStatus(metadata: V1ObjectMeta | undefined): V1ObjectMeta {
  return { ...metadata, annotations: { ...metadata?.annotations, [STATUS_ANNOTATION]: STATUS_INJECTED } };
}
