// A keyed work queue in the manner of client-go's workqueue: a key added many times before
// it is processed is processed once, one key is never processed twice at the same time, and
// a key added while it is being processed is processed again afterwards (with the newest
// state, since the worker reads it then, not when it was added).
export interface WorkQueue {
  add(key: string): void;
  /** Adds the key again after `ms` (retry with back-off). */
  addAfter(key: string, ms: number): void;
  /** Resolves when nothing is queued or being processed (tests, shutdown). */
  idle(): Promise<void>;
  stop(): void;
}

export function createWorkQueue(process: (key: string) => Promise<void>, concurrency = 4): WorkQueue {
  const queued: string[] = [];
  const dirty = new Set<string>();
  const active = new Set<string>();
  const timers = new Set<NodeJS.Timeout>();
  let idleWaiters: (() => void)[] = [];
  let stopped = false;

  const settle = () => {
    if (queued.length === 0 && active.size === 0) {
      for (const resolve of idleWaiters) resolve();
      idleWaiters = [];
    }
  };

  const pump = () => {
    while (!stopped && active.size < concurrency) {
      const index = queued.findIndex((key) => !active.has(key));
      if (index < 0) break;
      const [key] = queued.splice(index, 1) as [string];
      dirty.delete(key);
      active.add(key);
      // process() handles its own errors; a rejection here would be a bug, and must not
      // wedge the key forever.
      void process(key)
        .catch(() => undefined)
        .finally(() => {
          active.delete(key);
          pump();
          settle();
        });
    }
  };

  const add = (key: string) => {
    if (stopped || dirty.has(key)) return;
    dirty.add(key);
    queued.push(key);
    pump();
  };

  return {
    add,
    addAfter(key, ms) {
      if (stopped) return;
      const timer = setTimeout(() => {
        timers.delete(timer);
        add(key);
      }, ms);
      timer.unref();
      timers.add(timer);
    },
    idle: () =>
      new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        settle();
      }),
    stop() {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      queued.length = 0;
      dirty.clear();
      settle();
    },
  };
}
