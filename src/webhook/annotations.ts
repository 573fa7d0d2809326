// The annotations that steer injection, and how each is read.
import type { V1ObjectMeta, V1Pod } from "@kubernetes/client-node";
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

/** The metadata with the status annotation set (a new object; the input is not modified). */
export function withInjectedStatus(metadata: V1ObjectMeta | undefined): V1ObjectMeta {
  return { ...metadata, annotations: { ...metadata?.annotations, [STATUS_ANNOTATION]: STATUS_INJECTED } };
}
