// A minimal informer for the end-to-end tests: list, then watch from the list's
// resourceVersion, resuming after each server-side timeout and relisting when the watch fails
// or its resourceVersion is too old. Nothing is missed between the list and the watch.
import { setTimeout as sleep } from "node:timers/promises";
import { Watch, type KubeConfig } from "@kubernetes/client-node";

/** Below @kubernetes/client-node's 30 s inactivity timeout, so a quiet watch is not cut as failed. */
const WATCH_SECONDS = 20;

export interface ListWatchHandler<T> {
  /** The full state after a (re)list. */
  reset(items: T[]): void;
  event(type: "ADDED" | "MODIFIED" | "DELETED", object: T): void;
}

export interface ListWatchOptions<T> {
  list(): Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>;
  /** The collection's API path, e.g. /apis/discovery.k8s.io/v1/namespaces/ns/endpointslices. */
  path: string;
  labelSelector?: string;
}

/** Starts list-watching; resolves once the first list is in, to a function that stops it. */
export async function listWatch<T extends { metadata?: { resourceVersion?: string } }>(
  kc: KubeConfig,
  opts: ListWatchOptions<T>,
  handler: ListWatchHandler<T>,
): Promise<() => void> {
  const watcher = new Watch(kc);
  let stopped = false;
  let abort: AbortController | undefined;
  let resourceVersion = "";

  const relist = async () => {
    const list = await opts.list();
    resourceVersion = list.metadata?.resourceVersion ?? "";
    handler.reset(list.items);
  };

  const watch = async (): Promise<void> => {
    if (stopped) return;
    let expired = false;
    abort = await watcher.watch(
      opts.path,
      {
        labelSelector: opts.labelSelector,
        resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: WATCH_SECONDS,
      },
      (type: string, object: T) => {
        if (type === "ERROR") {
          // 410 Gone: the resourceVersion is too old to resume from.
          expired = true;
          return;
        }
        resourceVersion = object.metadata?.resourceVersion ?? resourceVersion;
        if (type !== "BOOKMARK") handler.event(type as "ADDED" | "MODIFIED" | "DELETED", object);
      },
      (err: unknown) => void resume(Boolean(err) || expired),
    );
    // Stopped while the watch was being opened.
    if (stopped) abort.abort();
  };

  const resume = async (mustRelist: boolean): Promise<void> => {
    while (!stopped) {
      try {
        if (mustRelist) await relist();
        await watch();
        return;
      } catch {
        mustRelist = true;
        await sleep(1000);
      }
    }
  };

  await relist();
  await watch();
  return () => {
    stopped = true;
    abort?.abort();
  };
}
