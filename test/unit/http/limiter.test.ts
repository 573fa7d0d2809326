import { describe, expect, it } from "vitest";
import { BusyError, limiter } from "../../../src/http/limiter.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("limiter", () => {
  it("runs at most max tasks at once, the others in the order they came", async () => {
    const limit = limiter(2, 5000);
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        limit.run(async () => {
          order.push(i);
          peak = Math.max(peak, ++running);
          await sleep(5);
          running--;
          return i;
        }),
      ),
    );
    expect(peak).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([limit.active, limit.waiting]).toEqual([0, 0]);
  });

  it("gives up on a waiting task after maxWaitMs with BusyError, and lets the next ones run", async () => {
    const limit = limiter(1, 20);
    const slow = limit.run(() => sleep(100));
    const waiting = limit.run(async () => "never");
    await expect(waiting).rejects.toBeInstanceOf(BusyError);
    expect(limit.waiting).toBe(0);
    await slow;
    expect(await limit.run(async () => "next")).toBe("next");
  });

  it("frees its place when a task throws", async () => {
    const limit = limiter(1, 1000);
    await expect(limit.run(() => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await limit.run(async () => 1)).toBe(1);
  });
});
