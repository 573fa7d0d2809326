import { describe, expect, it } from "vitest";
import { pino } from "pino";
import { conditionWriter } from "../../../src/handler/condition-writer.ts";
import { createController } from "../../../src/handler/controller.ts";
import { handlerMetrics } from "../../../src/handler/metrics.ts";
import { AWAITING_NO_PEER, AWAITING_PEER } from "../../../src/handler/reconcile.ts";
import { createRegistry } from "../../../src/http/metrics.ts";
import type { PodCache } from "../../../src/kube/pod-cache.ts";
import { FakeCluster } from "./fake-cluster.ts";
import {
  coordinatorPod,
  DIGEST,
  headWith,
  memberOf,
  notReady,
  restarted,
  setCondition,
  uidOf,
  withoutCondition,
} from "./pods.ts";

const NEW = `sha256:${"cd".repeat(32)}`;

const logger = pino({ level: "silent" });

function setup(cache?: (cluster: FakeCluster) => PodCache, now = () => new Date()) {
  const cluster = new FakeCluster();
  const registry = createRegistry();
  const metrics = handlerMetrics(registry, () => 0);
  const writer = conditionWriter({ pods: cluster.api, logger, metrics, instance: "handler-test-0" });
  const view = cache ? cache(cluster) : cluster.cache;
  const controller = createController({
    cache: () => view,
    heads: () => cluster.headCache,
    store: cluster.store,
    writer,
    metrics,
    logger,
    retryMs: 1,
    now,
  });
  const pod = (name: string) => cluster.pods.get(`default/${name}`)!;
  // coordinator-0 is recovered (the fixture): its record is in the head.
  cluster.setHead("default", headWith([memberOf(coordinatorPod(0))]));
  return { cluster, controller, pod, registry };
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

  it("turns the gates of pods behind a new head False (StateStale), and leaves the pod that holds it", async () => {
    const { cluster, controller, pod } = setup();
    cluster.add(coordinatorPod(0), coordinatorPod(1));
    cluster.setHead(
      "default",
      headWith([memberOf(coordinatorPod(0), { digest: NEW }), memberOf(coordinatorPod(1))], {
        committed: {
          digest: NEW,
          parent: DIGEST,
          by: "coordinator-0",
          at: new Date().toISOString(),
          holders: {},
        },
        history: [DIGEST, NEW],
      }),
    );
    controller.heads.changed(cluster.headCache.get("default", "coordinator")!, undefined);
    await controller.idle();
    expect(cluster.condition("default", "coordinator-1")).toMatchObject({
      status: "False",
      reason: "StateStale",
    });
    expect(cluster.condition("default", "coordinator-0")).toMatchObject({
      status: "True",
      reason: "Initialized",
    });
    expect(cluster.events).toMatchObject([{ type: "Warning", reason: "StateStale" }]);
    expect(pod("coordinator-1").status!.conditions!.at(-1)!.message).toContain("held by pod coordinator-0");
  });

  it("demotes nothing that the live head shows caught up, whatever the cache says", async () => {
    const { cluster, controller } = setup();
    cluster.add(coordinatorPod(0), setCondition(coordinatorPod(1), "True", "Updated", "Updated"));
    const head = {
      committed: {
        digest: NEW,
        parent: DIGEST,
        by: "coordinator-0",
        at: new Date().toISOString(),
        holders: {},
      },
      history: [DIGEST, NEW],
    };
    cluster.setHead(
      "default",
      headWith([memberOf(coordinatorPod(0), { digest: NEW }), memberOf(coordinatorPod(1))], head),
    );
    const lagging = cluster.headCache.get("default", "coordinator")!;
    // The apiserver already has coordinator-1's confirmation of NEW.
    cluster.setHead(
      "default",
      headWith(
        [memberOf(coordinatorPod(0), { digest: NEW }), memberOf(coordinatorPod(1), { digest: NEW })],
        head,
      ),
    );
    const controllerWithLag = createController({
      cache: () => cluster.cache,
      heads: () => ({ ...cluster.headCache, get: () => lagging }),
      store: cluster.store,
      writer: conditionWriter({
        pods: cluster.api,
        logger,
        metrics: handlerMetrics(createRegistry(), () => 0),
        instance: "handler-test-1",
      }),
      metrics: handlerMetrics(createRegistry(), () => 0),
      logger,
      retryMs: 1,
    });
    controllerWithLag.relisted();
    await controllerWithLag.idle();
    controllerWithLag.stop();
    controller.stop();
    expect(cluster.condition("default", "coordinator-1")).toMatchObject({
      status: "True",
      reason: "Updated",
    });
    expect(cluster.patches).toHaveLength(0);
  });

  it("abandons a proposal whose proposer is gone, and leaves the committed head", async () => {
    const { cluster, controller, registry } = setup();
    cluster.add(coordinatorPod(0), coordinatorPod(2));
    cluster.setHead(
      "default",
      headWith([memberOf(coordinatorPod(0))], {
        proposal: {
          digest: NEW,
          parent: DIGEST,
          by: "coordinator-1",
          byUid: uidOf(1),
          certSha256: "8c".repeat(32),
          at: new Date().toISOString(),
          expiresAt: new Date(Date.now() + 60_000).toISOString(),
          holders: { "coordinator-1": uidOf(1) },
        },
      }),
    );
    controller.heads.changed(cluster.headCache.get("default", "coordinator")!, undefined);
    await controller.idle();
    expect(cluster.head("default", "coordinator")).toMatchObject({
      proposal: null,
      committed: { digest: DIGEST },
    });
    expect(await registry.getSingleMetricAsString("coordinator_ha_handler_commits_total")).toMatch(
      /outcome="abandoned",reason="proposer_gone"} 1/,
    );
  });

  it("abandons an expired proposal when it expires", async () => {
    let now = new Date();
    const { cluster, controller } = setup(undefined, () => now);
    cluster.add(coordinatorPod(0), coordinatorPod(1));
    cluster.setHead(
      "default",
      headWith([memberOf(coordinatorPod(0))], {
        proposal: {
          digest: NEW,
          parent: DIGEST,
          by: "coordinator-1",
          byUid: uidOf(1),
          certSha256: "8c".repeat(32),
          at: now.toISOString(),
          expiresAt: new Date(now.getTime() + 20).toISOString(),
          holders: { "coordinator-1": uidOf(1) },
        },
      }),
    );
    controller.heads.changed(cluster.headCache.get("default", "coordinator")!, undefined);
    await controller.idle();
    expect(cluster.head("default", "coordinator")?.proposal).not.toBeNull();
    now = new Date(now.getTime() + 1000);
    await expect.poll(() => cluster.head("default", "coordinator")?.proposal).toBeNull();
    controller.stop();
  });
});
