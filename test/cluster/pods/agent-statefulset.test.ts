// A 3-replica StatefulSet with OrderedReady comes up one pod at a time, and survives
// `kubectl rollout restart`: graceful deletion (SIGTERM, then the final delete) lets the
// controller replace each pod in turn. Timings go to the test output.
import { AppsV1Api, CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runOk } from "../../charts/helm.ts";
import { createNamespace, deleteNamespace, eventually, kubeConfig } from "../kube.ts";
import { paths } from "../launcher/config.ts";
import { INJECT_ANNOTATION } from "../../../src/names.ts";

const kubectl = (args: string[]) => runOk("kubectl", args, { env: { KUBECONFIG: paths.kubeconfig } });

const readyTime = (p: V1Pod) => {
  const c = p.status?.conditions?.find((x) => x.type === "Ready" && x.status === "True");
  return c?.lastTransitionTime ? new Date(c.lastTransitionTime).getTime() : undefined;
};

describe("StatefulSet on the node agent", () => {
  const kc = kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const labels = { app: "web" };
  let namespace: string;

  beforeAll(async () => {
    namespace = await createNamespace(kc, "agent-sts");
  });
  afterAll(async () => {
    if (namespace) await deleteNamespace(kc, namespace);
  });

  it("starts 3 replicas in order and rolls them over with kubectl rollout restart", async () => {
    await core.createNamespacedService({
      namespace,
      body: {
        metadata: { name: "web" },
        spec: { clusterIP: "None", selector: labels, ports: [{ port: 8080 }] },
      },
    });
    const started = Date.now();
    await apps.createNamespacedStatefulSet({
      namespace,
      body: {
        metadata: { name: "web" },
        spec: {
          replicas: 3,
          serviceName: "web",
          podManagementPolicy: "OrderedReady",
          selector: { matchLabels: labels },
          template: {
            metadata: { labels, annotations: { [INJECT_ANNOTATION]: "false" } },
            spec: {
              terminationGracePeriodSeconds: 10,
              containers: [
                {
                  name: "web",
                  image: "node:24",
                  command: [
                    "node",
                    "-e",
                    // Exits on SIGTERM like a well-behaved server.
                    "const s = require('http').createServer((q, r) => r.end(require('os').hostname())).listen(8080); process.on('SIGTERM', () => s.close(() => process.exit(0)));",
                  ],
                  ports: [{ name: "http", containerPort: 8080 }],
                  readinessProbe: { httpGet: { path: "/", port: "http" }, periodSeconds: 1 },
                },
              ],
            },
          },
        },
      },
    });

    const ready = await eventually(
      "3 ready replicas",
      async () => {
        const s = await apps.readNamespacedStatefulSet({ namespace, name: "web" });
        return s.status?.readyReplicas === 3 ? s : undefined;
      },
      { timeoutMs: 90_000 },
    );
    const upSeconds = (Date.now() - started) / 1000;
    const pods = (await core.listNamespacedPod({ namespace })).items.sort((a, b) =>
      a.metadata!.name!.localeCompare(b.metadata!.name!),
    );
    expect(pods.map((p) => p.metadata?.name)).toEqual(["web-0", "web-1", "web-2"]);
    // OrderedReady: each pod was created only after its predecessor was Ready.
    for (let i = 1; i < 3; i++) {
      const created = new Date(pods[i]!.metadata!.creationTimestamp!).getTime();
      expect(created).toBeGreaterThanOrEqual(readyTime(pods[i - 1]!)!);
    }
    expect(ready.status?.currentRevision).toBe(ready.status?.updateRevision);

    const before = new Map(pods.map((p) => [p.metadata!.name!, p.metadata!.uid!]));
    const rolloutStarted = Date.now();
    kubectl(["-n", namespace, "rollout", "restart", "statefulset/web"]);
    kubectl(["-n", namespace, "rollout", "status", "statefulset/web", "--timeout=120s"]);
    const rolloutSeconds = (Date.now() - rolloutStarted) / 1000;

    const after = (await core.listNamespacedPod({ namespace })).items;
    expect(after).toHaveLength(3);
    for (const p of after) {
      expect(p.metadata?.uid).not.toBe(before.get(p.metadata!.name!));
      expect(p.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    }
    console.log(
      `StatefulSet: 3 replicas Ready in ${upSeconds.toFixed(1)}s; rollout restart done in ${rolloutSeconds.toFixed(1)}s`,
    );
  }, 240_000);
});
