// At most N of a kind of work at once, the rest waiting in order for a bounded time. The peer
// API uses it for state transfers: one transfer of a large state holds several times the
// state's size in memory (the encoding, the ciphertext, its base64 and the JSON answer), so
// transfers that all start at once (every pod staging a proposal from its proposer, pods
// recovering in parallel) would add up past the sidecar's memory limit.

/** The work waited longer than the limiter allows: answer "busy, try again". */
export class BusyError extends Error {
  override name = "BusyError";
}

export interface Limiter {
  /** Runs `task` once fewer than `max` run; throws BusyError after waiting `maxWaitMs`. */
  run<T>(task: () => Promise<T>): Promise<T>;
  /** Running and waiting now (for tests and metrics). */
  readonly active: number;
  readonly waiting: number;
}

export function limiter(max: number, maxWaitMs: number): Limiter {
  let active = 0;
  const queue: (() => void)[] = [];
  const release = () => {
    active--;
    queue.shift()?.();
  };
  return {
    async run<T>(task: () => Promise<T>): Promise<T> {
      if (active >= max) {
        await new Promise<void>((resolve, reject) => {
          const start = () => {
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(() => {
            queue.splice(queue.indexOf(start), 1);
            reject(new BusyError(`${max} already running and none finished within ${maxWaitMs} ms`));
          }, maxWaitMs);
          queue.push(start);
        });
      }
      active++;
      try {
        return await task();
      } finally {
        release();
      }
    },
    get active() {
      return active;
    },
    get waiting() {
      return queue.length;
    },
  };
}
