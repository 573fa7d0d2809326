// The base64 that jose gets on Node 24 (src/recovery/native-base64.ts), held to the TC39
// proposal's examples and rules, and to Node's own codec for any bytes.
import { Buffer } from "node:buffer";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fromBase64, toBase64 } from "../../../src/recovery/native-base64.ts";
import { fuzz } from "../fuzz/fuzz.ts";

const bytes = (...b: number[]) => new Uint8Array(b);
const text = (s: string) => new Uint8Array(Buffer.from(s));

describe("toBase64", () => {
  it("pads unless told not to, in either alphabet", () => {
    expect(["", "f", "fo", "foo", "foob"].map((s) => toBase64(text(s)))).toEqual([
      "",
      "Zg==",
      "Zm8=",
      "Zm9v",
      "Zm9vYg==",
    ]);
    expect(toBase64(text("f"), { omitPadding: true })).toBe("Zg");
    expect(toBase64(bytes(0xfb, 0xff), { alphabet: "base64url" })).toBe("-_8=");
    expect(toBase64(bytes(0xfb, 0xff), { alphabet: "base64url", omitPadding: true })).toBe("-_8");
    expect(toBase64(bytes(0xfb, 0xff))).toBe("+/8=");
    expect(toBase64(new Uint8Array(Buffer.from("xxfoo")).subarray(2))).toBe("Zm9v");
  });

  it("refuses an unknown alphabet", () => {
    expect(() => toBase64(text("f"), { alphabet: "base32" as never })).toThrow(TypeError);
  });
});

describe("fromBase64", () => {
  it("decodes padded, unpadded and spaced input (loose, the default)", () => {
    expect(Buffer.from(fromBase64("Zm9vYg=="))).toEqual(Buffer.from("foob"));
    expect(Buffer.from(fromBase64("Zm9vYg"))).toEqual(Buffer.from("foob"));
    expect(Buffer.from(fromBase64(" Zm9v\nYmFy\t"))).toEqual(Buffer.from("foobar"));
    expect(fromBase64("-_8", { alphabet: "base64url" })).toEqual(bytes(0xfb, 0xff));
    // Loose ignores the unused bits of the last chunk; strict refuses them.
    expect(fromBase64("Zh==")).toEqual(bytes(0x66));
    expect(() => fromBase64("Zh==", { lastChunkHandling: "strict" })).toThrow(SyntaxError);
  });

  it("refuses what is not base64 with a SyntaxError", () => {
    for (const bad of ["Z", "Zm9vY", "Zg=", "Zg===", "Zm9v=", "Zm$v", "Zg==Zg==", "Z=g="]) {
      expect(() => fromBase64(bad), bad).toThrow(SyntaxError);
    }
    expect(() => fromBase64("+/8=", { alphabet: "base64url" })).toThrow(SyntaxError);
    expect(() => fromBase64("-_8=")).toThrow(SyntaxError);
    expect(() => fromBase64("Zg", { lastChunkHandling: "strict" })).toThrow(SyntaxError);
    expect(() => fromBase64(42 as never)).toThrow(TypeError);
  });

  it("stops before a partial last chunk when asked", () => {
    expect(Buffer.from(fromBase64("Zm9vYg", { lastChunkHandling: "stop-before-partial" }))).toEqual(
      Buffer.from("foo"),
    );
  });

  it("round-trips any bytes, in both alphabets, and agrees with Node's codec", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.constantFrom("base64", "base64url"),
        fc.boolean(),
        (b, alphabet, omitPadding) => {
          const encoded = toBase64(b, { alphabet, omitPadding });
          expect(encoded.replace(/=+$/, "")).toBe(Buffer.from(b).toString(alphabet).replace(/=+$/, ""));
          expect(fromBase64(encoded, { alphabet })).toEqual(b);
          if (!omitPadding) expect(fromBase64(encoded, { alphabet, lastChunkHandling: "strict" })).toEqual(b);
        },
      ),
      fuzz(300),
    );
  });
});
