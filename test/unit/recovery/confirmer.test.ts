import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { RecoveredRequest } from "../../../src/handler/api.ts";
import { confirmDue, runConfirmer, type ConfirmMemory } from "../../../src/recovery/confirmer.ts";
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

const running: AbortController[] = [];
afterEach(() => running.splice(0).forEach((a) => a.abort()));

function fakeSidecar(opts: { answers: ConfirmAnswer[] }) {
  const world = {
    digest: undefined as string | undefined,
    ready: false,
    now: 0,
    looks: 0,
    /** What the updater says may be confirmed now. */
    confirmable: (_digest: string) => true,
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
      sourceOf: async (d) => (d === A ? "coordinator-0" : null),
      confirm: async (request) => {
        sent.push(request);
        return opts.answers[Math.min(sent.length - 1, opts.answers.length - 1)]!;
      },
      confirmable: (digest) => world.confirmable(digest),
      certSha256: "f".repeat(64),
      logger: pino({ level: "silent" }),
      now: () => world.now,
    },
    abort.signal,
    { pollMs: 1, reconfirmMs: 10_000, initialBackoffMs: 1, maxBackoffMs: 2 },
  ).catch(() => undefined);
  /** Waits until the confirmer has looked `n` more times. */
  const looks = async (n: number) => {
    const target = world.looks + n;
    await vi.waitFor(() => expect(world.looks).toBeGreaterThanOrEqual(target));
  };
  return { world, sent, done, looks };
}

describe("runConfirmer", () => {
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
