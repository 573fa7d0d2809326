// Timing rules: crash-loop back-off, probe thresholds, token renewal.
import { describe, expect, it } from "vitest";
import { Backoff, goDuration } from "../../cluster/agent/pod/backoff.ts";
import { Thresholds } from "../../cluster/agent/pod/prober.ts";
import { refreshTime } from "../../cluster/agent/pod/tokens.ts";

describe("crash-loop back-off", () => {
  it("restarts at once after the first exit, then waits 10s, 20s, ... up to 300s", () => {
    let now = 0;
    const b = new Backoff({ initialMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000, now: () => now });
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      const exitedAt = now;
      if (b.inBackoffSince("c", exitedAt)) {
        delays.push(b.get("c"));
        now += b.get("c");
      } else {
        delays.push(0);
      }
      b.next("c", exitedAt);
      now += 1000; // the container runs a second and exits again
    }
    expect(delays).toEqual([0, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);
  });

  it("starts over after the container ran for more than 10 minutes", () => {
    let now = 0;
    const b = new Backoff({ initialMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000, now: () => now });
    b.next("c", 0);
    b.next("c", 0);
    expect(b.get("c")).toBe(20_000);
    now = 700_000;
    expect(b.inBackoffSince("c", now)).toBe(false);
    b.next("c", now);
    expect(b.get("c")).toBe(10_000);
  });

  it.each([
    [10_000, "10s"],
    [80_000, "1m20s"],
    [300_000, "5m0s"],
  ])("prints %i ms as Go does: %s", (ms, s) => expect(goDuration(ms)).toBe(s));
});

describe("probe thresholds", () => {
  it("changes the result only after failureThreshold failures or successThreshold successes in a row", () => {
    const t = new Thresholds({ successThreshold: 2, failureThreshold: 3 });
    const seen = ["Failure", "Failure", "Success", "Failure", "Failure", "Failure", "Success", "Success"].map(
      (r) => t.observe(r as "Success" | "Failure"),
    );
    expect(seen).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      "Failure",
      undefined,
      "Success",
    ]);
  });
});

describe("token renewal", () => {
  it("renews at 80% of the requested lifetime", () => {
    expect(refreshTime(0, 3600_000, 3600)).toBe(2880_000);
  });
  it("renews after 24 hours a token whose expiry the apiserver extended to a year", () => {
    expect(refreshTime(0, 365 * 24 * 3600_000, 3607)).toBe(24 * 3600_000);
  });
});
