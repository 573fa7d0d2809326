// The apiserver side of the pod cache: list and watch the pods that match a label selector,
// either in every namespace or in one.
import { CoreV1Api, Watch, type KubeConfig, type V1Pod, type V1PodList } from "@kubernetes/client-node";
import type { PodListWatch } from "./pod-cache.ts";
import { withTimeout } from "./timeout.ts";

/**
 * The server ends each watch after this long, and the cache resumes from the last
 * resourceVersion. It must stay below the client's 30 s inactivity timeout (Watch in
 * @kubernetes/client-node), or a quiet watch would be cut as if it had failed.
 */
const WATCH_SECONDS = 20;
/** A list of every selected pod may be large; a stalled one is retried by the cache. */
const LIST_TIMEOUT_MS = 60_000;

/** The selected pods of every namespace (needs list and watch on pods cluster-wide). */
export function kubePodListWatch(kc: KubeConfig, labelSelector: string): PodListWatch {
  return listWatch(
    kc,
    "/api/v1/pods",
    (api) => api.listPodForAllNamespaces({ labelSelector }, withTimeout(LIST_TIMEOUT_MS)),
    labelSelector,
  );
}

/** The selected pods of one namespace (a Role in that namespace is enough). */
export function kubeNamespacedPodListWatch(
  kc: KubeConfig,
  namespace: string,
  labelSelector: string,
): PodListWatch {
  return listWatch(
    kc,
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`,
    (api) => api.listNamespacedPod({ namespace, labelSelector }, withTimeout(LIST_TIMEOUT_MS)),
    labelSelector,
  );
}

/**
 * The cache keeps every selected pod for as long as it exists, and nothing of the handler reads
 * `metadata.managedFields` (server-side apply's bookkeeping, often half of a pod's JSON and
 * about two thirds of its size in memory): it is dropped as each pod arrives, as client-go's
 * informers do with TransformStripManagedFields.
 */
export function withoutManagedFields<T extends { metadata?: { managedFields?: unknown } }>(obj: T): T {
  if (obj.metadata?.managedFields !== undefined) delete obj.metadata.managedFields;
  return obj;
}

function listWatch(
  kc: KubeConfig,
  watchPath: string,
  list: (api: CoreV1Api) => Promise<V1PodList>,
  labelSelector: string,
): PodListWatch {
  const api = kc.makeApiClient(CoreV1Api);
  const watcher = new Watch(kc);
  return {
    async list() {
      const pods = await list(api);
      return {
        items: pods.items.map(withoutManagedFields),
        resourceVersion: pods.metadata?.resourceVersion ?? "",
      };
    },
    async watch(resourceVersion, onEvent, onDone) {
      const controller = await watcher.watch(
        watchPath,
        { labelSelector, resourceVersion, allowWatchBookmarks: true, timeoutSeconds: WATCH_SECONDS },
        (type: string, object: V1Pod) => onEvent({ type, object: withoutManagedFields(object) }),
        onDone,
      );
      return () => controller.abort();
    },
  };
}
