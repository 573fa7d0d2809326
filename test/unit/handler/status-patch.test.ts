import { describe, expect, it } from "vitest";
import { conditionPatch } from "../../../src/handler/status-patch.ts";
import { coordinatorPod, setCondition, uidOf, withoutCondition } from "./pods.ts";

const now = new Date("2026-11-23T22:30:05.123Z");

describe("conditionPatch", () => {
  it("is a strategic-merge patch of one condition, with uid and resourceVersion preconditions", () => {
    const patch = conditionPatch(
      withoutCondition(coordinatorPod(0)),
      { status: "True", reason: "Initialized", message: "m" },
      now,
    );
    expect(patch).toEqual({
      metadata: { uid: uidOf(0), resourceVersion: "1843" },
      status: {
        conditions: [
          {
            type: "coordinator-ha.io/recovered",
            status: "True",
            reason: "Initialized",
            message: "m",
            lastTransitionTime: "2026-11-23T22:30:05Z",
          },
        ],
      },
    });
  });

  it("keeps the transition time when only the message changes", () => {
    const pod = setCondition(coordinatorPod(1), "False", "AwaitingState", "old");
    const patch = conditionPatch(pod, { status: "False", reason: "AwaitingState", message: "new" }, now) as {
      status: { conditions: { lastTransitionTime: string }[] };
    };
    expect(patch.status.conditions[0]?.lastTransitionTime).toBe("2026-11-23T21:41:01Z");
  });

  it("moves the transition time when the status flips", () => {
    const patch = conditionPatch(
      coordinatorPod(0),
      { status: "False", reason: "AppRestarted", message: "r" },
      now,
    ) as {
      status: { conditions: { lastTransitionTime: string }[] };
    };
    expect(patch.status.conditions[0]?.lastTransitionTime).toBe("2026-11-23T22:30:05Z");
  });
});
