import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { FailedPeer, Peer } from "../../../src/handler/api.ts";
import type { PeersAnswer } from "../../../src/recovery/handler-client.ts";
import { runRecovery, type RecoveryDeps, type StartupReason } from "../../../src/recovery/recovery.ts";
import { bundleDigest, createBundle, type Bundle } from "../../../src/state/bundle.ts";
import { StateExistsError } from "../../../src/state/store.ts";

const logger = pino({ level: "silent" });
const timings = { initialBackoffMs: 1, maxBackoffMs: 2, pollMs: 1 };
const bundle = createBundle([{ path: "coordinator.json", content: Buffer.from("{}") }]);
const digest = bundleDigest(bundle);
const peer = (pod: string): Peer => ({
  pod,
  uid: pod,
  ip: "10.0.0.1",
  port: 7443,
  digest,
  certSha256: "a".repeat(64),
});

/** A fake pod: a state directory in memory and a scripted handler. */
function fakePod(
  answers: (() => PeersAnswer)[],
  fetch: (peer: Peer) => Promise<Bundle> = async () => bundle,
  initialState?: string,
) {
  let state = initialState;
  let asked = 0;
  const written: string[] = [];
  /** The failed peers recorded with each write. */
  const failures: FailedPeer[][] = [];
  const deps: RecoveryDeps = {
    stateDigest: async () => state,
    askHandler: async () => answers[Math.min(asked++, answers.length - 1)]!(),
    fetchFromPeer: fetch,
    writeState: async (b, p, failed) => {
      if (state !== undefined) throw new StateExistsError("/state");
      state = bundleDigest(b);
      written.push(p.pod);
      failures.push(structuredClone(failed));
    },
    logger,
  };
  const startups: StartupReason[] = [];
  const waits: string[] = [];
  const abort = new AbortController();
  const done = runRecovery(
    deps,
    { onStartup: (r) => startups.push(r), onWaiting: (w) => waits.push(w) },
    abort.signal,
    timings,
  ).catch((err: unknown) => {
    if (!abort.signal.aborted) throw err;
  });
  return {
    startups,
    waits,
    written,
    failures,
    asked: () => asked,
    setState: (d: string) => (state = d),
    state: () => state,
    done,
    stop: async () => {
      abort.abort();
      await done;
    },
  };
}

const unknown = (): PeersAnswer => ({ kind: "unknown", reason: "handler answered 503: cache not synced" });
const none = (): PeersAnswer => ({ kind: "peers", peers: [] });
const peers =
  (...names: string[]) =>
  (): PeersAnswer => ({ kind: "peers", peers: names.map(peer) });

const pods: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(pods.splice(0).map((p) => p.stop()));
});
function start(...args: Parameters<typeof fakePod>) {
  const pod = fakePod(...args);
  pods.push(pod);
  return pod;
}

describe("runRecovery", () => {
  it("passes at once when the directory already holds state, without asking the handler", async () => {
    const pod = start([unknown], undefined, digest);
    await pod.done;
    expect(pod.startups).toEqual([{ kind: "existing", digest }]);
    expect(pod.asked()).toBe(0);
  });

  it("keeps waiting while the handler's answer is unknown, and never calls itself the first instance", async () => {
    const pod = start([unknown]);
    await vi.waitFor(() => expect(pod.asked()).toBeGreaterThan(20));
    expect(pod.startups).toEqual([]);
    expect(pod.waits.at(-1)).toMatch(/waiting for the handler: handler answered 503/);
  });

  it("is the first instance only when a synced handler says no peer exists", async () => {
    const pod = start([unknown, unknown, none]);
    await vi.waitFor(() => expect(pod.startups).toEqual([{ kind: "first-instance" }]));
    expect(pod.state()).toBeUndefined();
  });

  it("tries the next peer when one fails, and records where the state came from", async () => {
    const tried: string[] = [];
    const pod = start([peers("coordinator-0", "coordinator-2")], async (p) => {
      tried.push(p.pod);
      if (p.pod === "coordinator-0") throw new Error("DigestMismatch");
      return bundle;
    });
    await vi.waitFor(() => expect(pod.startups).toHaveLength(1));
    expect(tried).toEqual(["coordinator-0", "coordinator-2"]);
    expect(pod.startups[0]).toEqual({ kind: "recovered", digest, source: "coordinator-2" });
    expect(pod.written).toEqual(["coordinator-2"]);
    expect(pod.failures).toEqual([[{ pod: "coordinator-0", reason: "DigestMismatch" }]]);
  });

  it("records the peers that failed before the one that delivered, bounded and without control characters", async () => {
    const names = Array.from({ length: 10 }, (_, i) => `coordinator-${i}`);
    const pod = start([peers(...names, "coordinator-10")], async (p) => {
      if (p.pod === "coordinator-0") throw new Error("no answer within 15000 ms");
      if (p.pod === "coordinator-1") throw new Error(`peer answered 500: ${"x".repeat(300)}`);
      if (p.pod === "coordinator-2") throw new Error("ECONNRESET: aborted\n\u001b[2Jforged log line");
      if (p.pod === "coordinator-3") throw Object.assign(new Error(""), { name: "TransferError" });
      if (p.pod !== "coordinator-10") throw new Error("peer answered 409: this pod holds no state (yet)");
      return bundle;
    });
    await vi.waitFor(() => expect(pod.written).toEqual(["coordinator-10"]));
    const failed = pod.failures[0]!;
    expect(failed.map((f) => f.pod)).toEqual(names.slice(0, 8));
    expect(failed[0]).toEqual({ pod: "coordinator-0", reason: "no answer within 15000 ms" });
    expect(failed[1]!.reason).toBe(`peer answered 500: ${"x".repeat(180)}…`);
    expect(failed[1]!.reason).toHaveLength(200);
    expect(failed[2]!.reason).toBe("ECONNRESET: aborted [2Jforged log line");
    expect(failed[3]!.reason).toBe("failed without a message");
  });

  it("records no failed peer when the first one delivers", async () => {
    const pod = start([peers("coordinator-0", "coordinator-1")]);
    await vi.waitFor(() => expect(pod.written).toEqual(["coordinator-0"]));
    expect(pod.failures).toEqual([[]]);
  });

  it("asks again when every peer failed, rather than starting without state", async () => {
    let attempts = 0;
    const pod = start([peers("coordinator-0")], async () => {
      if (++attempts < 3) throw new Error("peer answered 409: this pod holds no state (yet)");
      return bundle;
    });
    await vi.waitFor(() => expect(pod.startups).toHaveLength(1));
    expect(attempts).toBe(3);
    expect(pod.startups[0]?.kind).toBe("recovered");
    // Failures are those of the round that delivered: the earlier rounds show as startup waits.
    expect(pod.failures).toEqual([[]]);
  });

  it("keeps state that appeared while it was recovering", async () => {
    const other = `sha256:${"c".repeat(64)}`;
    // The user's `set` lands while the peer's bundle is on its way.
    const pod: ReturnType<typeof fakePod> = start([peers("coordinator-0")], async () => {
      pod.setState(other);
      return bundle;
    });
    await vi.waitFor(() => expect(pod.startups).toHaveLength(1));
    expect(pod.startups[0]).toEqual({ kind: "existing", digest: other });
    expect(pod.written).toEqual([]);
  });

  it("after starting alone, recovers from a peer that appears later", async () => {
    let phase = 0;
    const pod = start([none, none, () => (phase++ < 5 ? unknown() : peers("coordinator-0")())]);
    await vi.waitFor(() => expect(pod.written).toEqual(["coordinator-0"]));
    expect(pod.startups).toEqual([{ kind: "first-instance" }]);
    expect(pod.state()).toBe(digest);
    await pod.done;
  });

  it("after starting alone, stops looking once the user initialized the app", async () => {
    const pod = start([none]);
    await vi.waitFor(() => expect(pod.startups).toHaveLength(1));
    pod.setState(digest);
    await pod.done;
    const asked = pod.asked();
    expect(pod.written).toEqual([]);
    expect(pod.asked()).toBe(asked);
  });
});
