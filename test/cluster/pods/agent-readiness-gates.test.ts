// Readiness gates, as the kubelet evaluates them: Ready stays False with the kubelet's reason
// and messages until the gate's condition is True, follows the condition when another party
// patches it, and the agent's own status writes never remove that condition.
import { CoreV1Api, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespace, deleteNamespace, kubeConfig } from "../kube.ts";
import { condition, createPod, waitForPod } from "./pods.ts";

const GATE = "example.com/gate";

describe("readiness gates", () => {
  const kc = kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  let namespace: string;

  beforeAll(async () => {
    namespace = await createNamespace(kc, "agent-gates");
  });
  afterAll(async () => {
    if (namespace) await deleteNamespace(kc, namespace);
  });

  const setGate = (status: "True" | "False") =>
    core.patchNamespacedPodStatus(
      {
        name: "gated",
        namespace,
        body: {
          status: { conditions: [{ type: GATE, status, lastTransitionTime: new Date().toISOString() }] },
        },
      },
      setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
    );

  it("keeps a gated pod unready until its condition is True, then makes it Ready", async () => {
    await createPod(kc, namespace, "gated", {
      readinessGates: [{ conditionType: GATE }],
      terminationGracePeriodSeconds: 1,
      containers: [{ name: "app", image: "busybox", command: ["sleep", "3600"] }],
    });

    const missing = await waitForPod(
      kc,
      namespace,
      "gated",
      "containers ready",
      (p) => condition(p, "ContainersReady")?.status === "True",
    );
    expect(condition(missing, "Ready")).toMatchObject({
      status: "False",
      reason: "ReadinessGatesNotReady",
      message: `corresponding condition of pod readiness gate "${GATE}" does not exist.`,
    });

    await setGate("False");
    const unready = await waitForPod(
      kc,
      namespace,
      "gated",
      "gate reported False",
      (p) => !!condition(p, "Ready")?.message?.includes("but False"),
    );
    expect(condition(unready, "Ready")).toMatchObject({
      status: "False",
      reason: "ReadinessGatesNotReady",
      message: `the status of pod readiness gate "${GATE}" is not "True", but False`,
    });

    await setGate("True");
    const ready = await waitForPod(
      kc,
      namespace,
      "gated",
      "Ready",
      (p) => condition(p, "Ready")?.status === "True",
    );
    expect(condition(ready, "Ready")?.reason).toBeUndefined();
    expect(condition(ready, "Ready")?.message).toBeUndefined();
    // The agent wrote the status after the gate flipped, and the gate's condition survived.
    expect(condition(ready, GATE)?.status).toBe("True");

    await setGate("False");
    const again = await waitForPod(
      kc,
      namespace,
      "gated",
      "unready again",
      (p) => condition(p, "Ready")?.status === "False",
    );
    expect(condition(again, "Ready")?.reason).toBe("ReadinessGatesNotReady");
    expect(condition(again, "ContainersReady")?.status).toBe("True");
  });
});
