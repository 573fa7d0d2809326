import { createPrivateKey, createPublicKey } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  decodeState,
  encodeState,
  newState,
  publicKeyPem,
  StateFormatError,
} from "../../../src/coordinator/state.ts";

describe("coordinator state", () => {
  it("round-trips through its file format", () => {
    const state = newState({ policies: { a: 1 } });
    expect(decodeState(encodeState(state))).toEqual(state);
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
    ["another version", JSON.stringify({ version: 2, seed: "", manifest: {} }), /version 2/],
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
