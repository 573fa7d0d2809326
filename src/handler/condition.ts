// The pod condition coordinator-ha.io/recovered. Its message is for people only: what a
// sidecar confirmed (digest, certificate, restart counts) is recorded in the StatefulSet's
// StateHead (spec.members), written by compare-and-swap before the condition.
import type { V1Pod, V1PodCondition } from "@kubernetes/client-node";
import { RECOVERED_CONDITION } from "../names.ts";

/** What the handler wants the condition to say; lastTransitionTime is the writer's business. */
export interface DesiredCondition {
  status: "True" | "False";
  reason: string;
  message: string;
}

export const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;
export const CERT_SHA256_PATTERN = /^[0-9a-f]{64}$/;
export function recoveredCondition(pod: V1Pod): V1PodCondition | undefined {
  return pod.status?.conditions?.find((c) => c.type === RECOVERED_CONDITION);
}

/** True when writing `desired` would change nothing a reader can see. */
export function saysTheSame(existing: V1PodCondition | undefined, desired: DesiredCondition): boolean {
  return (
    existing !== undefined &&
    existing.status === desired.status &&
    existing.reason === desired.reason &&
    existing.message === desired.message
  );
}
