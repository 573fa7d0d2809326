import { generateKeyPairSync } from "node:crypto";
import { CompactEncrypt, exportJWK, generateKeyPair, type CryptoKey } from "jose";
import { describe, expect, it } from "vitest";
import {
  BUNDLE_CONTENT_TYPE,
  ephemeralKey,
  MAX_JWE_LENGTH,
  openBundle,
  recipientKey,
  sealBundle,
  TransferError,
  TransferReason,
} from "../../../src/recovery/transfer.ts";
import { bundleDigest, createBundle, encodeBundle, MAX_BUNDLE_BYTES } from "../../../src/state/bundle.ts";

const bundle = createBundle([
  { path: "coordinator.json", content: Buffer.from('{"seed":"s3cret"}') },
  { path: "keys/a", content: Buffer.from([1, 2, 3]) },
]);
const encoding = encodeBundle(bundle);
const digest = bundleDigest(bundle);

async function rejection(promise: Promise<unknown>): Promise<TransferError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TransferError);
  return err as TransferError;
}

/** What a peer does: check the requester's key, then seal. */
async function seal(plaintext: Uint8Array, jwk: unknown): Promise<string> {
  return sealBundle(plaintext, await recipientKey(jwk));
}

function flip(jwe: string, part: number): string {
  const parts = jwe.split(".");
  const p = parts[part]!;
  // Change one character in the middle of the part to another base64url character.
  const i = Math.floor(p.length / 2);
  parts[part] = p.slice(0, i) + (p[i] === "A" ? "B" : "A") + p.slice(i + 1);
  return parts.join(".");
}

describe("state transfer", () => {
  it("delivers the bundle to the key it was sealed for", async () => {
    const key = await ephemeralKey();
    expect(Object.keys(key.publicJwk).sort()).toEqual(["crv", "kty", "x", "y"]);
    const jwe = await seal(encoding, key.publicJwk);
    expect(jwe.split(".")).toHaveLength(5);
    expect(jwe).not.toContain("s3cret");
    expect(await openBundle(jwe, key, digest)).toEqual(bundle);
  });

  it.each([
    ["protected header", 0],
    ["initialization vector", 2],
    ["ciphertext", 3],
    ["authentication tag", 4],
  ])("refuses a JWE with a tampered %s", async (_name, part) => {
    const key = await ephemeralKey();
    const jwe = await seal(encoding, key.publicJwk);
    const err = await rejection(openBundle(flip(jwe, part), key, digest));
    expect([TransferReason.DecryptFailed, TransferReason.Malformed]).toContain(err.reason);
  });

  it("refuses a JWE sealed for another key", async () => {
    const mine = await ephemeralKey();
    const other = await ephemeralKey();
    const jwe = await seal(encoding, other.publicJwk);
    expect((await rejection(openBundle(jwe, mine, digest))).reason).toBe(TransferReason.DecryptFailed);
  });

  it("refuses a whole bundle whose digest is not the one the handler reported", async () => {
    const key = await ephemeralKey();
    const forged = createBundle([{ path: "coordinator.json", content: Buffer.from('{"seed":"attacker"}') }]);
    const jwe = await seal(encodeBundle(forged), key.publicJwk);
    const err = await rejection(openBundle(jwe, key, digest));
    expect(err.reason).toBe(TransferReason.DigestMismatch);
    expect(err.message).not.toContain("attacker");
  });

  it("refuses a truncated bundle, inside a record or on a record boundary", async () => {
    const key = await ephemeralKey();
    const inside = await seal(encoding.subarray(0, encoding.length - 1), key.publicJwk);
    expect((await rejection(openBundle(inside, key, digest))).reason).toBe(TransferReason.BadBundle);
    const firstRecordLength = 8 + "coordinator.json".length + 8 + '{"seed":"s3cret"}'.length;
    const boundary = await seal(encoding.subarray(0, firstRecordLength), key.publicJwk);
    expect((await rejection(openBundle(boundary, key, digest))).reason).toBe(TransferReason.DigestMismatch);
    const empty = await seal(new Uint8Array(0), key.publicJwk);
    expect((await rejection(openBundle(empty, key, digest))).reason).toBe(TransferReason.EmptyBundle);
  });

  it("refuses an oversized JWE before decrypting, and an oversized plaintext", async () => {
    const key = await ephemeralKey();
    const huge = "a".repeat(MAX_JWE_LENGTH + 1);
    expect((await rejection(openBundle(huge, key, digest))).reason).toBe(TransferReason.Oversized);
    const big = await seal(new Uint8Array(MAX_BUNDLE_BYTES + 1), key.publicJwk);
    expect((await rejection(openBundle(big, key, digest))).reason).toBe(TransferReason.Oversized);
  });

  it("refuses other algorithms and other content", async () => {
    const key = await ephemeralKey();
    const recipient = await recipientKey(key.publicJwk);
    const wrapped = await new CompactEncrypt(encoding)
      .setProtectedHeader({ alg: "ECDH-ES+A256KW", enc: "A256GCM", cty: BUNDLE_CONTENT_TYPE })
      .encrypt(recipient);
    expect((await rejection(openBundle(wrapped, key, digest))).reason).toBe(TransferReason.DecryptFailed);
    const cbc = await new CompactEncrypt(encoding)
      .setProtectedHeader({ alg: "ECDH-ES", enc: "A256CBC-HS512", cty: BUNDLE_CONTENT_TYPE })
      .encrypt(recipient);
    expect((await rejection(openBundle(cbc, key, digest))).reason).toBe(TransferReason.DecryptFailed);
    const untyped = await new CompactEncrypt(encoding)
      .setProtectedHeader({ alg: "ECDH-ES", enc: "A256GCM" })
      .encrypt(recipient);
    expect((await rejection(openBundle(untyped, key, digest))).reason).toBe(TransferReason.Malformed);
    for (const garbage of [42, "", "a.b.c", "....", null]) {
      const err = await rejection(openBundle(garbage, key, digest));
      expect([TransferReason.Malformed, TransferReason.DecryptFailed]).toContain(err.reason);
    }
  });
});

describe("recipientKey", () => {
  it("accepts a P-256 public JWK and ignores extra members", async () => {
    const { publicJwk } = await ephemeralKey();
    await expect(recipientKey({ ...publicJwk, kid: "x", use: "enc" })).resolves.toBeDefined();
  });

  it.each([
    ["no object", "a string"],
    ["an array", []],
    ["an RSA key", { kty: "RSA", n: "AQAB", e: "AQAB" }],
    ["another curve", { kty: "EC", crv: "P-384", x: "A".repeat(64), y: "A".repeat(64) }],
    ["short coordinates", { kty: "EC", crv: "P-256", x: "AAAA", y: "AAAA" }],
    ["a point off the curve", { kty: "EC", crv: "P-256", x: "A".repeat(43), y: "B".repeat(43) }],
  ])("refuses %s", async (_name, jwk) => {
    expect((await rejection(recipientKey(jwk))).reason).toBe(TransferReason.BadKey);
  });

  it("refuses a JWK that carries the private key", async () => {
    const { privateKey } = await generateKeyPair("ECDH-ES", { crv: "P-256", extractable: true });
    const err = await rejection(recipientKey(await exportJWK(privateKey as CryptoKey)));
    expect(err.message).toMatch(/private key/);
  });

  it("refuses an EC key of another curve from node's crypto", async () => {
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "secp256k1" });
    expect((await rejection(recipientKey(publicKey.export({ format: "jwk" })))).reason).toBe(
      TransferReason.BadKey,
    );
  });
});
