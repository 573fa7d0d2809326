// Polling a starting component over HTTPS, with progress output and a fast failure when the
// component dies instead of waiting out the timeout.
import { request } from "node:https";
import { setTimeout as sleep } from "node:timers/promises";
import { tail, type Spawned } from "./processes.ts";

export interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

export interface HttpResult {
  status: number;
  body: string;
}

/** GET over HTTPS; without `ca` the peer is not verified (a component's self-signed /healthz). */
export function httpsGet(url: string, tls: TlsFiles, timeoutMs = 5000): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: "GET", ...tls, rejectUnauthorized: tls.ca !== undefined, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs}ms`)));
    req.on("error", reject);
    req.end();
  });
}

/** What a check returns: done with a value, or not yet and why. */
export type Check<T> = { done: true; value: T } | { done: false; reason: string };

export interface WaitOptions {
  timeoutMs: number;
  log: (msg: string) => void;
  /** Fail at once, with the end of its log, when this process exits. */
  process?: { name: string; spawned: Spawned; logFile: string };
  signal?: AbortSignal;
}

export async function waitFor<T>(
  what: string,
  check: () => Promise<Check<T>>,
  opts: WaitOptions,
): Promise<T> {
  const start = Date.now();
  let lastReport = start;
  let reason: string;
  for (;;) {
    opts.signal?.throwIfAborted();
    const exit = opts.process?.spawned.exit;
    if (opts.process && exit) {
      const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
      throw new Error(
        `${opts.process.name} ${how} while we waited for ${what}. The end of ${opts.process.logFile}:\n` +
          tail(opts.process.logFile),
      );
    }
    try {
      const result = await check();
      if (result.done) return result.value;
      reason = result.reason;
    } catch (err) {
      reason = (err as Error).message;
    }
    const now = Date.now();
    if (now - start > opts.timeoutMs) {
      const logHint = opts.process
        ? ` The end of ${opts.process.logFile}:\n${tail(opts.process.logFile)}`
        : "";
      throw new Error(
        `timed out after ${Math.round(opts.timeoutMs / 1000)}s waiting for ${what}: ${reason}.${logHint}`,
      );
    }
    if (now - lastReport >= 10_000) {
      opts.log(`still waiting for ${what} (${Math.round((now - start) / 1000)}s): ${reason}`);
      lastReport = now;
    }
    await sleep(500, undefined, { signal: opts.signal });
  }
}
