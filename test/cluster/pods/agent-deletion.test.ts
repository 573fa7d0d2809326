// Graceful deletion: a pod deleted while it starts leaves nothing behind on the host (no
// process, network namespace, veth, /etc/netns entry or volume), and a running pod gets
// SIGTERM, its grace period, and then its final delete.
import { randomBytes } from "node:crypto";
import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { vethName } from "../agent/network/sandbox.ts";
import { createNamespace, deleteNamespace, eventually, kubeConfig } from "../kube.ts";
import { containerLog, createPod, hostTraces, isReady, processesWith, waitForPod } from "./pods.ts";

describe("pod deletion", () => {
  const kc = kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  let namespace: string;

  beforeAll(async () => {
    namespace = await createNamespace(kc, "agent-delete");
  });
  afterAll(async () => {
    if (namespace) await deleteNamespace(kc, namespace);
  });

  const gone = (name: string) =>
    eventually(`pod ${name} gone from the apiserver`, async () =>
      (await core.readNamespacedPod({ namespace, name }).then(
        () => false,
        () => true,
      ))
        ? true
        : undefined,
    );

  it("leaves no process, namespace or veth behind for a pod deleted during start-up", async () => {
    const marker = `cha-marker-${randomBytes(6).toString("hex")}`;
    const pod = await createPod(kc, namespace, "early", {
      terminationGracePeriodSeconds: 5,
      volumes: [{ name: "mem", emptyDir: { medium: "Memory" } }],
      initContainers: [{ name: "init", image: "busybox", command: ["sh", "-c", `sleep 30 # ${marker}`] }],
      containers: [
        {
          name: "app",
          image: "busybox",
          command: ["sh", "-c", `sleep 3600 # ${marker}`],
          volumeMounts: [{ name: "mem", mountPath: "/mem" }],
        },
      ],
    });
    const uid = pod.metadata!.uid!;
    await waitForPod(
      kc,
      namespace,
      "early",
      "init container running",
      (p) => !!p.status?.initContainerStatuses?.[0]?.state?.running,
    );
    expect(processesWith(marker).length).toBeGreaterThan(0);
    expect(await hostTraces(uid)).toContain(`veth ${vethName(uid)}`);

    await core.deleteNamespacedPod({ namespace, name: "early" });
    await gone("early");
    expect(processesWith(marker)).toEqual([]);
    expect(await hostTraces(uid)).toEqual([]);
  });

  it("leaves nothing behind for a pod deleted right after its creation", async () => {
    const marker = `cha-marker-${randomBytes(6).toString("hex")}`;
    const pod = await createPod(kc, namespace, "instant", {
      terminationGracePeriodSeconds: 5,
      containers: [{ name: "app", image: "busybox", command: ["sh", "-c", `sleep 3600 # ${marker}`] }],
    });
    await core.deleteNamespacedPod({ namespace, name: "instant" });
    await gone("instant");
    expect(processesWith(marker)).toEqual([]);
    expect(await hostTraces(pod.metadata!.uid!)).toEqual([]);
  });

  it("sends SIGTERM, runs preStop, and deletes the pod once its containers stopped", async () => {
    await createPod(kc, namespace, "graceful", {
      terminationGracePeriodSeconds: 20,
      volumes: [{ name: "shared", emptyDir: {} }],
      containers: [
        {
          name: "app",
          image: "busybox",
          command: [
            "sh",
            "-c",
            "trap 'cat /shared/prestop; echo got SIGTERM; exit 0' TERM; echo up; while :; do sleep 0.2; done",
          ],
          // The hook runs in the container's namespaces, before the SIGTERM.
          lifecycle: { preStop: { exec: { command: ["sh", "-c", "echo prestop ran > /shared/prestop"] } } },
          volumeMounts: [{ name: "shared", mountPath: "/shared" }],
        },
      ],
    });
    const running = await waitForPod(kc, namespace, "graceful", "Ready", isReady);
    await core.deleteNamespacedPod({ namespace, name: "graceful" });
    await gone("graceful");
    // The hook ran first, then the SIGTERM reached the shell's trap (a SIGKILL would not).
    expect(containerLog(namespace, "graceful", "app")).toMatch(/^up\nprestop ran\ngot SIGTERM\n/);
    expect(await hostTraces(running.metadata!.uid!)).toEqual([]);
  });
});
