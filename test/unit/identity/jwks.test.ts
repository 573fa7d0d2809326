import { describe, expect, it } from "vitest";
import type { JSONWebKeySet } from "jose";
import { cachedJwksSource } from "../../../src/identity/index.ts";

const A: JSONWebKeySet = { keys: [{ kty: "EC", kid: "a" }] };
const B: JSONWebKeySet = { keys: [{ kty: "EC", kid: "b" }] };

function fixture(opts: { maxAgeMs?: number; minRefreshIntervalMs?: number } = {}) {
  const state = { now: 0, set: A, fetches: 0, fail: false };
  const source = cachedJwksSource(
    async () => {
      state.fetches++;
      if (state.fail) throw new Error("apiserver unreachable");
      return state.set;
    },
    { maxAgeMs: 60_000, minRefreshIntervalMs: 10_000, ...opts, now: () => state.now },
  );
  return { state, source };
}

describe("cachedJwksSource", () => {
  it("fetches once, and re-fetches in the background once the set is older than maxAge", async () => {
    const { state, source } = fixture();
    expect(await source.get()).toBe(A);
    state.set = B;
    state.now = 59_999;
    expect(await source.get()).toBe(A);
    state.now = 60_000;
    // Stale: answered at once from the cache, while the re-fetch runs.
    expect(await source.get()).toBe(A);
    await Promise.resolve();
    expect(await source.get()).toBe(B);
    expect(state.fetches).toBe(2);
  });

  // A token with a made-up key id forces a refresh; through a stalled apiserver that took
  // 9.5 s, and every valid token waited for it.
  it("serves valid tokens' keys from the cache while a forced refresh hangs", async () => {
    let release: (set: JSONWebKeySet) => void = () => undefined;
    let fetches = 0;
    const source = cachedJwksSource(
      () => {
        fetches++;
        return fetches === 1 ? Promise.resolve(A) : new Promise<JSONWebKeySet>((r) => (release = r));
      },
      { minRefreshIntervalMs: 0 },
    );
    expect(await source.get()).toBe(A);
    const refreshing = source.refresh();
    // The refresh hangs; get() does not wait for it.
    expect(await source.get()).toBe(A);
    expect(await source.get()).toBe(A);
    release(B);
    expect(await refreshing).toBe(B);
    expect(await source.get()).toBe(B);
    expect(fetches).toBe(2);
  });

  it("gives up a fetch that does not finish in time, keeping the cached set", async () => {
    let fetches = 0;
    const source = cachedJwksSource(
      () => (++fetches === 1 ? Promise.resolve(A) : new Promise<JSONWebKeySet>(() => undefined)),
      { minRefreshIntervalMs: 0, fetchTimeoutMs: 20 },
    );
    expect(await source.get()).toBe(A);
    expect(await source.refresh()).toBe(A);
    const never = cachedJwksSource(() => new Promise<JSONWebKeySet>(() => undefined), { fetchTimeoutMs: 20 });
    await expect(never.get()).rejects.toThrow(/did not arrive within 20 ms/);
  });

  it("rate-limits forced refreshes", async () => {
    const { state, source } = fixture();
    await source.get();
    state.set = B;
    state.now = 9_999;
    expect(await source.refresh()).toBe(A);
    state.now = 10_000;
    expect(await source.refresh()).toBe(B);
    expect(await source.refresh()).toBe(B);
    expect(state.fetches).toBe(2);
  });

  it("shares one fetch between concurrent callers", async () => {
    const { state, source } = fixture();
    const results = await Promise.all([source.get(), source.get(), source.refresh()]);
    expect(results).toEqual([A, A, A]);
    expect(state.fetches).toBe(1);
  });

  it("keeps the cached set when a re-fetch fails", async () => {
    const { state, source } = fixture();
    await source.get();
    state.fail = true;
    state.now = 120_000;
    expect(await source.get()).toBe(A);
  });

  it("fails when there is no key set yet", async () => {
    const { state, source } = fixture();
    state.fail = true;
    await expect(source.get()).rejects.toThrow("apiserver unreachable");
  });

  it("refuses an answer that is not a key set", async () => {
    const source = cachedJwksSource(async () => ({ nokeys: true }) as unknown as JSONWebKeySet);
    await expect(source.get()).rejects.toThrow("no keys array");
  });
});
