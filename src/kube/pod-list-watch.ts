// The apiserver side of the pod cache: list and watch the pods of every namespace that
// match a label selector.
import { CoreV1Api, Watch, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import type { PodListWatch } from "./pod-cache.ts";

/**
 * The server ends each watch after this long, and the cache resumes from the last
 * resourceVersion. It must stay below the client's 30 s inactivity timeout (Watch in
 * @kubernetes/client-node), or a quiet watch would be cut as if it had failed.
 */
const WATCH_SECONDS = 20;

export function kubePodListWatch(kc: KubeConfig, labelSelector: string): PodListWatch {
  const api = kc.makeApiClient(CoreV1Api);
  const watcher = new Watch(kc);
  return {
    async list() {
      const list = await api.listPodForAllNamespaces({ labelSelector });
      return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? "" };
    },
    async watch(resourceVersion, onEvent, onDone) {
      const controller = await watcher.watch(
        "/api/v1/pods",
        { labelSelector, resourceVersion, allowWatchBookmarks: true, timeoutSeconds: WATCH_SECONDS },
        (type: string, object: V1Pod) => onEvent({ type, object }),
        onDone,
      );
      return () => controller.abort();
    },
  };
}
