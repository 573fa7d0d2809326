// How long the sidecar waits before it looks again at the app and the state directory (the
// confirmer and the updater each look on their own): a pure rule, so that each case is a row of
// a table test (test/unit/recovery/cadence.test.ts).
//
//   L1  the look found something new or unsettled (the app's readiness changed or is False, the
//       digest changed, a step acted or failed)                  -> pollMs: follow it closely
//   L2  the look found what the last one found, settled          -> twice the last wait, at most
//                                                                   idlePollMs
//
// Why: a Coordinator pod is settled for nearly all of its life, and one look costs an HTTP
// request to the app and a read and hash of the state (about 1.5 ms of CPU each); at one look
// a second that alone exceeded the sidecar's idle-CPU goal (1 millicore, docs/performance.md).
// After any change the looks are one second apart again, so a change that follows a change is
// seen as fast as before; a change after a quiet time is seen within idlePollMs.

export interface Cadence {
  /** The wait after a look that found something new. */
  pollMs: number;
  /** The longest wait between two looks of a settled pod. */
  idlePollMs: number;
}

export interface LookResult {
  /** The look found what the previous one found, and nothing is pending (see L1). */
  settled: boolean;
  /** How long the loop waited before this look. */
  lastWaitMs: number;
}

export function nextLookMs(look: LookResult, cadence: Cadence): number {
  if (!look.settled) return cadence.pollMs;
  return Math.min(Math.max(look.lastWaitMs, cadence.pollMs) * 2, cadence.idlePollMs);
}
