// Several pod caches, one per namespace, as one PodCache. A handler restricted to some
// namespaces may list and watch only inside each of them (a Role per namespace), so it runs
// one list+watch per namespace. Consumers keep asking one cache: it counts as synced only
// when every namespace is, because "no peer exists" must never come from a namespace whose
// watch is down while the others are fine.
import type { V1Pod } from "@kubernetes/client-node";
import type { CachedObject, RunningPodCache } from "./pod-cache.ts";

/** `caches` maps each namespace to the cache of that namespace's pods. */
export function combinePodCaches<T extends CachedObject = V1Pod>(
  caches: ReadonlyMap<string, RunningPodCache<T>>,
): RunningPodCache<T> {
  const list = [...caches.values()];
  return {
    synced: () => list.every((cache) => cache.synced()),
    problem: () => {
      for (const [namespace, cache] of caches) {
        const problem = cache.problem();
        if (problem !== undefined) return `namespace ${namespace}: ${problem}`;
      }
      return undefined;
    },
    get: (namespace, name) => caches.get(namespace)?.get(namespace, name),
    inNamespace: (namespace) => caches.get(namespace)?.inNamespace(namespace) ?? [],
    all: () => list.flatMap((cache) => cache.all()),
    size: () => list.reduce((sum, cache) => sum + cache.size(), 0),
    stop: () => {
      for (const cache of list) cache.stop();
    },
  };
}
