// A wait between two looks of a sidecar loop that another loop can end early: the updater
// wakes the confirmer when it has swapped a new state in (so the gate follows the swap at once,
// not at the confirmer's next idle look, up to 8 s later), and the confirmer wakes the updater
// when its look saw a digest that the updater has not. A wake that comes while the loop is busy
// is kept, so the next wait returns at once: a change seen mid-look is never lost.

export interface Waker {
  /** Sleeps `ms`, or less when woken or stopped. */
  nap(ms: number, signal: AbortSignal): Promise<void>;
  /** Ends the current nap, or the next one at once when none is running. */
  wake(): void;
}

export function createWaker(): Waker {
  let pending = false;
  let end: (() => void) | undefined;
  return {
    nap(ms, signal) {
      if (pending || signal.aborted) {
        pending = false;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          end = undefined;
          resolve();
        };
        const timer = setTimeout(done, ms);
        signal.addEventListener("abort", done, { once: true });
        end = done;
      });
    },
    wake() {
      if (end) end();
      else pending = true;
    },
  };
}
