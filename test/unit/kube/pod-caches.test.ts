import { afterEach, describe, expect, it, vi } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import { pino } from "pino";
import { startPodCache, type PodListWatch, type RunningPodCache } from "../../../src/kube/pod-cache.ts";
import { combinePodCaches } from "../../../src/kube/pod-caches.ts";

function pod(namespace: string, name: string): V1Pod {
  return { metadata: { name, namespace, resourceVersion: "10", uid: `uid-${namespace}-${name}` } };
}

/** One namespace's apiserver side: its pods, and a list that fails while `failure` is set. */
function namespaceSource(items: V1Pod[]) {
  const state = { failure: undefined as Error | undefined, watches: 0, stopped: 0 };
  const source: PodListWatch = {
    async list() {
      if (state.failure) throw state.failure;
      return { items: structuredClone(items), resourceVersion: "10" };
    },
    async watch() {
      state.watches++;
      return () => state.stopped++;
    },
  };
  return { state, source };
}

const logger = pino({ level: "silent" });
const listener = { changed: () => undefined, deleted: () => undefined, relisted: () => undefined };
let cache: RunningPodCache | undefined;
afterEach(() => cache?.stop());

describe("combinePodCaches", () => {
  const start = () => {
    const a = namespaceSource([pod("team-a", "coordinator-0"), pod("team-a", "coordinator-1")]);
    const b = namespaceSource([pod("team-b", "coordinator-0")]);
    b.state.failure = new Error('pods is forbidden: cannot list resource "pods" in namespace "team-b"');
    const one = (source: PodListWatch) =>
      startPodCache({ source, listener, logger, minBackoffMs: 1, maxBackoffMs: 2 });
    cache = combinePodCaches(
      new Map([
        ["team-a", one(a.source)],
        ["team-b", one(b.source)],
      ]),
    );
    return { a, b, cache };
  };

  it("is synced only once every namespace is, and names the namespace that is not", async () => {
    const { a, b, cache } = start();
    await vi.waitFor(() => expect(a.state.watches).toBe(1));
    expect(cache.synced()).toBe(false);
    expect(cache.problem()).toMatch(/^namespace team-b: listing pods failed: .*forbidden/);

    b.state.failure = undefined;
    await vi.waitFor(() => expect(cache.synced()).toBe(true));
    expect(cache.problem()).toBeUndefined();
  });

  it("routes get and inNamespace by namespace, and combines all and size", async () => {
    const { b, cache } = start();
    b.state.failure = undefined;
    await vi.waitFor(() => expect(cache.synced()).toBe(true));
    expect(cache.get("team-a", "coordinator-1")?.metadata?.uid).toBe("uid-team-a-coordinator-1");
    expect(cache.get("team-b", "coordinator-0")?.metadata?.uid).toBe("uid-team-b-coordinator-0");
    expect(cache.get("team-b", "coordinator-1")).toBeUndefined();
    expect(cache.get("elsewhere", "coordinator-0")).toBeUndefined();
    expect(cache.inNamespace("team-a").map((p) => p.metadata?.name)).toEqual([
      "coordinator-0",
      "coordinator-1",
    ]);
    expect(cache.inNamespace("team-b").map((p) => p.metadata?.namespace)).toEqual(["team-b"]);
    expect(cache.inNamespace("elsewhere")).toEqual([]);
    expect(cache.all().map((p) => p.metadata?.uid)).toEqual([
      "uid-team-a-coordinator-0",
      "uid-team-a-coordinator-1",
      "uid-team-b-coordinator-0",
    ]);
    expect(cache.size()).toBe(3);
  });

  it("stops every namespace's watch", async () => {
    const { a, b, cache } = start();
    b.state.failure = undefined;
    await vi.waitFor(() => expect(b.state.watches).toBe(1));
    cache.stop();
    expect([a.state.stopped, b.state.stopped]).toEqual([1, 1]);
  });
});
