// With no webhook replica to answer and `failurePolicy: Fail`, the apiserver refuses every
// Coordinator pod: none is created without the readiness gate and the recovery sidecar (it
// would serve without state). Other pods are not affected. Once the webhook is back, the
// StatefulSet's pod is created, injected, and recovers.
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RECOVERED_CONDITION, Reason, STATUS_ANNOTATION, STATUS_INJECTED } from "../../../src/names.ts";
import { eventually } from "../kube.ts";
import { recovered, set } from "../workflow/coordinator.ts";
import { listWatch } from "../workflow/list-watch.ts";
import { installWorkflow, type Workflow } from "./harness.ts";

const WEBHOOK = "inject.coordinator-ha.io";

describe("the webhook down, with failurePolicy Fail", () => {
  let w: Workflow;
  let system: (line: string) => string;

  beforeAll(async () => {
    w = await installWorkflow("e2e-webhook-down");
    system = (line) => line.replace(/^kubectl /, `kubectl --namespace ${w.system} `);
    const manifest = w.files.write("manifest.json", JSON.stringify({ policy: "e2e-webhook-down" }));
    await set(w.sh, await w.serviceAddress("coordinator"), manifest);
    await w.sh.run("kubectl wait pod/coordinator-0 --for=condition=Ready --timeout=1m");
  }, 300_000);
  afterAll(async () => {
    await w?.cleanup();
  });

  it("refuses every Coordinator pod until the webhook is back; none is created un-gated", async () => {
    const policy = await w.sh.run(
      `kubectl get mutatingwebhookconfiguration ${w.release}-coordinator-ha -o jsonpath='{.webhooks[0].failurePolicy}'`,
    );
    expect(policy.stdout).toBe("Fail");

    // Every Coordinator pod that comes to exist in the namespace, however briefly.
    const created = new Map<string, V1Pod>();
    const remember = (p: V1Pod) => created.set(p.metadata!.uid!, p);
    const stopWatch = await listWatch<V1Pod>(
      w.kc,
      {
        list: () =>
          w.kc.makeApiClient(CoreV1Api).listNamespacedPod({
            namespace: w.namespace,
            labelSelector: "app.kubernetes.io/name=coordinator",
          }),
        path: `/api/v1/namespaces/${w.namespace}/pods`,
        labelSelector: "app.kubernetes.io/name=coordinator",
      },
      { reset: (pods) => pods.forEach(remember), event: (_type, p) => remember(p) },
    );

    try {
      await w.sh.run(system(`kubectl scale deployment/${w.webhookDeployment} --replicas 0`));
      await w.sh.run(
        system(
          `kubectl wait pod -l app.kubernetes.io/instance=${w.release},app.kubernetes.io/component=webhook --for=delete --timeout=1m`,
        ),
      );

      // The StatefulSet controller's pod is refused...
      await w.sh.run("kubectl scale statefulset/coordinator --replicas 2");
      const refused = await eventually(
        "a FailedCreate Event on the StatefulSet",
        async () => {
          const r = await w.sh.run(
            "kubectl get events --field-selector involvedObject.name=coordinator,reason=FailedCreate " +
              "-o jsonpath='{.items[*].message}'",
            { quiet: true },
          );
          return r.stdout.includes(WEBHOOK) ? r.stdout : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 1000 },
      );
      console.log(`FailedCreate: ${refused}`);
      await w.sh.run(
        "kubectl get events --field-selector involvedObject.name=coordinator,reason=FailedCreate",
      );

      // ... and so is one created by hand, with the same label.
      const manual = await w.sh.run("kubectl create -f -", {
        check: false,
        input: JSON.stringify({
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "coordinator-by-hand", labels: { "app.kubernetes.io/name": "coordinator" } },
          spec: { containers: [{ name: "app", image: "registry.k8s.io/pause:3.10.1" }] },
        }),
      });
      expect(manual.code).not.toBe(0);
      expect(manual.stderr).toContain(`failed calling webhook "${WEBHOOK}"`);

      // Pods that are not Coordinators never wait for the webhook.
      await w.sh.run("kubectl run not-a-coordinator --image=registry.k8s.io/pause:3.10.1 --restart=Never");
      await w.sh.run("kubectl delete pod not-a-coordinator --wait=false");

      const names = (await w.sh.run("kubectl get pods -l app.kubernetes.io/name=coordinator -o name")).stdout;
      expect(names.trim().split("\n")).toEqual(["pod/coordinator-0"]);

      // Back up: the StatefulSet creates coordinator-1, injected, and it recovers from coordinator-0.
      await w.sh.run(system(`kubectl scale deployment/${w.webhookDeployment} --replicas 2`));
      await w.sh.run(system(`kubectl rollout status deployment/${w.webhookDeployment} --timeout=2m`), {
        timeoutMs: 150_000,
      });
      await w.sh.run(
        "kubectl wait statefulset/coordinator --for=jsonpath='{.status.readyReplicas}=2' --timeout=3m",
        {
          timeoutMs: 200_000,
        },
      );
    } finally {
      stopWatch();
    }

    expect(recovered(await w.pod("coordinator-1"))).toMatchObject({
      status: "True",
      reason: Reason.RecoveredFromPeer,
    });
    const pods = [...created.values()];
    console.log(`Coordinator pods created: ${pods.map((p) => p.metadata!.name).join(", ")}`);
    expect(pods.map((p) => p.metadata!.name).sort()).toEqual(["coordinator-0", "coordinator-1"]);
    for (const p of pods) {
      expect(p.spec?.readinessGates, p.metadata!.name).toEqual([{ conditionType: RECOVERED_CONDITION }]);
      expect(p.metadata?.annotations?.[STATUS_ANNOTATION], p.metadata!.name).toBe(STATUS_INJECTED);
    }
  });
});
