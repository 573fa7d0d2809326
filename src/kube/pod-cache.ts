// A list+watch cache of the selected pods. A watch that silently stops is the classic
// failure of hand-written informers (Pepr #745), so:
// - a watch that ends cleanly (the server's timeout) resumes from the last resourceVersion;
// - a watch that errors, expires (410 Gone) or cannot connect leads to a full relist, with
//   back-off while the apiserver is unreachable;
// - every resyncMs the cache relists anyway, which also re-delivers every pod to the
//   consumer (a missed event or a failed write gets another chance);
// - synced() turns false when nothing confirmed the watch healthy for staleAfterMs, so that
//   /readyz and GET /v1/peers stop trusting a cache that may be out of date.
import type { V1ObjectMeta, V1Pod } from "@kubernetes/client-node";

/** Any namespaced object the cache can hold: pods, and the handler's StateHeads. */
export interface CachedObject {
  metadata?: V1ObjectMeta;
}
import type { Logger } from "pino";

export interface WatchEvent<T extends CachedObject = V1Pod> {
  type: string;
  object: T;
}

/** The apiserver side, injected: see kubePodListWatch for the real one. */
export interface PodListWatch<T extends CachedObject = V1Pod> {
  list(): Promise<{ items: T[]; resourceVersion: string }>;
  /**
   * Starts a watch from `resourceVersion`; `onDone` is called once when it ends (err
   * undefined for a clean close). Resolves to a function that stops it.
   */
  watch(
    resourceVersion: string,
    onEvent: (event: WatchEvent<T>) => void,
    onDone: (err?: unknown) => void,
  ): Promise<() => void>;
}

export interface PodCacheListener<T extends CachedObject = V1Pod> {
  /** A pod was added or changed; `previous` is the version the cache held before. */
  changed(pod: T, previous: T | undefined): void;
  deleted(pod: T): void;
  /** A full list replaced the cache contents. */
  relisted(): void;
}

export interface PodCache<T extends CachedObject = V1Pod> {
  /** True once listed and the watch was confirmed healthy within staleAfterMs. */
  synced(): boolean;
  /** Why the cache is not synced, in words for /readyz; undefined when it is. */
  problem(): string | undefined;
  get(namespace: string, name: string): T | undefined;
  inNamespace(namespace: string): T[];
  all(): T[];
  size(): number;
}

export interface PodCacheOptions<T extends CachedObject = V1Pod> {
  source: PodListWatch<T>;
  listener: PodCacheListener<T>;
  logger: Logger;
  /** What the log lines call one object (default "pod"); the plural adds an "s". */
  noun?: string;
  staleAfterMs?: number;
  resyncMs?: number;
  /** Back-off after a failure: starts here and doubles up to maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  now?: () => number;
}

export interface RunningPodCache<T extends CachedObject = V1Pod> extends PodCache<T> {
  stop(): void;
}

export function startPodCache<T extends CachedObject = V1Pod>(opts: PodCacheOptions<T>): RunningPodCache<T> {
  const { source, listener, logger } = opts;
  const noun = opts.noun ?? "pod";
  const staleAfter = opts.staleAfterMs ?? 90_000;
  const resync = opts.resyncMs ?? 5 * 60_000;
  const minBackoff = opts.minBackoffMs ?? 500;
  const maxBackoff = opts.maxBackoffMs ?? 30_000;
  const now = opts.now ?? Date.now;

  const byNamespace = new Map<string, Map<string, T>>();
  let count = 0;
  let listed = false;
  let healthyAt = -Infinity;
  let lastProblem = `the first list of ${noun}s has not completed`;
  let stopped = false;
  let stopWatch: (() => void) | undefined;
  let wake: (() => void) | undefined;

  const key = (pod: T) => ({ ns: pod.metadata?.namespace ?? "", name: pod.metadata?.name ?? "" });
  const put = (pod: T): T | undefined => {
    const { ns, name } = key(pod);
    let pods = byNamespace.get(ns);
    if (!pods) byNamespace.set(ns, (pods = new Map()));
    const previous = pods.get(name);
    if (!previous) count++;
    pods.set(name, pod);
    return previous;
  };
  const remove = (pod: T): void => {
    const { ns, name } = key(pod);
    const pods = byNamespace.get(ns);
    if (pods?.delete(name)) count--;
    if (pods?.size === 0) byNamespace.delete(ns);
  };

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stopped) return resolve();
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  const relist = async (): Promise<string> => {
    const { items, resourceVersion } = await source.list();
    const seen = new Set<string>();
    for (const pod of items) {
      const { ns, name } = key(pod);
      seen.add(`${ns}/${name}`);
      put(pod);
    }
    for (const [ns, pods] of [...byNamespace]) {
      for (const [name, pod] of [...pods]) {
        if (!seen.has(`${ns}/${name}`)) {
          remove(pod);
          listener.deleted(pod);
        }
      }
    }
    listed = true;
    healthyAt = now();
    logger.info({ [`${noun}s`]: items.length, resourceVersion }, `listed ${noun}s`);
    listener.relisted();
    return resourceVersion;
  };

  type WatchEnd = "closed" | "expired" | "failed";
  const watchOnce = (resourceVersion: { value: string }): Promise<WatchEnd> =>
    new Promise<WatchEnd>((resolve) => {
      let ended = false;
      let stopThis: (() => void) | undefined;
      stopWatch = () => stopThis?.();
      const end = (how: WatchEnd, err?: unknown) => {
        if (ended) return;
        ended = true;
        stopThis?.();
        // Our own stop() aborts the watch too; that is no failure worth a warning.
        if (how === "closed" || stopped) {
          logger.debug({ resourceVersion: resourceVersion.value, how }, `${noun} watch closed`);
        } else {
          logger.warn({ err: err === undefined ? undefined : String(err), how }, `${noun} watch ended`);
        }
        resolve(how);
      };
      const onEvent = (event: WatchEvent<T>) => {
        if (ended) return;
        healthyAt = now();
        switch (event.type) {
          case "ADDED":
          case "MODIFIED":
            listener.changed(event.object, put(event.object));
            break;
          case "DELETED":
            remove(event.object);
            listener.deleted(event.object);
            break;
          case "BOOKMARK":
            break;
          default:
            // ERROR carries a Status, typically 410 Gone: our resourceVersion is too old.
            end("expired", JSON.stringify(event.object));
            return;
        }
        const rv = event.object?.metadata?.resourceVersion;
        if (rv) resourceVersion.value = rv;
      };
      const onDone = (err?: unknown) => {
        if (err === undefined || err === null) {
          healthyAt = now();
          end("closed");
        } else {
          end((err as { statusCode?: number }).statusCode === 410 ? "expired" : "failed", err);
        }
      };
      source.watch(resourceVersion.value, onEvent, onDone).then(
        (stop) => {
          stopThis = stop;
          if (ended) stop();
          else healthyAt = now();
        },
        (err: unknown) => end("failed", err),
      );
    });

  const run = async () => {
    let backoff = minBackoff;
    while (!stopped) {
      let rv: { value: string };
      try {
        rv = { value: await relist() };
        backoff = minBackoff;
      } catch (err) {
        lastProblem = `listing ${noun}s failed: ${String(err)}`;
        logger.warn({ err: String(err), retryInMs: backoff }, `listing ${noun}s failed`);
        await sleep(backoff);
        backoff = Math.min(backoff * 2, maxBackoff);
        continue;
      }
      const listedAt = now();
      for (;;) {
        if (stopped) return;
        const how = await watchOnce(rv);
        if (how === "closed" && now() - listedAt < resync) continue;
        if (how === "failed") {
          lastProblem = `the ${noun} watch failed`;
          await sleep(backoff);
          backoff = Math.min(backoff * 2, maxBackoff);
        }
        break;
      }
    }
  };
  void run();

  const synced = () => listed && now() - healthyAt < staleAfter;
  return {
    synced,
    problem: () =>
      synced()
        ? undefined
        : listed
          ? `the ${noun} watch has not been healthy for ${staleAfter / 1000} s (${lastProblem})`
          : lastProblem,
    get: (namespace, name) => byNamespace.get(namespace)?.get(name),
    inNamespace: (namespace) => [...(byNamespace.get(namespace)?.values() ?? [])],
    all: () => [...byNamespace.values()].flatMap((pods) => [...pods.values()]),
    size: () => count,
    stop: () => {
      stopped = true;
      stopWatch?.();
      wake?.();
    },
  };
}
