// The few pod operations the handler performs against the apiserver, behind an interface
// so that the handler's logic can be tested against a fake.
import {
  ApiException,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Event,
  type KubeConfig,
  type V1Pod,
} from "@kubernetes/client-node";
import { KUBE_CALL_TIMEOUT_MS, withTimeout } from "./timeout.ts";

export type PatchResult = "patched" | "conflict" | "gone";

export interface PodApi {
  /** GET the pod from the apiserver (never a cache); undefined when it does not exist. */
  get(namespace: string, name: string): Promise<V1Pod | undefined>;
  /** Strategic-merge patch on pods/status; a failed precondition is "conflict", 404 "gone". */
  patchStatus(namespace: string, name: string, patch: object): Promise<PatchResult>;
  createEvent(namespace: string, event: CoreV1Event): Promise<void>;
}

/** `timeoutMs`: the deadline of each call (KUBE_CALL_TIMEOUT_MS unless a test says otherwise). */
export function kubePodApi(kc: KubeConfig, timeoutMs = KUBE_CALL_TIMEOUT_MS): PodApi {
  const api = kc.makeApiClient(CoreV1Api);
  const deadline = () => withTimeout(timeoutMs);
  const strategicMerge = () =>
    setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch, deadline());
  return {
    async get(namespace, name) {
      try {
        return await api.readNamespacedPod({ namespace, name }, deadline());
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw err;
      }
    },
    async patchStatus(namespace, name, patch) {
      try {
        await api.patchNamespacedPodStatus({ namespace, name, body: patch }, strategicMerge());
        return "patched";
      } catch (err) {
        if (statusOf(err) === 409) return "conflict";
        if (statusOf(err) === 404) return "gone";
        throw err;
      }
    },
    async createEvent(namespace, event) {
      await api.createNamespacedEvent({ namespace, body: event }, deadline());
    },
  };
}

function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}
