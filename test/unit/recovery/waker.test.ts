// The wait between two looks of a sidecar loop (src/recovery/waker.ts): a wake ends the nap
// that runs, and a wake while no nap runs makes the next one return at once, only once.
import { describe, expect, it } from "vitest";
import { createWaker } from "../../../src/recovery/waker.ts";

const never = new AbortController().signal;
const timed = async (nap: Promise<void>) => {
  const started = performance.now();
  await nap;
  return performance.now() - started;
};

describe("createWaker", () => {
  it("sleeps the whole time when nothing wakes it", async () => {
    expect(await timed(createWaker().nap(60, never))).toBeGreaterThanOrEqual(55);
  });

  it("a wake ends the running nap", async () => {
    const waker = createWaker();
    const nap = timed(waker.nap(60_000, never));
    waker.wake();
    expect(await nap).toBeLessThan(1000);
  });

  it("a wake while no nap runs ends the next nap at once, and only that one", async () => {
    const waker = createWaker();
    waker.wake();
    waker.wake();
    expect(await timed(waker.nap(60_000, never))).toBeLessThan(1000);
    expect(await timed(waker.nap(60, never))).toBeGreaterThanOrEqual(55);
  });

  it("an abort ends the nap, and a nap after the abort returns at once", async () => {
    const waker = createWaker();
    const abort = new AbortController();
    const nap = timed(waker.nap(60_000, abort.signal));
    abort.abort();
    expect(await nap).toBeLessThan(1000);
    expect(await timed(waker.nap(60_000, abort.signal))).toBeLessThan(1000);
  });
});
