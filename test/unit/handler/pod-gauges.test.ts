// The gauges that the chart's alerts and dashboard read, from the handler's cache at scrape
// time, on pods derived from a real pod (test/unit/handler/pods.ts).
import { describe, expect, it } from "vitest";
import { Registry } from "prom-client";
import { gatedPodSamples, registerPodGauges } from "../../../src/handler/pod-gauges.ts";
import { Reason } from "../../../src/names.ts";
import { coordinatorPod, notReady, setCondition, terminating } from "./pods.ts";

const NOW = new Date("2026-11-23T21:51:01Z");

function pods() {
  const ready = coordinatorPod(0);
  ready.metadata!.creationTimestamp = "2026-11-23T21:40:01Z" as unknown as Date;
  for (const c of ready.status!.conditions!)
    if (c.type === "Ready") c.lastTransitionTime = "2026-11-23T21:41:04Z" as unknown as Date;
  const waiting = setCondition(notReady(coordinatorPod(1)), "False", Reason.AwaitingState, "waiting");
  const ungated = coordinatorPod(2);
  ungated.spec!.readinessGates = [];
  return [ready, waiting, ungated, terminating(coordinatorPod(3))];
}

describe("gated pod gauges", () => {
  it("sample every live gated pod: its gate, how long since it changed, and its time to Ready", () => {
    expect(gatedPodSamples(pods(), NOW)).toEqual([
      {
        namespace: "default",
        pod: "coordinator-0",
        status: "True",
        reason: "Initialized",
        gateSeconds: 600,
        readySeconds: 63,
      },
      {
        namespace: "default",
        pod: "coordinator-1",
        status: "False",
        reason: "AwaitingState",
        gateSeconds: 600,
      },
    ]);
  });

  it("are exported under the names the chart's alerts and dashboard use", async () => {
    const registry = new Registry();
    registerPodGauges(registry, pods, () => NOW);
    const text = await registry.metrics();
    expect(text).toContain(
      'coordinator_ha_handler_gated_pods{pod_namespace="default",status="True",reason="Initialized"} 1',
    );
    expect(text).toContain(
      'coordinator_ha_handler_gated_pods{pod_namespace="default",status="False",reason="AwaitingState"} 1',
    );
    expect(text).toContain(
      'coordinator_ha_handler_pod_gate_seconds{pod_namespace="default",pod_name="coordinator-1",status="False",reason="AwaitingState"} 600',
    );
    expect(text).toContain(
      'coordinator_ha_handler_pod_time_to_ready_seconds{pod_namespace="default",pod_name="coordinator-0"} 63',
    );
    expect(text).not.toContain("coordinator-3");
  });
});
