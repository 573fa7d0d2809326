// Helpers for cluster tests that run plain pods on the worker nodes: create them (out of the
// product's webhook's reach), and wait for their status.
import { CoreV1Api, type KubeConfig, type V1Pod, type V1PodCondition } from "@kubernetes/client-node";
import { INJECT_ANNOTATION } from "../../../src/names.ts";
import { eventually } from "../kube.ts";

export type PodSpec = NonNullable<V1Pod["spec"]>;

/** Creates a pod that the product's webhook (should a test have installed it) leaves alone. */
export async function createPod(
  kc: KubeConfig,
  namespace: string,
  name: string,
  spec: PodSpec,
  labels: Record<string, string> = {},
): Promise<V1Pod> {
  return kc.makeApiClient(CoreV1Api).createNamespacedPod({
    namespace,
    body: { metadata: { name, labels, annotations: { [INJECT_ANNOTATION]: "false" } }, spec },
  });
}

export function readPod(kc: KubeConfig, namespace: string, name: string): Promise<V1Pod> {
  return kc.makeApiClient(CoreV1Api).readNamespacedPod({ namespace, name });
}

export function condition(pod: V1Pod, type: string): V1PodCondition | undefined {
  return pod.status?.conditions?.find((c) => c.type === type);
}

/** Waits until the pod satisfies `ok`, and returns it. */
export function waitForPod(
  kc: KubeConfig,
  namespace: string,
  name: string,
  what: string,
  ok: (pod: V1Pod) => boolean,
  timeoutMs = 60_000,
): Promise<V1Pod> {
  return eventually(
    `pod ${namespace}/${name}: ${what}`,
    async () => {
      const pod = await readPod(kc, namespace, name);
      return ok(pod) ? pod : undefined;
    },
    { timeoutMs },
  );
}

export const isReady = (pod: V1Pod) => condition(pod, "Ready")?.status === "True";
