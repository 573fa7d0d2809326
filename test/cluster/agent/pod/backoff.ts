// Restart back-off, as client-go's flowcontrol.Backoff behaves with the kubelet's settings:
// the first restart is immediate, then 10s, doubling up to 300s; a container that ran for
// 10 minutes since the last back-off update starts over. Image pulls use the same scheme.

export interface BackoffEntry {
  backoffMs: number;
  lastUpdate: number;
}

export class Backoff {
  private readonly entries = new Map<string, BackoffEntry>();
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly resetAfterMs: number;
  private readonly now: () => number;

  constructor(opts: { initialMs: number; maxMs: number; resetAfterMs: number; now?: () => number }) {
    this.initialMs = opts.initialMs;
    this.maxMs = opts.maxMs;
    this.resetAfterMs = opts.resetAfterMs;
    this.now = opts.now ?? Date.now;
  }

  private expired(eventTime: number, e: BackoffEntry): boolean {
    return eventTime - e.lastUpdate > this.resetAfterMs;
  }

  /** IsInBackOffSince: is `key` still backing off, counting from eventTime (the last exit)? */
  inBackoffSince(key: string, eventTime: number): boolean {
    const e = this.entries.get(key);
    if (!e || this.expired(eventTime, e)) return false;
    return this.now() - eventTime < e.backoffMs;
  }

  /** IsInBackOffSinceUpdate: is `key` backing off, counting from its last update (image pulls)? */
  inBackoffSinceUpdate(key: string): boolean {
    const e = this.entries.get(key);
    const now = this.now();
    if (!e || this.expired(now, e)) return false;
    return now - e.lastUpdate < e.backoffMs;
  }

  /** Next: records an attempt; the delay doubles unless the entry expired. */
  next(key: string, eventTime: number): void {
    const e = this.entries.get(key);
    if (!e || this.expired(eventTime, e)) {
      this.entries.set(key, { backoffMs: this.initialMs, lastUpdate: this.now() });
    } else {
      this.entries.set(key, { backoffMs: Math.min(e.backoffMs * 2, this.maxMs), lastUpdate: this.now() });
    }
  }

  get(key: string): number {
    return this.entries.get(key)?.backoffMs ?? 0;
  }
}

/** A duration as Go's time.Duration prints it: 10s, 1m20s, 5m0s. */
export function goDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60}s`;
  return `${Math.floor(m / 60)}h${m % 60}m${s % 60}s`;
}
