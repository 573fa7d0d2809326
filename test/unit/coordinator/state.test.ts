import { createPrivateKey, createPublicKey } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  decodeState,
  encodeState,
  manifestDigest,
  newState,
  updatedState,
  publicKeyPem,
  StateFormatError,
} from "../../../src/coordinator/state.ts";

describe("coordinator state", () => {
  it("round-trips through its file format", () => {
    const state = newState({ policies: { a: 1 } });
    expect(decodeState(encodeState(state))).toEqual(state);
  });

  it("reads a version 1 file (before updates) as one first set", () => {
    const seed = Buffer.alloc(32, 3).toString("base64");
    const state = decodeState(Buffer.from(JSON.stringify({ version: 1, seed, manifest: { a: 1 } })));
    expect(state.history).toEqual([{ previous: null, new: manifestDigest({ a: 1 }) }]);
  });

  it("updates keep the seed and append a transition from the previous manifest to the new one", () => {
    const first = newState({ a: 1 });
    const second = updatedState(first, { a: 2 });
    expect(second.seed).toBe(first.seed);
    expect(second.history).toEqual([
      { previous: null, new: manifestDigest({ a: 1 }) },
      { previous: manifestDigest({ a: 1 }), new: manifestDigest({ a: 2 }) },
    ]);
    expect(decodeState(encodeState(second))).toEqual(second);
    expect(manifestDigest({ a: 2 })).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("derives the same Ed25519 key from the same seed, and another from another seed", () => {
    const seed = Buffer.alloc(32, 7);
    const pem = publicKeyPem(seed);
    expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    expect(createPublicKey(pem).asymmetricKeyType).toBe("ed25519");
    expect(publicKeyPem(Buffer.from(seed))).toBe(pem);
    expect(publicKeyPem(Buffer.alloc(32, 8))).not.toBe(pem);
  });

  it("does not use the seed itself as the private key", () => {
    // Ed25519 with private key = seed, computed independently.
    const prefix = Buffer.from("302e020100300506032b657004220420", "hex");
    const seed = Buffer.alloc(32, 7);
    const direct = createPublicKey(
      createPrivateKey({ key: Buffer.concat([prefix, seed]), format: "der", type: "pkcs8" }),
    )
      .export({ format: "pem", type: "spki" })
      .toString();
    expect(publicKeyPem(seed)).not.toBe(direct);
  });

  it.each([
    ["not JSON", "{", /not JSON/],
    ["an array", "[]", /not a JSON object/],
    ["another version", JSON.stringify({ version: 3, seed: "", manifest: {} }), /version 3/],
    [
      "of version 2 without a history",
      JSON.stringify({ version: 2, seed: Buffer.alloc(32).toString("base64"), manifest: {} }),
      /history/,
    ],
    [
      "of version 2 with a malformed transition",
      JSON.stringify({
        version: 2,
        seed: Buffer.alloc(32).toString("base64"),
        manifest: {},
        history: [{ previous: null, new: "abc" }],
      }),
      /history/,
    ],
    ["a short seed", JSON.stringify({ version: 1, seed: "AAAA", manifest: {} }), /seed/],
    [
      "a non-canonical seed",
      JSON.stringify({ version: 1, seed: `${"A".repeat(43)}=x`, manifest: {} }),
      /seed/,
    ],
    ["no manifest", JSON.stringify({ version: 1, seed: Buffer.alloc(32).toString("base64") }), /manifest/],
  ])("refuses a state file that is %s", (_name, text, reason) => {
    expect(() => decodeState(Buffer.from(text))).toThrow(StateFormatError);
    expect(() => decodeState(Buffer.from(text))).toThrow(reason);
  });
});
