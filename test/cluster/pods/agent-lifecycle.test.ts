// Container lifecycle as the kubelet runs it: init containers in order, a native sidecar that
// holds the app back until its startup probe passes, a memory-backed emptyDir shared by all
// containers of the pod, and a crashing container restarted with back-off.
import { CoreV1Api, type V1ContainerStatus } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runOk } from "../../charts/helm.ts";
import { createNamespace, deleteNamespace, eventually, kubeConfig } from "../kube.ts";
import { paths } from "../launcher/config.ts";
import { condition, containerLog, createPod, isReady, waitForPod } from "./pods.ts";

const kubectl = (args: string[]) => runOk("kubectl", args, { env: { KUBECONFIG: paths.kubeconfig } });

describe("container lifecycle", () => {
  const kc = kubeConfig();
  let namespace: string;

  beforeAll(async () => {
    namespace = await createNamespace(kc, "agent-lifecycle");
  });
  afterAll(async () => {
    if (namespace) await deleteNamespace(kc, namespace);
  });

  it("runs the init container, then the sidecar until its startup probe passes, then the app", async () => {
    await createPod(kc, namespace, "ordered", {
      terminationGracePeriodSeconds: 1,
      volumes: [{ name: "shared", emptyDir: { medium: "Memory" } }],
      initContainers: [
        {
          name: "init",
          image: "busybox",
          command: ["sh", "-c", "echo init >> /shared/order"],
          volumeMounts: [{ name: "shared", mountPath: "/shared" }],
        },
        {
          name: "side",
          image: "busybox",
          restartPolicy: "Always",
          command: [
            "sh",
            "-c",
            "sleep 2; echo side >> /shared/order; touch /shared/side-ready; exec sleep 3600",
          ],
          startupProbe: {
            exec: { command: ["test", "-f", "/shared/side-ready"] },
            periodSeconds: 1,
            failureThreshold: 30,
          },
          volumeMounts: [{ name: "shared", mountPath: "/shared" }],
        },
      ],
      containers: [
        {
          name: "app",
          image: "busybox",
          command: [
            "sh",
            "-c",
            "echo app >> /shared/order; cat /shared/order; grep ' /shared ' /proc/mounts; exec sleep 3600",
          ],
          volumeMounts: [{ name: "shared", mountPath: "/shared" }],
        },
      ],
    });

    // The sidecar takes two seconds to pass its startup probe; meanwhile the app waits.
    const pending = await waitForPod(kc, namespace, "ordered", "sidecar running, not yet started", (p) => {
      const side = p.status?.initContainerStatuses?.find((s) => s.name === "side");
      return !!side?.state?.running && side.started === false;
    });
    expect(pending.status?.containerStatuses?.[0]?.state?.waiting?.reason).toBe("PodInitializing");
    expect(condition(pending, "Initialized")).toEqual(
      expect.objectContaining({
        status: "False",
        reason: "ContainersNotInitialized",
        message: "containers with incomplete status: [side]",
      }),
    );

    const pod = await waitForPod(kc, namespace, "ordered", "Ready", isReady);
    const byName = (name: string) =>
      [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])].find(
        (s) => s.name === name,
      )!;
    expect(byName("init")).toMatchObject({
      ready: true,
      state: { terminated: { exitCode: 0, reason: "Completed" } },
    });
    expect(byName("side")).toMatchObject({ ready: true, started: true });
    expect(byName("app")).toMatchObject({ ready: true, started: true });
    expect(condition(pod, "Initialized")?.status).toBe("True");

    const log = await eventually("the app's output", async () => {
      const out = containerLog(namespace, "ordered", "app");
      return out.includes("tmpfs") ? out : undefined;
    });
    // One tmpfs per pod: every container wrote into the same file.
    expect(log).toMatch(/^init\nside\napp\n/);
    expect(log).toMatch(/^tmpfs \/shared tmpfs /m);
    // kubectl logs goes through the apiserver to the agent's kubelet port.
    expect(kubectl(["-n", namespace, "logs", "ordered", "-c", "app", "--tail=1"])).toMatch(
      /^tmpfs \/shared tmpfs .*\n$/,
    );
  });

  it("restarts a crashing container with back-off, and counts the restarts", async () => {
    await createPod(kc, namespace, "crash", {
      terminationGracePeriodSeconds: 1,
      containers: [{ name: "crash", image: "busybox", command: ["sh", "-c", "echo ran; exit 3"] }],
    });
    const pod = await waitForPod(
      kc,
      namespace,
      "crash",
      "restarted twice and backing off",
      (p) => {
        const s = p.status?.containerStatuses?.[0];
        return (s?.restartCount ?? 0) >= 2 && s?.state?.waiting?.reason === "CrashLoopBackOff";
      },
      90_000,
    );
    const status = pod.status!.containerStatuses![0] as V1ContainerStatus;
    expect(pod.status?.phase).toBe("Running");
    expect(status.state?.waiting?.message).toMatch(
      new RegExp(
        `^back-off (10|20)s restarting failed container=crash pod=crash_${namespace}\\(${pod.metadata!.uid}\\)$`,
      ),
    );
    expect(status.lastState?.terminated).toMatchObject({ exitCode: 3, reason: "Error" });
    expect(condition(pod, "Ready")).toMatchObject({
      status: "False",
      reason: "ContainersNotReady",
      message: "containers with unready status: [crash]",
    });
    // The log file keeps every run's output; kubectl logs --previous shows the last run's.
    expect(containerLog(namespace, "crash", "crash").match(/^ran$/gm)?.length).toBeGreaterThanOrEqual(3);
    expect(kubectl(["-n", namespace, "logs", "crash", "--previous"])).toBe("ran\n");
  }, 120_000);

  it("reports an image without a mapping as ErrImagePull, naming the image and the mapping file", async () => {
    await createPod(kc, namespace, "unmapped", {
      terminationGracePeriodSeconds: 1,
      containers: [{ name: "app", image: "registry.example/unknown/app:1.0" }],
    });
    const pod = await waitForPod(kc, namespace, "unmapped", "image pull failure", (p) =>
      ["ErrImagePull", "ImagePullBackOff"].includes(
        p.status?.containerStatuses?.[0]?.state?.waiting?.reason ?? "",
      ),
    );
    expect(pod.status?.phase).toBe("Pending");
    expect(pod.status?.containerStatuses?.[0]?.state?.waiting?.message).toMatch(
      /"registry\.example\/unknown\/app:1\.0".*test\/cluster\/agent\/images\.yaml/,
    );
  });

  it("stops the app containers first, then the sidecars in reverse order", async () => {
    // Each container notes when its SIGTERM arrived; the app takes a second to stop.
    const trap = (name: string, linger: number) =>
      `trap 'echo "${name} TERM $(date +%s%N)"; sleep ${linger}; echo "${name} EXIT $(date +%s%N)"; exit 0' TERM; while :; do sleep 0.1; done`;
    const sidecar = (name: string) => ({
      name,
      image: "busybox",
      restartPolicy: "Always",
      command: ["sh", "-c", trap(name, 0)],
    });
    await createPod(kc, namespace, "ordered-stop", {
      terminationGracePeriodSeconds: 10,
      initContainers: [sidecar("first"), sidecar("second")],
      containers: [{ name: "app", image: "busybox", command: ["sh", "-c", trap("app", 1)] }],
    });
    await waitForPod(kc, namespace, "ordered-stop", "Ready", isReady);
    await kc.makeApiClient(CoreV1Api).deleteNamespacedPod({ namespace, name: "ordered-stop" });
    const at = (name: string, what: "TERM" | "EXIT") =>
      eventually(`${name} ${what}`, async () => {
        const m = new RegExp(`^${name} ${what} (\\d+)$`, "m").exec(
          containerLog(namespace, "ordered-stop", name),
        );
        return m ? BigInt(m[1]!) : undefined;
      });
    const appExit = await at("app", "EXIT");
    const [second, first] = [await at("second", "TERM"), await at("first", "TERM")];
    expect(second).toBeGreaterThan(appExit);
    expect(first).toBeGreaterThan(second);
  });
});
