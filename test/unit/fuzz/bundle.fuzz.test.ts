// Fuzz of the state bundle as it arrives from a peer and as it lands on disk: the decoder
// (src/state/bundle.ts) with any bytes, lying length prefixes, huge counts and mutated
// encodings; and the state directory (src/state/store.ts, layout.ts) with generated bundles
// (nested, unicode and near-reserved names) written, swapped and read back, and with trees that
// hold a symlink. What must hold: a decoded bundle is canonical (it encodes to exactly the
// bytes it came from, so its digest is theirs), everything else is a BundleError; what is
// written reads back the same and nothing lands outside the directory; a symlink is refused,
// never followed.
import { Buffer } from "node:buffer";
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BundleError,
  createBundle,
  decodeBundle,
  encodeBundle,
  MAX_BUNDLE_FILES,
  type Bundle,
} from "../../../src/state/bundle.ts";
import { swapBundle } from "../../../src/state/layout.ts";
import { invalidPathReason } from "../../../src/state/paths.ts";
import { readBundle, writeBundle } from "../../../src/state/store.ts";
import { fuzz, fuzzTimeout } from "./fuzz.ts";

function decodes(bytes: Uint8Array): Bundle | BundleError {
  try {
    return decodeBundle(bytes);
  } catch (err) {
    if (err instanceof BundleError) return err;
    throw err;
  }
}

/** The property of every input: a BundleError, or a bundle that encodes to exactly `bytes`. */
function checkDecode(bytes: Uint8Array): Bundle | BundleError {
  const result = decodes(bytes);
  if (!(result instanceof BundleError)) expect(encodeBundle(result).equals(Buffer.from(bytes))).toBe(true);
  return result;
}

const u64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
};

const segment = fc.oneof(
  { arbitrary: fc.stringMatching(/^[a-z0-9_-]{1,6}$/), weight: 6 },
  fc.constantFrom("é", "日本", "a b", ".hidden", "..x", "x..", "-", ".coordinator-hax"),
);
/** Names that paths.ts accepts, near the reserved ones now and then. */
const path = fc
  .array(segment, { minLength: 1, maxLength: 4 })
  .map((s) => s.join("/"))
  .filter((p) => invalidPathReason(p) === undefined);
const file = fc.record({ path, content: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) });
/** Bundles that createBundle accepts (duplicates and file-under-file pairs dropped). */
const bundle = fc.array(file, { minLength: 1, maxLength: 8 }).map((files) => {
  const kept: typeof files = [];
  for (const f of files) {
    const clash = kept.some(
      (k) => k.path === f.path || k.path.startsWith(`${f.path}/`) || f.path.startsWith(`${k.path}/`),
    );
    if (!clash) kept.push(f);
  }
  return createBundle(kept);
});

describe("fuzz: decoding a bundle from a peer", () => {
  it(
    "decodes any bytes into a canonical bundle or a BundleError",
    () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => void checkDecode(bytes)),
        fuzz(500),
      );
    },
    fuzzTimeout(10_000),
  );

  it(
    "refuses lying length prefixes (up to 2^64 - 1) without reading past the end",
    () => {
      const field = fc.tuple(
        fc.oneof(
          fc.constant(undefined),
          fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          fc.constantFrom(2n ** 63n, 2n ** 64n - 1n, 0n),
        ),
        fc.uint8Array({ maxLength: 40 }),
      );
      const encoding = fc
        .array(field, { maxLength: 8 })
        .map((fields) =>
          Buffer.concat(
            fields.flatMap(([length, bytes]) => [u64(length ?? BigInt(bytes.length)), Buffer.from(bytes)]),
          ),
        );
      fc.assert(
        fc.property(encoding, (bytes) => void checkDecode(bytes)),
        fuzz(500),
      );
    },
    fuzzTimeout(10_000),
  );

  it(
    "round-trips every bundle, and refuses or canonically re-reads every mutation of its encoding",
    () => {
      const mutation = fc.oneof(
        fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
        fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
        fc.record({
          kind: fc.constant("append" as const),
          bytes: fc.uint8Array({ minLength: 1, maxLength: 20 }),
        }),
      );
      fc.assert(
        fc.property(bundle, mutation, (b, m) => {
          const encoding = encodeBundle(b);
          expect(decodeBundle(encoding)).toEqual(b);
          const mutated = Buffer.from(encoding);
          let input: Buffer = mutated;
          if (m.kind === "flip") mutated[m.at % mutated.length]! ^= 1 << m.bit;
          else if (m.kind === "cut") input = mutated.subarray(0, m.at % mutated.length);
          else input = Buffer.concat([mutated, m.bytes]);
          checkDecode(input);
        }),
        fuzz(400),
      );
    },
    fuzzTimeout(10_000),
  );

  it(
    "refuses one file more than the limit",
    () => {
      const one = Buffer.concat([u64(1n), Buffer.from("a"), u64(0n)]);
      const names = Array.from({ length: MAX_BUNDLE_FILES + 1 }, (_, i) => `f${String(i).padStart(5, "0")}`);
      const encoding = Buffer.concat(names.flatMap((n) => [u64(BigInt(n.length)), Buffer.from(n), u64(0n)]));
      expect(decodes(encoding)).toBeInstanceOf(BundleError);
      expect(decodes(one)).not.toBeInstanceOf(BundleError);
    },
    fuzzTimeout(10_000),
  );
});

describe("fuzz: bundles in the state directory", () => {
  let root: string;
  let cases = 0;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "cha-fuzz-state-"));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** A fresh state directory, and a sibling that must stay empty. */
  async function fresh(): Promise<{ dir: string; outside: string }> {
    const base = join(root, String(cases++));
    const dir = join(base, "state");
    const outside = join(base, "outside");
    await mkdir(dir, { recursive: true });
    await mkdir(outside);
    return { dir, outside };
  }

  it(
    "reads back what it wrote and what it swapped in, and writes nothing outside",
    async () => {
      await fc.assert(
        fc.asyncProperty(bundle, bundle, async (first, second) => {
          const { dir, outside } = await fresh();
          await writeBundle(dir, first);
          expect(await readBundle(dir)).toEqual(first);
          await swapBundle(dir, second);
          expect(await readBundle(dir)).toEqual(second);
          expect(await readdir(outside)).toEqual([]);
        }),
        fuzz(30),
      );
    },
    fuzzTimeout(20_000),
  );

  it(
    "refuses a tree that holds a symlink, and never reads what it points to",
    async () => {
      const SECRET = "secret outside the state directory";
      await fc.assert(
        fc.asyncProperty(bundle, fc.nat(), path, async (b, which, linkName) => {
          const { dir, outside } = await fresh();
          await writeFile(join(outside, "secret"), SECRET);
          for (const f of b.files) {
            await mkdir(dirname(join(dir, f.path)), { recursive: true });
            await writeFile(join(dir, f.path), f.content);
          }
          // The link goes beside a file of the bundle, under a name that is not taken.
          const beside = dirname(b.files[which % b.files.length]!.path);
          const link = join(dir, beside === "." ? "" : beside, `${linkName.replaceAll("/", "_")}-link`);
          await symlink(join(outside, "secret"), link);
          let read: Bundle | undefined;
          try {
            read = await readBundle(dir);
          } catch (err) {
            expect(err).toBeInstanceOf(BundleError);
            return;
          }
          // Only coordinator-ha's own (reserved) names are skipped instead of refused.
          expect(read.files.some((f) => f.content.toString() === SECRET)).toBe(false);
          expect(link.includes("/.coordinator-ha")).toBe(true);
        }),
        fuzz(30),
      );
    },
    fuzzTimeout(20_000),
  );
});
