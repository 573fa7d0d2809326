// The annotations that steer injection, and how each is read.
import type { V1Pod } from "@kubernetes/client-node";
import { INJECT_ANNOTATION, STATUS_ANNOTATION, STATUS_INJECTED } from "../names.ts";

/** `coordinator-ha.io/inject: "false"` (any case) opts a selected pod out. */
export function isOptedOut(pod: V1Pod): boolean {
  return pod.metadata?.annotations?.[INJECT_ANNOTATION]?.trim().toLowerCase() === "false";
}

/**
 * The status annotation marks a pod that this webhook has injected. The apiserver may call
 * the webhook again for the same pod (reinvocationPolicy: IfNeeded); then this is the
 * answer to "already done".
 */
export function isInjected(pod: V1Pod): boolean {
  return pod.metadata?.annotations?.[STATUS_ANNOTATION] === STATUS_INJECTED;
}

export function markInjected(pod: V1Pod): void {
  pod.metadata ??= {};
  pod.metadata.annotations = { ...pod.metadata.annotations, [STATUS_ANNOTATION]: STATUS_INJECTED };
}
