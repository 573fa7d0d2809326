// List-and-watch with a local cache, on client-node's ListWatch, plus what it leaves to the
// caller: a watch that ends with an error is restarted after a pause (relisting), and every
// object is handed out in its wire form (see wire.ts).
import {
  ListWatch,
  Watch,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from "@kubernetes/client-node";
import type { Logger } from "pino";
import { toWire } from "./wire.ts";

export type InformerEvent = "add" | "update" | "delete";

export interface Informer<T> {
  /** Resolves once the first list has been loaded. */
  synced: Promise<void>;
  list(): T[];
  get(name: string, namespace?: string): T | undefined;
  on(handler: (event: InformerEvent, obj: T) => void): void;
  stop(): Promise<void>;
}

const RESTART_DELAY_MS = 1000;

export function startInformer<T>(opts: {
  kc: KubeConfig;
  path: string;
  list: () => Promise<KubernetesListObject<KubernetesObject>>;
  fieldSelector?: string;
  log: Logger;
}): Informer<T> {
  const handlers: ((event: InformerEvent, obj: T) => void)[] = [];
  let stopped = false;
  let markSynced: () => void = () => {};
  const synced = new Promise<void>((resolve) => (markSynced = resolve));
  const lw = new ListWatch<KubernetesObject>(
    opts.path,
    new Watch(opts.kc),
    async () => {
      const list = await opts.list();
      // The list callbacks run before this resolves; the cache is complete right after.
      setImmediate(markSynced);
      return list;
    },
    false,
    undefined,
    opts.fieldSelector,
  );
  const emit = (event: InformerEvent) => (obj: KubernetesObject) => {
    const wire = toWire(obj) as unknown as T;
    for (const h of handlers) h(event, wire);
  };
  lw.on("add", emit("add"));
  lw.on("update", emit("update"));
  lw.on("delete", emit("delete"));
  lw.on("error", (err: unknown) => {
    if (stopped) return;
    opts.log.warn({ path: opts.path, err: String(err) }, "watch failed; restarting it");
    setTimeout(() => {
      if (!stopped) void lw.start();
    }, RESTART_DELAY_MS);
  });
  void lw.start();
  return {
    synced,
    list: () => lw.list().map((o) => toWire(o) as unknown as T),
    get: (name, namespace) => {
      const o = lw.get(name, namespace);
      return o ? (toWire(o) as unknown as T) : undefined;
    },
    on: (h) => handlers.push(h),
    stop: async () => {
      stopped = true;
      await lw.stop();
    },
  };
}
