import { describe, expect, it } from "vitest";
import type { PodStatus } from "../../cluster/agent/kube/wire.ts";
import { statusPatch, statusUnchanged } from "../../cluster/agent/pod/status-writer.ts";

const status: PodStatus = {
  phase: "Running",
  podIP: "10.244.0.5",
  podIPs: [{ ip: "10.244.0.5" }],
  conditions: [
    { type: "Ready", status: "True", lastTransitionTime: "2026-01-01T00:00:00Z", observedGeneration: 1 },
    { type: "example.com/gate", status: "True" },
  ],
};

describe("status patch", () => {
  const patch = statusPatch("uid-1", status) as { metadata: unknown; status: Record<string, unknown> };

  it("carries the pod's UID as a precondition", () => {
    expect(patch.metadata).toEqual({ uid: "uid-1" });
  });

  it("lists only the kubelet's conditions, clearing fields the new condition lacks", () => {
    expect(patch.status["conditions"]).toEqual([
      {
        type: "Ready",
        status: "True",
        lastTransitionTime: "2026-01-01T00:00:00Z",
        observedGeneration: 1,
        reason: null,
        message: null,
        lastProbeTime: null,
      },
    ]);
  });

  it("replaces the pod's addresses instead of merging a new one in", () => {
    expect(patch.status["podIPs"]).toEqual([{ ip: "10.244.0.5" }, { $patch: "replace" }]);
    expect(patch.status["reason"]).toBeNull();
  });

  it("sees no change when only others' conditions or null fields differ", () => {
    const fromApi: PodStatus = {
      ...status,
      conditions: [
        { type: "example.com/gate", status: "False" },
        {
          type: "Ready",
          status: "True",
          lastTransitionTime: "2026-01-01T00:00:00Z",
          observedGeneration: 1,
          lastProbeTime: null as unknown as undefined,
        },
      ],
    };
    expect(statusUnchanged(fromApi, status)).toBe(true);
    expect(statusUnchanged({ ...fromApi, phase: "Pending" }, status)).toBe(false);
  });
});
