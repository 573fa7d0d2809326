// The local cluster's nodes are real ones: kubelet v1.35 with containerd on three workers, each
// with its own pod CIDR, kube-proxy's Services and CoreDNS's names across them.
import { CoreV1Api, type V1Node } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WORKERS } from "../launcher/config.ts";
import { TEST_IMAGE } from "../launcher/node-stack.ts";
import { createNamespace, deleteNamespace, eventually, kubeConfig } from "../kube.ts";
import { createPod, isReady, waitForPod } from "./pods.ts";

const kc = kubeConfig();
const core = kc.makeApiClient(CoreV1Api);
let namespace: string;

/** A small HTTP server on port 8080 that answers with its pod's name, pinned to a node. */
function server(nodeName: string, name: string) {
  return createPod(
    kc,
    namespace,
    name,
    {
      nodeName,
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: "http",
          image: TEST_IMAGE,
          command: ["node", "-e", `require("http").createServer((q, r) => r.end("${name}")).listen(8080)`],
          ports: [{ containerPort: 8080 }],
          readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
        },
      ],
    },
    { app: "echo" },
  );
}

/** Runs a one-shot pod on `nodeName` and returns its log once it succeeded. */
async function runOnce(nodeName: string, name: string, script: string): Promise<string> {
  await createPod(kc, namespace, name, {
    nodeName,
    restartPolicy: "Never",
    containers: [{ name: "run", image: TEST_IMAGE, command: ["node", "-e", script] }],
  });
  const pod = await waitForPod(
    kc,
    namespace,
    name,
    "done",
    (p) => ["Succeeded", "Failed"].includes(p.status?.phase ?? ""),
    60_000,
  );
  const log = await core.readNamespacedPodLog({ namespace, name });
  expect(pod.status?.phase, log).toBe("Succeeded");
  return log;
}

beforeAll(async () => {
  namespace = await createNamespace(kc, "nodes");
});
afterAll(async () => {
  await deleteNamespace(kc, namespace);
});

describe("the worker nodes", () => {
  it("are three Ready kubelets v1.35 on containerd, each with its own address and pod CIDR", async () => {
    const nodes = (await core.listNode()).items;
    const workers = WORKERS.map((w) => nodes.find((n) => n.metadata?.name === w.name)) as V1Node[];
    expect(workers.every(Boolean)).toBe(true);
    for (const [i, node] of workers.entries()) {
      expect(node.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
      expect(node.status?.nodeInfo?.kubeletVersion).toMatch(/^v1\.35\./);
      expect(node.status?.nodeInfo?.containerRuntimeVersion).toMatch(/^containerd:\/\/v?2\./);
      expect(node.status?.addresses).toContainEqual({ type: "InternalIP", address: WORKERS[i]!.address });
      expect(node.spec?.podCIDR).toBe(WORKERS[i]!.podCIDR);
    }
  });

  it("run pods that reach each other across nodes, by pod IP, ClusterIP and DNS name", async () => {
    await core.createNamespacedService({
      namespace,
      body: {
        metadata: { name: "echo" },
        spec: { selector: { app: "echo" }, ports: [{ port: 80, targetPort: 8080 }] },
      },
    });
    await server(WORKERS[1]!.name, "echo-2");
    const ready = await waitForPod(kc, namespace, "echo-2", "Ready", isReady);
    const podIP = ready.status!.podIP!;
    expect(podIP.startsWith(WORKERS[1]!.podCIDR.split(".").slice(0, 3).join("."))).toBe(true);
    // The Service's rules reach each node's kube-proxy a moment after the pod turns Ready (the
    // EndpointSlice, then kube-proxy's sync): until then a ClusterIP answers ECONNREFUSED. So the
    // client retries for up to 30 s, as a real one would, and fails with the last error.
    const fetchAll = `
      const deadline = Date.now() + 30000;
      const get = async (u) => {
        for (;;) {
          try { return await (await fetch(u, { signal: AbortSignal.timeout(3000) })).text(); }
          catch (e) { if (Date.now() > deadline) throw e; await new Promise((r) => setTimeout(r, 500)); }
        }
      };
      Promise.all([get("http://${podIP}:8080"), get("http://echo"), get("http://echo.${namespace}.svc.cluster.local")])
        .then((a) => console.log(a.join(",")), (e) => { console.error(e); process.exit(1); });`;
    const log = await runOnce(WORKERS[0]!.name, "client", fetchAll);
    expect(log.trim()).toBe("echo-2,echo-2,echo-2");
  });

  it("serve ClusterIPs to the host too, through kube-proxy", async () => {
    const svc = await core.readNamespacedService({ namespace, name: "echo" });
    const text = await eventually("the echo Service from the host", async () => {
      const res = await fetch(`http://${svc.spec!.clusterIP}:80`, { signal: AbortSignal.timeout(2000) });
      return res.ok ? res.text() : undefined;
    });
    expect(text).toBe("echo-2");
  });
});
