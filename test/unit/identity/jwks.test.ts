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
  it("fetches once and serves the cached set until it is older than maxAge", async () => {
    const { state, source } = fixture();
    expect(await source.get()).toBe(A);
    state.set = B;
    state.now = 59_999;
    expect(await source.get()).toBe(A);
    state.now = 60_000;
    expect(await source.get()).toBe(B);
    expect(state.fetches).toBe(2);
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
