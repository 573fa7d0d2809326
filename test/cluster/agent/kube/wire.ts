// Kubernetes objects as they travel on the wire (JSON, timestamps as RFC 3339 strings).
//
// @kubernetes/client-node hands out two shapes of the same object: typed API calls return
// class instances with Date fields, while watch events carry the raw JSON. The agent keeps
// one shape everywhere, the wire one, so that a status computed from a watched pod and one
// computed from a listed pod are byte-for-byte comparable, and patches are plain JSON.
import type {
  V1ConfigMap,
  V1Container,
  V1ContainerStatus,
  V1EndpointSlice,
  V1Pod,
  V1PodCondition,
  V1PodStatus,
  V1Secret,
  V1Service,
} from "@kubernetes/client-node";

/** T with every Date replaced by its RFC 3339 string, recursively. */
export type Wire<T> = T extends Date
  ? string
  : T extends Array<infer U>
    ? Array<Wire<U>>
    : T extends object
      ? { [K in keyof T]: Wire<T[K]> }
      : T;

export type Pod = Wire<V1Pod>;
export type PodStatus = Wire<V1PodStatus>;
export type PodCondition = Wire<V1PodCondition>;
export type ContainerStatus = Wire<V1ContainerStatus>;
export type Container = Wire<V1Container>;
export type Service = Wire<V1Service>;
export type EndpointSlice = Wire<V1EndpointSlice>;
export type ConfigMap = Wire<V1ConfigMap>;
export type Secret = Wire<V1Secret>;

/** Converts a client-node object (Date fields or not) into its wire form. */
export function toWire<T>(obj: T): Wire<T> {
  return JSON.parse(JSON.stringify(obj)) as Wire<T>;
}

/** A timestamp as the apiserver stores metav1.Time: RFC 3339 with whole seconds. */
export function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}
