// The real StatefulSet controller creates the pods of a StatefulSet, one at a time with
// OrderedReady: it makes the next pod only once the previous one is Ready. The whole HA
// design leans on that ordering.
import { AppsV1Api, CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { INJECT_ANNOTATION } from "../../../src/names.ts";
import { createNamespace, deleteNamespace, eventually, kubeConfig } from "../kube.ts";

describe("the StatefulSet controller", () => {
  const kc = kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const labels = { "app.kubernetes.io/name": "statefulset-test" };
  let namespace: string;

  beforeAll(async () => {
    namespace = await createNamespace(kc, "statefulset");
  });

  afterAll(async () => {
    if (namespace) await deleteNamespace(kc, namespace);
  });

  it("creates coordinator-0 and waits for it to be Ready before coordinator-1", async () => {
    await core.createNamespacedService({
      namespace,
      body: { metadata: { name: "coordinator" }, spec: { clusterIP: "None", selector: labels } },
    });
    const sts = await apps.createNamespacedStatefulSet({
      namespace,
      body: {
        metadata: { name: "coordinator" },
        spec: {
          replicas: 2,
          serviceName: "coordinator",
          podManagementPolicy: "OrderedReady",
          selector: { matchLabels: labels },
          template: {
            // Kept away from the product's webhook, should a test have installed it.
            metadata: { labels, annotations: { [INJECT_ANNOTATION]: "false" } },
            // An image that no node can run: the pod exists but never becomes Ready.
            spec: { containers: [{ name: "app", image: "registry.invalid/never-ready:1" }] },
          },
        },
      },
    });

    const pod = await eventually("pod coordinator-0", () =>
      core.readNamespacedPod({ namespace, name: "coordinator-0" }).catch(() => undefined),
    );
    expect(pod.metadata?.labels).toMatchObject({
      ...labels,
      "statefulset.kubernetes.io/pod-name": "coordinator-0",
      "apps.kubernetes.io/pod-index": "0",
    });
    expect(pod.metadata?.ownerReferences).toEqual([
      expect.objectContaining({
        kind: "StatefulSet",
        name: "coordinator",
        uid: sts.metadata!.uid,
        controller: true,
      }),
    ]);

    // The controller records the created pod in the status of the same sync in which it
    // decides to wait, so from then on coordinator-1 must not appear.
    await eventually("status.replicas to count coordinator-0", async () => {
      const s = await apps.readNamespacedStatefulSet({ namespace, name: "coordinator" });
      return s.status?.replicas === 1 && s.status.observedGeneration === 1 ? s : undefined;
    });
    const pods = await core.listNamespacedPod({ namespace });
    expect(pods.items.map((p) => p.metadata?.name)).toEqual(["coordinator-0"]);
  });
});
