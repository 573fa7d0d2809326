import { afterEach, describe, expect, it, vi } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import { pino } from "pino";
import {
  startPodCache,
  type PodListWatch,
  type RunningPodCache,
  type WatchEvent,
} from "../../../src/kube/pod-cache.ts";

function pod(name: string, resourceVersion: string, namespace = "default"): V1Pod {
  return { metadata: { name, namespace, resourceVersion, uid: `uid-${name}` } };
}

interface OpenWatch {
  resourceVersion: string;
  emit(event: WatchEvent): void;
  end(err?: unknown): void;
  stopped: boolean;
}

/** An apiserver stand-in: a list that can fail, and watches the test drives by hand. */
function fakeApiserver() {
  const state = {
    items: [pod("coordinator-0", "10")],
    resourceVersion: "10",
    listFailure: undefined as Error | undefined,
    lists: 0,
    watches: [] as OpenWatch[],
  };
  const source: PodListWatch = {
    async list() {
      state.lists++;
      if (state.listFailure) throw state.listFailure;
      return { items: structuredClone(state.items), resourceVersion: state.resourceVersion };
    },
    async watch(resourceVersion, onEvent, onDone) {
      const open: OpenWatch = { resourceVersion, emit: onEvent, end: onDone, stopped: false };
      state.watches.push(open);
      return () => {
        open.stopped = true;
      };
    },
  };
  const lastWatch = () => state.watches.at(-1)!;
  return { state, source, lastWatch };
}

function recorder() {
  const log: string[] = [];
  return {
    log,
    listener: {
      changed: (p: V1Pod, previous: V1Pod | undefined) =>
        log.push(`${previous ? "changed" : "added"} ${p.metadata?.name}@${p.metadata?.resourceVersion}`),
      deleted: (p: V1Pod) => log.push(`deleted ${p.metadata?.name}`),
      relisted: () => log.push("relisted"),
    },
  };
}

let cache: RunningPodCache | undefined;
afterEach(() => cache?.stop());

const logger = pino({ level: "silent" });

describe("startPodCache", () => {
  it("lists, applies watch events in order, and resumes a cleanly ended watch from the last resourceVersion", async () => {
    const api = fakeApiserver();
    const { log, listener } = recorder();
    cache = startPodCache({ source: api.source, listener, logger });
    expect(cache.synced()).toBe(false);
    await vi.waitFor(() => expect(api.state.watches).toHaveLength(1));
    expect(cache.synced()).toBe(true);
    expect(api.lastWatch().resourceVersion).toBe("10");

    api.lastWatch().emit({ type: "ADDED", object: pod("coordinator-1", "11") });
    api.lastWatch().emit({ type: "MODIFIED", object: pod("coordinator-0", "12") });
    api.lastWatch().emit({ type: "BOOKMARK", object: { metadata: { resourceVersion: "14" } } });
    expect(cache.inNamespace("default").map((p) => p.metadata?.resourceVersion)).toEqual(["12", "11"]);
    api.lastWatch().emit({ type: "DELETED", object: pod("coordinator-1", "15") });
    expect(cache.get("default", "coordinator-1")).toBeUndefined();
    expect(cache.size()).toBe(1);

    api.lastWatch().end();
    await vi.waitFor(() => expect(api.state.watches).toHaveLength(2));
    expect(api.lastWatch().resourceVersion).toBe("15");
    expect(api.state.lists).toBe(1);
    expect(log).toEqual([
      "relisted",
      "added coordinator-1@11",
      "changed coordinator-0@12",
      "deleted coordinator-1",
    ]);
  });

  it("relists when the watch expires (410 Gone as an ERROR event), and reports pods deleted meanwhile", async () => {
    const api = fakeApiserver();
    const { log, listener } = recorder();
    cache = startPodCache({ source: api.source, listener, logger });
    await vi.waitFor(() => expect(api.state.watches).toHaveLength(1));

    api.state.items = [pod("coordinator-2", "30")];
    api.state.resourceVersion = "30";
    api.lastWatch().emit({ type: "ERROR", object: { metadata: {}, status: "Failure", code: 410 } as V1Pod });
    expect(api.state.watches[0]!.stopped).toBe(true);
    await vi.waitFor(() => expect(api.state.watches).toHaveLength(2));
    expect(api.state.lists).toBe(2);
    expect(api.lastWatch().resourceVersion).toBe("30");
    expect(cache.all().map((p) => p.metadata?.name)).toEqual(["coordinator-2"]);
    expect(log).toEqual(["relisted", "deleted coordinator-0", "relisted"]);
  });

  it("relists after a failed watch, and ignores events of a watch that has ended", async () => {
    const api = fakeApiserver();
    cache = startPodCache({ source: api.source, listener: recorder().listener, logger, minBackoffMs: 1 });
    await vi.waitFor(() => expect(api.state.watches).toHaveLength(1));
    const broken = api.lastWatch();
    broken.end(new Error("connection reset"));
    await vi.waitFor(() => expect(api.state.watches).toHaveLength(2));
    expect(api.state.lists).toBe(2);
    broken.emit({ type: "ADDED", object: pod("ghost", "99") });
    expect(cache.get("default", "ghost")).toBeUndefined();
  });

  it("stays unsynced, and says why, while listing fails; then syncs", async () => {
    const api = fakeApiserver();
    api.state.listFailure = new Error("connect ECONNREFUSED 10.96.0.1:443");
    cache = startPodCache({
      source: api.source,
      listener: recorder().listener,
      logger,
      minBackoffMs: 1,
      maxBackoffMs: 2,
    });
    await vi.waitFor(() => expect(api.state.lists).toBeGreaterThan(1));
    expect(cache.synced()).toBe(false);
    expect(cache.problem()).toContain("ECONNREFUSED");
    api.state.listFailure = undefined;
    await vi.waitFor(() => expect(cache!.synced()).toBe(true));
    expect(cache.problem()).toBeUndefined();
  });

  it("turns unsynced when nothing confirmed the watch healthy for staleAfterMs", async () => {
    const api = fakeApiserver();
    let now = 1_000_000;
    cache = startPodCache({
      source: api.source,
      listener: recorder().listener,
      logger,
      staleAfterMs: 60_000,
      now: () => now,
    });
    await vi.waitFor(() => expect(api.state.watches).toHaveLength(1));
    now += 59_000;
    expect(cache.synced()).toBe(true);
    api.lastWatch().emit({ type: "BOOKMARK", object: { metadata: { resourceVersion: "11" } } });
    now += 59_000;
    expect(cache.synced()).toBe(true);
    now += 1_000;
    expect(cache.synced()).toBe(false);
    expect(cache.problem()).toContain("not been healthy for 60 s");
  });

  it("relists instead of resuming once resyncMs has passed", async () => {
    const api = fakeApiserver();
    let now = 0;
    cache = startPodCache({
      source: api.source,
      listener: recorder().listener,
      logger,
      resyncMs: 300_000,
      now: () => now,
    });
    await vi.waitFor(() => expect(api.state.watches).toHaveLength(1));
    now = 300_000;
    api.lastWatch().end();
    await vi.waitFor(() => expect(api.state.watches).toHaveLength(2));
    expect(api.state.lists).toBe(2);
  });
});
