import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { FailedPeer, RecoveredRequest } from "../../../src/handler/api.ts";
import {
  confirmDue,
  lookSettled,
  runConfirmer,
  type ConfirmerTimings,
  type ConfirmMemory,
} from "../../../src/recovery/confirmer.ts";
import { createWaker, type Waker } from "../../../src/recovery/waker.ts";
import type { ConfirmAnswer } from "../../../src/recovery/handler-client.ts";

const A = `sha256:${"a".repeat(64)}`;
const B = `sha256:${"b".repeat(64)}`;

describe("confirmDue", () => {
  const confirmed: ConfirmMemory = { confirmed: { digest: A, at: 1000 }, wasReady: true, failing: false };
  it.each([
    ["app not ready", { wasReady: false, failing: false }, { ready: false, digest: A, now: 0 }, false],
    ["no state", { wasReady: false, failing: false }, { ready: true, digest: undefined, now: 0 }, false],
    [
      "first time ready with state",
      { wasReady: false, failing: false },
      { ready: true, digest: A, now: 0 },
      true,
    ],
    ["confirmed a moment ago", confirmed, { ready: true, digest: A, now: 5000 }, false],
    ["the re-confirm interval passed", confirmed, { ready: true, digest: A, now: 11_000 }, true],
    ["the digest changed", confirmed, { ready: true, digest: B, now: 1001 }, true],
    [
      "the app turned ready again",
      { ...confirmed, wasReady: false },
      { ready: true, digest: A, now: 1001 },
      true,
    ],
    ["the last attempt failed", { ...confirmed, failing: true }, { ready: true, digest: A, now: 1001 }, true],
  ])("%s -> %s", (_name, memory, look, due) => {
    expect(confirmDue(memory, look, 10_000)).toBe(due);
  });
});

describe("lookSettled", () => {
  const confirmed: ConfirmMemory = { confirmed: { digest: A, at: 1000 }, wasReady: true, failing: false };
  it.each([
    ["ready with the confirmed state, as before", confirmed, { ready: true, digest: A }, true],
    ["the app turned unready", confirmed, { ready: false, digest: A }, false],
    ["the app turned ready", { ...confirmed, wasReady: false }, { ready: true, digest: A }, false],
    ["the digest changed", confirmed, { ready: true, digest: B }, false],
    ["the state is gone", confirmed, { ready: true, digest: undefined }, false],
    ["never confirmed", { wasReady: true, failing: false }, { ready: true, digest: A }, false],
    ["the last confirmation failed", { ...confirmed, failing: true }, { ready: true, digest: A }, false],
  ])("%s -> %s", (_name, memory, look, settled) => {
    expect(lookSettled(memory, look)).toBe(settled);
  });
});

const running: AbortController[] = [];
afterEach(() => running.splice(0).forEach((a) => a.abort()));

function fakeSidecar(opts: {
  answers: ConfirmAnswer[];
  waits?: { ms: number; digest?: string; ready: boolean }[];
  waker?: Waker;
  timings?: ConfirmerTimings;
}) {
  const world = {
    digest: undefined as string | undefined,
    ready: false,
    now: 0,
    looks: 0,
    /** What the updater says may be confirmed now. */
    confirmable: (_digest: string) => true,
    /** The peers that failed before coordinator-0 delivered A, as the source record has them. */
    failedPeers: [] as FailedPeer[],
  };
  const sent: RecoveredRequest[] = [];
  const abort = new AbortController();
  running.push(abort);
  const done = runConfirmer(
    {
      stateDigest: async () => {
        world.looks++;
        return world.digest;
      },
      appReady: async () => world.ready,
      sourceOf: async (d) =>
        d === A
          ? { source: "coordinator-0", failedPeers: world.failedPeers }
          : { source: null, failedPeers: [] },
      confirm: async (request) => {
        sent.push(request);
        return opts.answers[Math.min(sent.length - 1, opts.answers.length - 1)]!;
      },
      confirmable: (digest) => world.confirmable(digest),
      ...(opts.waker && { waker: opts.waker }),
      certSha256: "f".repeat(64),
      logger: pino({ level: "silent" }),
      now: () => world.now,
      ...(opts.waits && {
        wait: async (ms: number) => {
          opts.waits!.push({ ms, digest: world.digest, ready: world.ready });
          await new Promise((resolve) => setImmediate(resolve));
        },
      }),
    },
    abort.signal,
    opts.timings ?? { pollMs: 1, idlePollMs: 4, reconfirmMs: 10_000, initialBackoffMs: 1, maxBackoffMs: 2 },
  ).catch(() => undefined);
  /** Waits until the confirmer has looked `n` more times. */
  const looks = async (n: number) => {
    const target = world.looks + n;
    await vi.waitFor(() => expect(world.looks).toBeGreaterThanOrEqual(target));
  };
  return { world, sent, done, looks };
}

describe("runConfirmer", () => {
  it("confirms a state that the updater swapped in when woken, not at its next idle look", async () => {
    const waker = createWaker();
    // Every wait a minute long: only a wake makes the confirmer look again during the test.
    const minute = {
      pollMs: 60_000,
      idlePollMs: 60_000,
      reconfirmMs: 600_000,
      initialBackoffMs: 1,
      maxBackoffMs: 2,
    };
    const s = fakeSidecar({ answers: [{ ok: true, changed: true }], waker, timings: minute });
    await vi.waitFor(() => expect(s.world.looks).toBe(1));
    s.world.digest = A;
    s.world.ready = true;
    waker.wake();
    await vi.waitFor(() => expect(s.sent).toHaveLength(1));
    s.world.digest = B;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(s.sent).toHaveLength(1);
    waker.wake();
    await vi.waitFor(() => expect(s.sent.map((r) => r.digest)).toEqual([A, B]));
  });

  it("holds back a state the updater has not seen committed (a write of the app being proposed), then confirms it", async () => {
    const s = fakeSidecar({ answers: [{ ok: true, changed: true }] });
    s.world.digest = A;
    s.world.ready = true;
    s.world.confirmable = () => false;
    await s.looks(10);
    expect(s.sent).toEqual([]);
    s.world.confirmable = (d) => d === A;
    await vi.waitFor(() => expect(s.sent).toHaveLength(1));
    expect(s.sent[0]?.digest).toBe(A);
  });

  it("says nothing until the app is ready and holds state", async () => {
    const s = fakeSidecar({ answers: [{ ok: true, changed: true }] });
    s.world.digest = A;
    await s.looks(10);
    expect(s.sent).toEqual([]);
    s.world.ready = true;
    await vi.waitFor(() => expect(s.sent).toHaveLength(1));
    expect(s.sent[0]).toEqual({ digest: A, source: "coordinator-0", certSha256: "f".repeat(64) });
  });

  it("retries a failed confirmation until the handler records it, then stays quiet", async () => {
    const fail: ConfirmAnswer = { ok: false, reason: "handler answered 503" };
    const s = fakeSidecar({
      answers: [fail, fail, fail, { ok: true, changed: true }, { ok: true, changed: false }],
    });
    s.world.digest = B;
    s.world.ready = true;
    await vi.waitFor(() => expect(s.sent).toHaveLength(4));
    await s.looks(10);
    expect(s.sent).toHaveLength(4);
    expect(s.sent[3]).toEqual({ digest: B, source: null, certSha256: "f".repeat(64) });
  });

  it("looks every pollMs after a change, twice as far apart after each settled look up to idlePollMs", async () => {
    // Each wait with what the look before it saw (the test changes the world only between
    // looks: a look here is microtasks, a wait a macrotask).
    const waits: { ms: number; digest?: string; ready: boolean }[] = [];
    const s = fakeSidecar({ answers: [{ ok: true, changed: false }], waits });
    const seen = () => waits.map((w) => w.ms);
    s.world.digest = A;
    s.world.ready = true;
    await vi.waitFor(() => expect(waits.length).toBeGreaterThanOrEqual(6));
    s.world.digest = B;
    await vi.waitFor(() => expect(waits.filter((w) => w.digest === B).length).toBeGreaterThanOrEqual(4));
    s.world.ready = false;
    await vi.waitFor(() => expect(waits.filter((w) => !w.ready).length).toBeGreaterThanOrEqual(3));
    // idlePollMs is 4 here. The first look (before the test made the app ready) and the one
    // that confirms: 1 each; then 2, 4, 4, ... while settled; back to 1 at the look that sees
    // (and confirms) B; and 1 at every look while the app is unready.
    expect(seen().slice(0, 6)).toEqual([1, 1, 2, 4, 4, 4]);
    const b = waits.findIndex((w) => w.digest === B);
    expect(seen().slice(b, b + 4)).toEqual([1, 2, 4, 4]);
    const unready = waits.findIndex((w) => !w.ready);
    expect(seen().slice(unready, unready + 3)).toEqual([1, 1, 1]);
    expect(s.sent.map((r) => r.digest)).toEqual([A, B]);
  });

  it("reports the peers that failed until the handler accepted the state, and not in later confirmations", async () => {
    const fail: ConfirmAnswer = { ok: false, reason: "handler answered 503" };
    const s = fakeSidecar({ answers: [fail, { ok: true, changed: true }, { ok: true, changed: false }] });
    const failedPeers = [{ pod: "coordinator-1", reason: "no answer within 15000 ms" }];
    s.world.failedPeers = failedPeers;
    s.world.digest = A;
    s.world.ready = true;
    await vi.waitFor(() => expect(s.sent).toHaveLength(2));
    const request = { digest: A, source: "coordinator-0", certSha256: "f".repeat(64) };
    expect(s.sent).toEqual([
      { ...request, failedPeers },
      { ...request, failedPeers },
    ]);
    // The app restarted (the handler closed the gate): the confirmation that re-opens it.
    s.world.ready = false;
    await s.looks(2);
    s.world.ready = true;
    await vi.waitFor(() => expect(s.sent).toHaveLength(3));
    s.world.now = 10_000;
    await vi.waitFor(() => expect(s.sent).toHaveLength(4));
    expect(s.sent.slice(2)).toEqual([request, request]);
  });

  it("confirms without the failed peers once a handler refused them (400: older than the field)", async () => {
    const refused: ConfirmAnswer = {
      ok: false,
      reason: "handler answered 400: unknown field(s): failedPeers",
      status: 400,
    };
    const s = fakeSidecar({ answers: [refused, { ok: true, changed: true }] });
    s.world.failedPeers = [{ pod: "coordinator-1", reason: "no answer within 15000 ms" }];
    s.world.digest = A;
    s.world.ready = true;
    await vi.waitFor(() => expect(s.sent).toHaveLength(2));
    expect(s.sent.map((r) => r.failedPeers)).toEqual([s.world.failedPeers, undefined]);
  });

  it("re-confirms periodically, when the digest changes, and when the app turns ready again", async () => {
    const s = fakeSidecar({ answers: [{ ok: true, changed: false }] });
    s.world.digest = A;
    s.world.ready = true;
    await vi.waitFor(() => expect(s.sent).toHaveLength(1));
    s.world.now = 10_000;
    await vi.waitFor(() => expect(s.sent).toHaveLength(2));
    s.world.digest = B;
    await vi.waitFor(() => expect(s.sent).toHaveLength(3));
    expect(s.sent[2]?.digest).toBe(B);
    s.world.ready = false;
    await s.looks(2);
    expect(s.sent).toHaveLength(3);
    s.world.ready = true;
    await vi.waitFor(() => expect(s.sent).toHaveLength(4));
  });
});
