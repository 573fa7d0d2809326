import { describe, expect, it } from "vitest";
import { nextLookMs } from "../../../src/recovery/cadence.ts";

const cadence = { pollMs: 1000, idlePollMs: 8000 };

describe("nextLookMs (how far apart the sidecar's looks are)", () => {
  it.each([
    ["L1 something new after a quiet time: follow it closely", { settled: false, lastWaitMs: 8000 }, 1000],
    ["L1 something new after a change", { settled: false, lastWaitMs: 1000 }, 1000],
    ["L2 settled after one second: two", { settled: true, lastWaitMs: 1000 }, 2000],
    ["L2 settled after two: four", { settled: true, lastWaitMs: 2000 }, 4000],
    ["L2 settled after four: eight", { settled: true, lastWaitMs: 4000 }, 8000],
    ["L2 settled at the cap: stays there", { settled: true, lastWaitMs: 8000 }, 8000],
    ["L2 settled after a shorter wait than pollMs (a wake-up)", { settled: true, lastWaitMs: 0 }, 2000],
    ["L2 settled after a retry's long back-off: capped", { settled: true, lastWaitMs: 10_000 }, 8000],
  ])("%s -> %i ms", (_name, look, wait) => {
    expect(nextLookMs(look, cadence)).toBe(wait);
  });
});
