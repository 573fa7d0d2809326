// The decisions of the Coordinator's own recovery (self-recovery.ts), pod lists in, decision
// out: which listed pods a recovering Coordinator asks for the state, and whether a caller
// of its peer endpoint is a live pod of its StatefulSet.
import type { PodIdentity } from "../identity/index.ts";
import { statefulSetOf } from "../recovery/peer-authz.ts";
import type { MemberCheck } from "../recovery/peer-api.ts";

/** A pod as the Kubernetes API lists it, reduced to what the rules look at. */
export interface ListedPod {
  name: string;
  uid: string;
  /** status.podIP; empty while it has none. */
  ip: string;
  /** The Ready condition is True. */
  ready: boolean;
  /** metadata.deletionTimestamp is set. */
  deleting: boolean;
}

/**
 * The pods to ask, in order: Ready pods of this pod's StatefulSet other than itself, that
 * are not being deleted and have an address; lowest ordinal first (the oldest holder in an
 * OrderedReady set). Ready means "holds the state" in this mode: a Coordinator is Ready
 * only once it does.
 */
export function recoverySources(selfName: string, pods: readonly ListedPod[]): ListedPod[] {
  const set = statefulSetOf(selfName);
  if (set === undefined) return [];
  const ordinal = (name: string) => Number(name.slice(set.length + 1));
  return pods
    .filter(
      (p) => p.name !== selfName && statefulSetOf(p.name) === set && p.ready && !p.deleting && p.ip !== "",
    )
    .sort((a, b) => ordinal(a.name) - ordinal(b.name));
}

/**
 * A caller whose token names it (already checked by authorizePeer: same namespace, service
 * account and StatefulSet, not this pod) gets the state only while the very pod the token is
 * bound to (name and uid) exists and is not being deleted. It need not be Ready: it is
 * recovering.
 */
export function liveMember(caller: PodIdentity, pods: readonly ListedPod[]): MemberCheck {
  const pod = pods.find((p) => p.name === caller.podName);
  if (pod === undefined) {
    return { kind: "denied", reason: "NotFound", message: `pod ${caller.podName} does not exist` };
  }
  if (pod.uid !== caller.podUid) {
    return {
      kind: "denied",
      reason: "UidMismatch",
      message: `pod ${caller.podName} is another pod now (uid ${pod.uid}, the token names ${caller.podUid})`,
    };
  }
  if (pod.deleting) {
    return { kind: "denied", reason: "Terminating", message: `pod ${caller.podName} is being deleted` };
  }
  return { kind: "allowed" };
}

/** A PodList from the Kubernetes API as ListedPods; items it cannot read are left out. */
export function listedPods(list: unknown): ListedPod[] {
  const items = (list as { items?: unknown } | undefined)?.items;
  if (!Array.isArray(items)) throw new Error("the apiserver's answer is not a pod list");
  const out: ListedPod[] = [];
  for (const item of items as {
    metadata?: { name?: unknown; uid?: unknown; deletionTimestamp?: unknown };
    status?: { podIP?: unknown; conditions?: { type?: unknown; status?: unknown }[] };
  }[]) {
    const name = item.metadata?.name;
    const uid = item.metadata?.uid;
    if (typeof name !== "string" || typeof uid !== "string") continue;
    const conditions = Array.isArray(item.status?.conditions) ? item.status.conditions : [];
    out.push({
      name,
      uid,
      ip: typeof item.status?.podIP === "string" ? item.status.podIP : "",
      ready: conditions.some((c) => c.type === "Ready" && c.status === "True"),
      deleting: item.metadata?.deletionTimestamp != null,
    });
  }
  return out;
}
