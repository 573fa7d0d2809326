// With every instance gone, the state is gone, by design: it lives only in the pods' memory.
// After `kubectl scale --replicas 0` and back to 1, nothing may turn Ready without state. The
// pod waits for its user, and its gate says so; a new `set` starts a new state (a new key).
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RECOVERED_CONDITION, Reason } from "../../../src/names.ts";
import { eventually } from "../kube.ts";
import { isReady, recovered, sameKey, set, verify, type CoordinatorState } from "../workflow/coordinator.ts";
import { installWorkflow, type Workflow } from "./harness.ts";

/** Two readiness probe periods of the app (5 s) and then some: long enough to have turned Ready. */
const WATCH_MS = 12_000;

describe("every instance gone: the pods wait for the user", () => {
  let w: Workflow;
  let first: CoordinatorState;

  beforeAll(async () => {
    w = await installWorkflow("e2e-lost");
    const manifest = w.files.write("manifest.json", JSON.stringify({ policy: "e2e-lost" }));
    first = (await set(w.sh, await w.serviceAddress("coordinator"), manifest)).state!;
    await w.sh.run("kubectl scale statefulset/coordinator --replicas 2");
    await w.sh.run(
      "kubectl wait statefulset/coordinator --for=jsonpath='{.status.readyReplicas}=2' --timeout=2m",
      {
        timeoutMs: 150_000,
      },
    );
  }, 300_000);
  afterAll(async () => {
    await w?.cleanup();
  });

  it("after scaling to 0 and back to 1, coordinator-0 runs without state and does not turn Ready", async () => {
    await w.sh.run("kubectl scale statefulset/coordinator --replicas 0");
    await w.sh.run("kubectl wait pod -l app.kubernetes.io/name=coordinator --for=delete --timeout=1m");
    await w.sh.run("kubectl scale statefulset/coordinator --replicas 1");

    await eventually(
      "a new coordinator-0 whose app runs and whose gate says it waits for the user",
      async () => {
        const p = await w.pod("coordinator-0");
        const started = p.status?.containerStatuses?.every((c) => c.started) ?? false;
        return started && recovered(p)?.reason === Reason.AwaitingState ? p : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    // Watch it for a while: it must stay un-Ready, whatever its probes and its sidecar do.
    const seen = new Set<string>();
    for (const until = Date.now() + WATCH_MS; Date.now() < until; await sleep(500)) {
      const p = await w.pod("coordinator-0");
      seen.add(`Ready=${isReady(p)} gate=${recovered(p)?.status}/${recovered(p)?.reason}`);
    }
    console.log(`coordinator-0 over ${WATCH_MS / 1000}s: ${[...seen].join(", ")}`);
    expect([...seen]).toEqual([`Ready=false gate=False/${Reason.AwaitingState}`]);

    const message = await w.sh.run(
      `kubectl get pod coordinator-0 -o jsonpath='{.status.conditions[?(@.type=="${RECOVERED_CONDITION}")].message}'`,
    );
    expect(message.stdout).toContain(
      'No initialized peer exists: initialize this Coordinator with "coordinator-ha set"',
    );
    expect((await w.sh.run("kubectl get pods -l app.kubernetes.io/name=coordinator")).stdout).toMatch(
      /coordinator-0\s+1\/2\s+Running/,
    );
    // The app itself says that it holds nothing.
    const { result } = await verify(w.sh, await w.podAddress("coordinator-0"), { check: false });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("is not initialized");
  });

  it("a new set starts a new state, with a new public key", async () => {
    const manifest = w.files.write("manifest.json", JSON.stringify({ policy: "e2e-lost, again" }));
    const second = (await set(w.sh, await w.serviceAddress("coordinator"), manifest)).state!;
    expect(sameKey(second.publicKey, first.publicKey)).toBe(false);
    await w.sh.run("kubectl wait pod/coordinator-0 --for=condition=Ready --timeout=1m");
    expect(recovered(await w.pod("coordinator-0"))).toMatchObject({
      status: "True",
      reason: Reason.Initialized,
    });
  });
});
