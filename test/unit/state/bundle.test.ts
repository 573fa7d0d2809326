import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  BundleError,
  bundleDigest,
  createBundle,
  decodeBundle,
  digestOf,
  encodeBundle,
  isDigest,
  MAX_BUNDLE_BYTES,
  type StateFile,
} from "../../../src/state/bundle.ts";

const file = (path: string, content: string | Buffer): StateFile => ({
  path,
  content: Buffer.isBuffer(content) ? content : Buffer.from(content),
});

/** Frames one record by hand, independently of encodeBundle. */
function record(path: Buffer | string, content: Buffer | string): Buffer {
  const p = Buffer.isBuffer(path) ? path : Buffer.from(path);
  const c = Buffer.isBuffer(content) ? content : Buffer.from(content);
  const len = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(n));
    return b;
  };
  return Buffer.concat([len(p.length), p, len(c.length), c]);
}

describe("bundle encoding", () => {
  it("frames each path and content with a 64-bit big-endian length, sorted by path", () => {
    const bundle = createBundle([file("b", "2"), file("a", "1")]);
    const expected = Buffer.concat([record("a", "1"), record("b", "2")]);
    expect(encodeBundle(bundle)).toEqual(expected);
    expect(bundleDigest(bundle)).toBe(`sha256:${createHash("sha256").update(expected).digest("hex")}`);
    expect(isDigest(bundleDigest(bundle))).toBe(true);
  });

  it("sorts by UTF-8 bytes, not by UTF-16 code units", () => {
    // UTF-16 puts U+1F600 (D83D DE00) before U+FF5E; UTF-8 puts it after (F0 9F.. > EF BD..).
    const bundle = createBundle([file("\u{1F600}", "x"), file("\uFF5E", "y")]);
    expect(bundle.files.map((f) => f.path)).toEqual(["\uFF5E", "\u{1F600}"]);
    expect(decodeBundle(encodeBundle(bundle))).toEqual(bundle);
  });

  it("round-trips, and the digest does not depend on the order files were listed in", () => {
    const files = [file("dir/x.bin", Buffer.from([0, 1, 2, 255])), file("a.json", "{}"), file("empty", "")];
    const one = createBundle(files);
    const two = createBundle([...files].reverse());
    expect(bundleDigest(one)).toBe(bundleDigest(two));
    expect(decodeBundle(encodeBundle(one))).toEqual(one);
    expect(digestOf(encodeBundle(one))).toBe(bundleDigest(one));
  });

  it("gives different digests to bundles whose concatenated paths and contents are equal", () => {
    const digests = [
      [file("ab", "c")],
      [file("a", "bc")],
      [file("a", "b"), file("c", "")],
      [file("a", ""), file("bc", "")],
      // A content that contains the framing of a second file is still one file.
      [file("a", Buffer.concat([Buffer.from("x"), record("b", "y")]))],
      [file("a", "x"), file("b", "y")],
    ].map((files) => bundleDigest(createBundle(files)));
    expect(new Set(digests).size).toBe(digests.length);
  });

  it("refuses every truncation that does not end on a file boundary", () => {
    const encoding = encodeBundle(createBundle([file("a", "first"), file("b/c", "second")]));
    const boundary = record("a", "first").length;
    for (let cut = 1; cut < encoding.length; cut++) {
      if (cut === boundary) continue;
      expect(() => decodeBundle(encoding.subarray(0, cut)), `cut at ${cut}`).toThrow(/truncated/);
    }
    // A cut on a boundary is a smaller valid bundle: only its digest tells it apart, which is
    // why the receiver compares digests.
    const shorter = decodeBundle(encoding.subarray(0, boundary));
    expect(shorter.files.map((f) => f.path)).toEqual(["a"]);
    expect(bundleDigest(shorter)).not.toBe(digestOf(encoding));
  });

  it("refuses trailing bytes and a length field that points past the end", () => {
    const encoding = encodeBundle(createBundle([file("a", "x")]));
    expect(() => decodeBundle(Buffer.concat([encoding, Buffer.from([0])]))).toThrow(BundleError);
    const huge = Buffer.from(record("a", "x"));
    huge.writeBigUInt64BE(2n ** 63n, 8 + 1);
    expect(() => decodeBundle(huge)).toThrow(/truncated in the content/);
  });

  it("refuses duplicate and out-of-order files in an encoding", () => {
    expect(() => decodeBundle(Buffer.concat([record("a", "1"), record("a", "2")]))).toThrow(/twice/);
    expect(() => decodeBundle(Buffer.concat([record("b", "1"), record("a", "2")]))).toThrow(/not sorted/);
    expect(() => createBundle([file("a", "1"), file("a", "2")])).toThrow(/twice/);
  });

  it("refuses a file that is also a directory of another file", () => {
    expect(() => createBundle([file("a", "1"), file("a/b", "2")])).toThrow(/file under it/);
    expect(() => decodeBundle(Buffer.concat([record("x", ""), record("x/y/z", "")]))).toThrow(
      /file under it/,
    );
  });

  it.each([
    ["", /empty/],
    ["/etc/passwd", /absolute/],
    ["../escape", /"\.\." segment/],
    ["a/../../escape", /"\.\." segment/],
    ["./a", /"\." segment/],
    ["a//b", /empty segment/],
    ["a/", /empty segment/],
    ["a\\..\\b", /backslash/],
    ["a\0b", /NUL/],
    [".coordinator-ha-tmp-1234", /reserved/],
    ["dir/.coordinator-ha-source.json", /reserved/],
    ["x".repeat(1025), /longer than/],
    ["\uD800", /Unicode/],
  ])("refuses the hostile path %j", (path, reason) => {
    expect(() => createBundle([file(path, "x")])).toThrow(reason);
    if (path !== "\uD800") expect(() => decodeBundle(record(path, "x"))).toThrow(reason);
  });

  it("refuses a path that is not UTF-8", () => {
    expect(() => decodeBundle(record(Buffer.from([0x61, 0xff]), "x"))).toThrow(/not valid UTF-8/);
  });

  it("refuses a bundle larger than the limit", () => {
    expect(() => createBundle([file("big", Buffer.alloc(MAX_BUNDLE_BYTES))])).toThrow(/limit/);
    expect(() => decodeBundle(Buffer.alloc(MAX_BUNDLE_BYTES + 1))).toThrow(/limit/);
  });

  it("encodes the empty bundle as no bytes", () => {
    expect(encodeBundle(createBundle([]))).toHaveLength(0);
    expect(decodeBundle(Buffer.alloc(0)).files).toEqual([]);
  });
});
