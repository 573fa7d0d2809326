// The one StatefulSet read the handler makes: its replicas and annotations, for the quorum.
import { ApiException, AppsV1Api, type KubeConfig } from "@kubernetes/client-node";

export interface StatefulSetFacts {
  uid: string;
  replicas: number | undefined;
  annotations: Record<string, string>;
}

export interface StatefulSetApi {
  /** Live read; undefined when it does not exist. */
  get(namespace: string, name: string): Promise<StatefulSetFacts | undefined>;
}

export function kubeStatefulSetApi(kc: KubeConfig): StatefulSetApi {
  const api = kc.makeApiClient(AppsV1Api);
  return {
    async get(namespace, name) {
      try {
        const sts = await api.readNamespacedStatefulSet({ namespace, name });
        return {
          uid: sts.metadata?.uid ?? "",
          replicas: sts.spec?.replicas,
          annotations: sts.metadata?.annotations ?? {},
        };
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) return undefined;
        throw err;
      }
    },
  };
}
