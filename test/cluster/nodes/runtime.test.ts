// What a process runner never did and the real runtime (runc under containerd) does: refuse a
// root image under runAsNonRoot, keep a read-only root file system read-only, drop the
// capabilities a pod drops, and kill a container that outgrows its memory limit.
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_IMAGE } from "../launcher/node-stack.ts";
import { createNamespace, deleteNamespace, kubeConfig } from "../kube.ts";
import { createPod, waitForPod } from "./pods.ts";

const kc = kubeConfig();
const core = kc.makeApiClient(CoreV1Api);
let namespace: string;

beforeAll(async () => {
  namespace = await createNamespace(kc, "runtime");
});
afterAll(async () => {
  await deleteNamespace(kc, namespace);
});

const terminated = (pod: V1Pod) => pod.status?.containerStatuses?.[0]?.state?.terminated;
const done = (pod: V1Pod) => ["Succeeded", "Failed"].includes(pod.status?.phase ?? "");

describe("the container runtime", () => {
  it("refuses to start an image that runs as root under runAsNonRoot", async () => {
    // The slim base image has no USER: it runs as root.
    await createPod(kc, namespace, "root-image", {
      securityContext: { runAsNonRoot: true },
      containers: [{ name: "app", image: TEST_IMAGE, command: ["sleep", "3600"] }],
    });
    const pod = await waitForPod(kc, namespace, "root-image", "refused", (p) =>
      Boolean(p.status?.containerStatuses?.[0]?.state?.waiting?.message),
    );
    const waiting = pod.status!.containerStatuses![0]!.state!.waiting!;
    expect(waiting.reason).toBe("CreateContainerConfigError");
    expect(waiting.message).toMatch(/runAsNonRoot and image will run as root/);
  });

  it("keeps a read-only root file system read-only, and the pod's user is who it runs as", async () => {
    await createPod(kc, namespace, "read-only", {
      restartPolicy: "Never",
      securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532 },
      containers: [
        {
          name: "app",
          image: TEST_IMAGE,
          command: ["sh", "-c", "id -u; touch /probe && echo WROTE || echo REFUSED"],
          securityContext: {
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ["ALL"] },
          },
        },
      ],
    });
    const pod = await waitForPod(kc, namespace, "read-only", "done", done);
    const log = await core.readNamespacedPodLog({ namespace, name: "read-only" });
    expect(pod.status?.phase).toBe("Succeeded");
    expect(log).toMatch(/^65532\n/);
    expect(log).toMatch(/Read-only file system/);
    expect(log).toMatch(/REFUSED/);
  });

  it("kills a container that outgrows its memory limit (OOMKilled)", async () => {
    await createPod(kc, namespace, "oom", {
      restartPolicy: "Never",
      containers: [
        {
          name: "app",
          image: TEST_IMAGE,
          // Keeps allocating (and touching) 10 MiB buffers until the limit stops it.
          command: ["node", "-e", "const a = []; setInterval(() => a.push(Buffer.alloc(10 << 20, 1)), 5)"],
          resources: { limits: { memory: "64Mi" }, requests: { memory: "64Mi" } },
        },
      ],
    });
    const pod = await waitForPod(kc, namespace, "oom", "killed", done);
    expect(terminated(pod)?.reason).toBe("OOMKilled");
    expect(terminated(pod)?.exitCode).toBe(137);
  });
});
