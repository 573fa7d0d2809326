// An in-memory apiserver for the handler: the pods (as PodApi for live reads and writes,
// and as a PodCache), with the preconditions of a strategic-merge patch on pods/status
// (uid and resourceVersion, 409 when they differ) and the Events created.
import type { CoreV1Event, V1Pod, V1PodCondition } from "@kubernetes/client-node";
import type { PodCache } from "../../../src/kube/pod-cache.ts";
import type { PatchResult, PodApi } from "../../../src/kube/pods.ts";
import { RECOVERED_CONDITION } from "../../../src/names.ts";

interface StatusPatch {
  metadata: { uid?: string; resourceVersion?: string };
  status: { conditions: V1PodCondition[] };
}

export class FakeCluster {
  readonly pods = new Map<string, V1Pod>();
  readonly events: CoreV1Event[] = [];
  readonly patches: StatusPatch[] = [];
  isSynced = true;
  /** Called before each patch is applied: a test's chance to change the pod meanwhile. */
  beforePatch: (() => void) | undefined;
  private resourceVersion = 2000;

  add(...pods: V1Pod[]): void {
    for (const pod of pods)
      this.pods.set(`${pod.metadata!.namespace}/${pod.metadata!.name}`, structuredClone(pod));
  }

  /** Changes a pod as another writer (the kubelet, another replica) would: new resourceVersion. */
  touch(namespace: string, name: string, change: (pod: V1Pod) => void = () => undefined): void {
    const pod = this.pods.get(`${namespace}/${name}`)!;
    change(pod);
    pod.metadata!.resourceVersion = String(++this.resourceVersion);
  }

  condition(namespace: string, name: string): V1PodCondition | undefined {
    return this.pods
      .get(`${namespace}/${name}`)
      ?.status?.conditions?.find((c) => c.type === RECOVERED_CONDITION);
  }

  /** Live reads and writes, as the apiserver answers them. */
  readonly api: PodApi = {
    get: async (namespace, name) => {
      const pod = this.pods.get(`${namespace}/${name}`);
      return pod && structuredClone(pod);
    },
    patchStatus: async (namespace, name, patch) => this.applyPatch(namespace, name, patch as StatusPatch),
    createEvent: async (_namespace, event) => {
      this.events.push(event);
    },
  };

  /** The watch cache: the same pods (a perfectly up-to-date cache unless a test says otherwise). */
  readonly cache: PodCache = {
    synced: () => this.isSynced,
    problem: () => (this.isSynced ? undefined : "the first list of pods has not completed"),
    get: (namespace, name) => this.pods.get(`${namespace}/${name}`),
    inNamespace: (namespace) => [...this.pods.values()].filter((p) => p.metadata?.namespace === namespace),
    all: () => [...this.pods.values()],
    size: () => this.pods.size,
  };

  private applyPatch(namespace: string, name: string, p: StatusPatch): PatchResult {
    this.beforePatch?.();
    const pod = this.pods.get(`${namespace}/${name}`);
    if (!pod) return "gone";
    if (p.metadata.uid !== undefined && p.metadata.uid !== pod.metadata!.uid) return "conflict";
    if (
      p.metadata.resourceVersion !== undefined &&
      p.metadata.resourceVersion !== pod.metadata!.resourceVersion
    ) {
      return "conflict";
    }
    this.patches.push(structuredClone(p));
    // Strategic merge: conditions merge by type.
    const conditions = pod.status!.conditions ?? [];
    for (const condition of p.status.conditions) {
      const at = conditions.findIndex((c) => c.type === condition.type);
      if (at >= 0) conditions[at] = condition;
      else conditions.push(condition);
    }
    pod.status!.conditions = conditions;
    pod.metadata!.resourceVersion = String(++this.resourceVersion);
    return "patched";
  }
}
