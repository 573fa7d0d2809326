// The StateHead objects (coordinator-ha.io/v1alpha1) as the handler reads and writes them:
// a live GET, a create, and a replace that carries the resourceVersion it read, so that the
// apiserver refuses it (409) when another writer came first. No patch and no delete: the
// handler's RBAC has neither, and a StateHead goes with its StatefulSet (ownerReference).
import { ApiException, CustomObjectsApi, Watch, type KubeConfig } from "@kubernetes/client-node";
import { GROUP } from "../names.ts";
import {
  headObject,
  headSpecOf,
  STATE_HEAD_PLURAL,
  STATE_HEAD_VERSION,
  type HeadSpec,
  type StoredHead,
} from "../handler/head/state-head.ts";
import type { CachedObject, PodListWatch } from "./pod-cache.ts";

export type HeadWrite = "written" | "conflict";

export interface StateHeadApi {
  /** Live read; undefined when there is none. */
  get(namespace: string, name: string): Promise<StoredHead | undefined>;
  /** "conflict" when one exists already. */
  create(namespace: string, spec: HeadSpec): Promise<HeadWrite>;
  /** "conflict" when it changed since `resourceVersion` (or is gone). */
  replace(namespace: string, spec: HeadSpec, resourceVersion: string): Promise<HeadWrite>;
}

/** A StateHead object as the list and the watch deliver it. */
export interface StateHeadObject extends CachedObject {
  spec?: unknown;
}

const WATCH_SECONDS = 20;

export function kubeStateHeadApi(kc: KubeConfig): StateHeadApi {
  const api = kc.makeApiClient(CustomObjectsApi);
  const where = (namespace: string) => ({
    group: GROUP,
    version: STATE_HEAD_VERSION,
    namespace,
    plural: STATE_HEAD_PLURAL,
  });
  return {
    async get(namespace, name) {
      let object: StateHeadObject;
      try {
        object = (await api.getNamespacedCustomObject({ ...where(namespace), name })) as StateHeadObject;
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw err;
      }
      const spec = headSpecOf(object);
      if (!spec) throw new Error(`StateHead ${namespace}/${name} has no spec.statefulSet`);
      return { spec, resourceVersion: object.metadata?.resourceVersion ?? "" };
    },
    async create(namespace, spec) {
      try {
        await api.createNamespacedCustomObject({ ...where(namespace), body: headObject(namespace, spec) });
        return "written";
      } catch (err) {
        if (statusOf(err) === 409) return "conflict";
        throw err;
      }
    },
    async replace(namespace, spec, resourceVersion) {
      try {
        await api.replaceNamespacedCustomObject({
          ...where(namespace),
          name: spec.statefulSet.name,
          body: headObject(namespace, spec, resourceVersion),
        });
        return "written";
      } catch (err) {
        // 404: deleted since we read it; the next read starts over from nothing.
        if (statusOf(err) === 409 || statusOf(err) === 404) return "conflict";
        throw err;
      }
    },
  };
}

/** List+watch of the StateHeads of one namespace, or of all (namespace undefined). */
export function kubeStateHeadListWatch(kc: KubeConfig, namespace?: string): PodListWatch<StateHeadObject> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const watcher = new Watch(kc);
  const path = namespace
    ? `/apis/${GROUP}/${STATE_HEAD_VERSION}/namespaces/${encodeURIComponent(namespace)}/${STATE_HEAD_PLURAL}`
    : `/apis/${GROUP}/${STATE_HEAD_VERSION}/${STATE_HEAD_PLURAL}`;
  return {
    async list() {
      const list = (
        namespace
          ? await api.listNamespacedCustomObject({
              group: GROUP,
              version: STATE_HEAD_VERSION,
              namespace,
              plural: STATE_HEAD_PLURAL,
            })
          : await api.listClusterCustomObject({
              group: GROUP,
              version: STATE_HEAD_VERSION,
              plural: STATE_HEAD_PLURAL,
            })
      ) as { items?: StateHeadObject[]; metadata?: { resourceVersion?: string } };
      return { items: list.items ?? [], resourceVersion: list.metadata?.resourceVersion ?? "" };
    },
    async watch(resourceVersion, onEvent, onDone) {
      const controller = await watcher.watch(
        path,
        { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: WATCH_SECONDS },
        (type: string, object: StateHeadObject) => onEvent({ type, object }),
        onDone,
      );
      return () => controller.abort();
    },
  };
}

function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}
