// What `coordinator-ha status` reads, with the user's kubeconfig and RBAC: the pods, the
// StatefulSets that control gated pods, and their StateHeads. Reads only (get, list).
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1Pod,
} from "@kubernetes/client-node";
import {
  headSpecOf,
  STATE_HEAD_PLURAL,
  STATE_HEAD_VERSION,
  type HeadSpec,
} from "../handler/head/state-head.ts";
import { isGated, owningStatefulSet } from "../handler/pod.ts";
import { GROUP } from "../names.ts";
import type { StatefulSetFacts } from "./report.ts";

export interface ClusterView {
  statefulSets: StatefulSetFacts[];
  pods: V1Pod[];
  /** By namespace/name of the StatefulSet. */
  heads: Map<string, HeadSpec>;
  /** What could not be read, for the user (the table still shows the rest). */
  warnings: string[];
}

export interface ReadOptions {
  /** undefined: every namespace. */
  namespace: string | undefined;
  statefulSet?: string;
}

export async function readCluster(kc: KubeConfig, opts: ReadOptions): Promise<ClusterView> {
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const ns = opts.namespace;

  const podList = ns ? await core.listNamespacedPod({ namespace: ns }) : await core.listPodForAllNamespaces();
  const pods = podList.items;
  // The StatefulSets that control a gated pod, or the one asked for.
  const wanted = new Set<string>();
  for (const pod of pods) {
    const owner = owningStatefulSet(pod);
    if (owner && isGated(pod)) wanted.add(`${pod.metadata?.namespace}/${owner.name}`);
  }
  const stsList = ns
    ? await apps.listNamespacedStatefulSet({ namespace: ns })
    : await apps.listStatefulSetForAllNamespaces();
  const statefulSets = stsList.items
    .filter((s) =>
      opts.statefulSet
        ? s.metadata?.name === opts.statefulSet
        : wanted.has(`${s.metadata?.namespace}/${s.metadata?.name}`),
    )
    .map((s) => ({
      namespace: s.metadata?.namespace ?? "",
      name: s.metadata?.name ?? "",
      uid: s.metadata?.uid ?? "",
      replicas: s.spec?.replicas ?? 1,
    }))
    .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));

  const heads = new Map<string, HeadSpec>();
  const warnings: string[] = [];
  if (statefulSets.length > 0) {
    try {
      const where = { group: GROUP, version: STATE_HEAD_VERSION, plural: STATE_HEAD_PLURAL };
      const list = (
        ns
          ? await custom.listNamespacedCustomObject({ ...where, namespace: ns })
          : await custom.listClusterCustomObject(where)
      ) as { items?: { metadata?: { namespace?: string; name?: string } }[] };
      for (const item of list.items ?? []) {
        const spec = headSpecOf(item);
        if (spec) heads.set(`${item.metadata?.namespace}/${item.metadata?.name}`, spec);
      }
    } catch (err) {
      const code = err instanceof ApiException ? err.code : undefined;
      if (code === 404) warnings.push("the StateHead CRD is not installed: digests and sources are unknown");
      else if (code === 403)
        warnings.push("you may not list stateheads.coordinator-ha.io: digests and sources are unknown");
      else throw err;
    }
  }
  return { statefulSets, pods, heads, warnings };
}
