// An in-memory apiserver for the handler: the pods (as PodApi for live reads and writes,
// and as a PodCache), with the preconditions of a strategic-merge patch on pods/status
// (uid and resourceVersion, 409 when they differ) and the Events created; and the StateHeads,
// with the resourceVersion precondition of a PUT (409 when another writer came first).
import type { CoreV1Event, V1Pod, V1PodCondition } from "@kubernetes/client-node";
import { headObject, type HeadSpec } from "../../../src/handler/head/state-head.ts";
import { headStore, type HeadStore } from "../../../src/handler/head/store.ts";
import type { PodCache } from "../../../src/kube/pod-cache.ts";
import type { StateHeadApi, StateHeadObject } from "../../../src/kube/state-heads.ts";
import type { StatefulSetApi } from "../../../src/kube/statefulsets.ts";
import type { PatchResult, PodApi } from "../../../src/kube/pods.ts";
import { RECOVERED_CONDITION } from "../../../src/names.ts";
import { STATEFULSET_UID } from "./pods.ts";

interface StatusPatch {
  metadata: { uid?: string; resourceVersion?: string };
  status: { conditions: V1PodCondition[] };
}

export class FakeCluster {
  readonly pods = new Map<string, V1Pod>();
  readonly events: CoreV1Event[] = [];
  readonly patches: StatusPatch[] = [];
  /** StateHeads by "<namespace>/<name>", each with its resourceVersion. */
  readonly heads = new Map<string, { spec: HeadSpec; resourceVersion: string }>();
  headWrites = 0;
  /** Called before each StateHead write is applied: a test's chance to race it. */
  beforeHeadWrite: (() => void) | undefined;
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

  setHead(namespace: string, spec: HeadSpec): void {
    this.heads.set(`${namespace}/${spec.statefulSet.name}`, {
      spec: structuredClone(spec),
      resourceVersion: String(++this.resourceVersion),
    });
  }

  head(namespace: string, name: string): HeadSpec | undefined {
    return this.heads.get(`${namespace}/${name}`)?.spec;
  }

  readonly headApi: StateHeadApi = {
    get: async (namespace, name) => {
      const stored = this.heads.get(`${namespace}/${name}`);
      return stored && structuredClone(stored);
    },
    create: async (namespace, spec) => {
      this.beforeHeadWrite?.();
      if (this.heads.has(`${namespace}/${spec.statefulSet.name}`)) return "conflict";
      this.setHead(namespace, spec);
      this.headWrites++;
      return "written";
    },
    replace: async (namespace, spec, resourceVersion) => {
      this.beforeHeadWrite?.();
      const stored = this.heads.get(`${namespace}/${spec.statefulSet.name}`);
      if (stored?.resourceVersion !== resourceVersion) return "conflict";
      this.setHead(namespace, spec);
      this.headWrites++;
      return "written";
    },
  };

  readonly store: HeadStore = headStore(this.headApi);

  /** The StatefulSet "coordinator" (every fixture pod's owner). */
  replicas = 2;
  quorumAnnotation: string | undefined;
  readonly statefulSets: StatefulSetApi = {
    get: async (_namespace, name) =>
      name === "coordinator"
        ? {
            uid: STATEFULSET_UID,
            replicas: this.replicas,
            annotations: (this.quorumAnnotation
              ? { "coordinator-ha.io/quorum": this.quorumAnnotation }
              : {}) as Record<string, string>,
          }
        : undefined,
  };

  /** The StateHead watch cache: always up to date unless a test says otherwise. */
  headsSynced = true;
  readonly headCache: PodCache<StateHeadObject> = {
    synced: () => this.headsSynced,
    problem: () => (this.headsSynced ? undefined : "the first list of StateHeads has not completed"),
    get: (namespace, name) => this.headObjectOf(namespace, name),
    inNamespace: (namespace) =>
      [...this.heads.keys()]
        .filter((k) => k.startsWith(`${namespace}/`))
        .map((k) => this.headObjectOf(namespace, k.slice(namespace.length + 1))!),
    all: () => [...this.heads.keys()].map((k) => this.headObjectOf(...(k.split("/") as [string, string]))!),
    size: () => this.heads.size,
  };

  private headObjectOf(namespace: string, name: string): StateHeadObject | undefined {
    const stored = this.heads.get(`${namespace}/${name}`);
    return stored && (headObject(namespace, stored.spec, stored.resourceVersion) as StateHeadObject);
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
