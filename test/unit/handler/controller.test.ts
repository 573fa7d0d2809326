import { describe, expect, it } from "vitest";
import { pino } from "pino";
import { conditionWriter } from "../../../src/handler/condition-writer.ts";
import { createController } from "../../../src/handler/controller.ts";
import { handlerMetrics } from "../../../src/handler/metrics.ts";
import { AWAITING_NO_PEER, AWAITING_PEER } from "../../../src/handler/reconcile.ts";
import { createRegistry } from "../../../src/http/metrics.ts";
import type { PodCache } from "../../../src/kube/pod-cache.ts";
import { FakeCluster } from "./fake-cluster.ts";
import { coordinatorPod, notReady, restarted, withoutCondition } from "./pods.ts";

const logger = pino({ level: "silent" });

function setup(cache?: (cluster: FakeCluster) => PodCache) {
  const cluster = new FakeCluster();
  const metrics = handlerMetrics(createRegistry(), () => 0);
  const writer = conditionWriter({ pods: cluster.api, logger, metrics, instance: "handler-test-0" });
  const view = cache ? cache(cluster) : cluster.cache;
  const controller = createController({ cache: () => view, writer, logger, retryMs: 1 });
  const pod = (name: string) => cluster.pods.get(`default/${name}`)!;
  return { cluster, controller, pod };
}

describe("the pod watch controller", () => {
  it("resets the gate of a pod whose app restarted, with a Warning Event", async () => {
    const { cluster, controller, pod } = setup();
    cluster.add(coordinatorPod(0));
    cluster.touch("default", "coordinator-0", (p) => restarted(p, 1));
    controller.changed(pod("coordinator-0"), undefined);
    await controller.idle();
    expect(cluster.condition("default", "coordinator-0")).toMatchObject({
      status: "False",
      reason: "AppRestarted",
    });
    expect(cluster.events).toMatchObject([{ type: "Warning", reason: "AppRestarted" }]);
  });

  it("tells a new pod to wait for its user, then for its sidecar once a peer is Ready", async () => {
    const { cluster, controller, pod } = setup();
    cluster.add(withoutCondition(coordinatorPod(1)), notReady(coordinatorPod(0)));
    controller.relisted();
    await controller.idle();
    expect(cluster.condition("default", "coordinator-1")?.message).toBe(AWAITING_NO_PEER);

    // coordinator-0 turns Ready: its siblings are re-evaluated.
    cluster.touch(
      "default",
      "coordinator-0",
      (p) => (p.status!.conditions!.find((c) => c.type === "Ready")!.status = "True"),
    );
    controller.changed(pod("coordinator-0"), undefined);
    await controller.idle();
    expect(cluster.condition("default", "coordinator-1")).toMatchObject({
      status: "False",
      reason: "AwaitingState",
      message: AWAITING_PEER,
    });
    expect(cluster.events).toHaveLength(0);
  });

  it("writes once however often the same pod is seen (replicas and relists converge)", async () => {
    const { cluster, controller, pod } = setup();
    cluster.add(withoutCondition(coordinatorPod(0)));
    for (let i = 0; i < 3; i++) {
      controller.changed(pod("coordinator-0"), undefined);
      controller.relisted();
      await controller.idle();
    }
    expect(cluster.patches).toHaveLength(1);
  });

  it("does not overwrite a newer condition from a stale cache (resourceVersion precondition)", async () => {
    // The cache still holds the pod without a condition; the apiserver has it recovered.
    const { cluster, controller } = setup((c) => {
      const stale = withoutCondition(coordinatorPod(0));
      return { ...c.cache, get: () => stale, inNamespace: () => [stale] };
    });
    cluster.add(coordinatorPod(0));
    cluster.touch("default", "coordinator-0");
    controller.changed(coordinatorPod(0), undefined);
    await controller.idle();
    expect(cluster.condition("default", "coordinator-0")).toMatchObject({
      status: "True",
      reason: "Initialized",
    });
    expect(cluster.patches).toHaveLength(0);
  });

  it("retries a write that failed", async () => {
    const { cluster, controller, pod } = setup();
    cluster.add(withoutCondition(coordinatorPod(0)));
    let failures = 1;
    cluster.beforePatch = () => {
      if (failures-- > 0) throw new Error("apiserver unavailable");
    };
    controller.changed(pod("coordinator-0"), undefined);
    await expect.poll(() => cluster.patches.length).toBe(1);
  });
});
