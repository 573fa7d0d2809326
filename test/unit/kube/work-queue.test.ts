import { describe, expect, it } from "vitest";
import { createWorkQueue } from "../../../src/kube/work-queue.ts";

/** A process function whose calls stay open until released. */
function gate() {
  const calls: { key: string; release: () => void }[] = [];
  const process = (key: string) => new Promise<void>((release) => calls.push({ key, release }));
  return { calls, process };
}

describe("createWorkQueue", () => {
  it("processes a key added many times before it runs once", async () => {
    const seen: string[] = [];
    let release!: () => void;
    const blocker = new Promise<void>((r) => (release = r));
    const queue = createWorkQueue(async (key) => {
      seen.push(key);
      if (key === "block") await blocker;
    }, 1);
    queue.add("block");
    queue.add("a");
    queue.add("a");
    queue.add("b");
    queue.add("a");
    release();
    await queue.idle();
    expect(seen).toEqual(["block", "a", "b"]);
  });

  it("never processes one key twice at once, and re-processes a key added meanwhile", async () => {
    const { calls, process } = gate();
    const queue = createWorkQueue(process, 4);
    queue.add("a");
    queue.add("b");
    expect(calls.map((c) => c.key)).toEqual(["a", "b"]);
    queue.add("a");
    expect(calls.map((c) => c.key)).toEqual(["a", "b"]);
    calls[0]!.release();
    await Promise.resolve();
    await new Promise((r) => setImmediate(r));
    expect(calls.map((c) => c.key)).toEqual(["a", "b", "a"]);
    calls[1]!.release();
    calls[2]!.release();
    await queue.idle();
  });

  it("survives a process function that rejects", async () => {
    const seen: string[] = [];
    const queue = createWorkQueue(async (key) => {
      seen.push(key);
      if (key === "bad") throw new Error("bug");
    });
    queue.add("bad");
    queue.add("good");
    await queue.idle();
    queue.add("bad");
    await queue.idle();
    expect(seen).toEqual(["bad", "good", "bad"]);
  });

  it("takes nothing after stop", async () => {
    const seen: string[] = [];
    const queue = createWorkQueue(async (key) => void seen.push(key));
    queue.stop();
    queue.add("a");
    await queue.idle();
    expect(seen).toEqual([]);
  });
});
