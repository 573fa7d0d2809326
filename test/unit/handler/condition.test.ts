import { describe, expect, it } from "vitest";
import { saysTheSame } from "../../../src/handler/condition.ts";

describe("saysTheSame", () => {
  const desired = { status: "True" as const, reason: "Initialized", message: "m" };
  it("compares status, reason and message, not times", () => {
    expect(
      saysTheSame(
        { type: "t", status: "True", reason: "Initialized", message: "m", lastTransitionTime: new Date() },
        desired,
      ),
    ).toBe(true);
    expect(saysTheSame({ type: "t", status: "False", reason: "Initialized", message: "m" }, desired)).toBe(
      false,
    );
    expect(
      saysTheSame({ type: "t", status: "True", reason: "RecoveredFromPeer", message: "m" }, desired),
    ).toBe(false);
    expect(saysTheSame({ type: "t", status: "True", reason: "Initialized", message: "n" }, desired)).toBe(
      false,
    );
    expect(saysTheSame(undefined, desired)).toBe(false);
  });
});
