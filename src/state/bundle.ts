// The state bundle: the regular files of a state directory as one value, with one canonical
// byte encoding. The encoding is what travels between pods (inside a JWE) and what the
// digest is computed over, so a bundle that decodes has exactly one digest.
//
// Encoding: for each file, in ascending order of its path's UTF-8 bytes,
//
//   uint64be(len(path)) || path (UTF-8) || uint64be(len(content)) || content
//
// Every field carries its length, so no two different bundles frame to the same bytes
// (("ab", "c") and ("a", "bc") differ in their length fields). The digest is
// "sha256:" + hex(SHA-256(encoding)).
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { invalidPathReason } from "./paths.ts";

export interface StateFile {
  /** Relative to the state directory, "/"-separated; see invalidPathReason. */
  readonly path: string;
  readonly content: Buffer;
}

/** A validated bundle: paths are valid, unique, free of file/directory clashes, and sorted. */
export interface Bundle {
  readonly files: readonly StateFile[];
}

/** State is secret and lives in memory (a tmpfs emptyDir); a few MiB is plenty. */
export const MAX_BUNDLE_BYTES = 16 * 1024 * 1024;
export const MAX_BUNDLE_FILES = 4096;

const LENGTH_BYTES = 8;
const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;

/** Why a bundle is refused. Callers log `message`; it never contains file content. */
export class BundleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BundleError";
  }
}

export function isDigest(value: unknown): value is string {
  return typeof value === "string" && DIGEST_PATTERN.test(value);
}

/** Validates and sorts the files; throws BundleError naming the first bad path. */
export function createBundle(files: readonly StateFile[]): Bundle {
  const sorted = [...files].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  checkFiles(sorted);
  return { files: sorted };
}

export function encodeBundle(bundle: Bundle): Buffer {
  const parts: Buffer[] = [];
  for (const file of bundle.files) {
    const path = Buffer.from(file.path, "utf8");
    parts.push(lengthOf(path.length), path, lengthOf(file.content.length), file.content);
  }
  return Buffer.concat(parts);
}

/**
 * Parses an encoding and checks it is canonical: a truncated or padded buffer, a bad path,
 * a duplicate or an out-of-order file is refused, so that decode(encode(b)) is the only way
 * to reach a bundle, and its digest is the digest of `bytes`.
 */
export function decodeBundle(bytes: Uint8Array): Bundle {
  if (bytes.length > MAX_BUNDLE_BYTES) {
    throw new BundleError(`bundle is ${bytes.length} bytes, more than the limit of ${MAX_BUNDLE_BYTES}`);
  }
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  const files: StateFile[] = [];
  let offset = 0;
  const field = (what: string): Buffer => {
    if (buf.length - offset < LENGTH_BYTES) {
      throw new BundleError(`bundle is truncated in the length of ${what} of file ${files.length + 1}`);
    }
    const length = buf.readBigUInt64BE(offset);
    offset += LENGTH_BYTES;
    if (length > BigInt(buf.length - offset)) {
      throw new BundleError(`bundle is truncated in ${what} of file ${files.length + 1}`);
    }
    const value = buf.subarray(offset, offset + Number(length));
    offset += value.length;
    return value;
  };
  while (offset < buf.length) {
    if (files.length === MAX_BUNDLE_FILES)
      throw new BundleError(`bundle has more than ${MAX_BUNDLE_FILES} files`);
    const rawPath = field("the path");
    let path: string;
    try {
      path = utf8.decode(rawPath);
    } catch {
      throw new BundleError(`path of file ${files.length + 1} is not valid UTF-8`);
    }
    // Copy: the caller's buffer may be reused, and a file must not pin the whole transfer.
    files.push({ path, content: Buffer.from(field("the content")) });
  }
  checkFiles(files);
  return { files };
}

export function bundleDigest(bundle: Bundle): string {
  return digestOf(encodeBundle(bundle));
}

/** The digest of an encoding (equal to bundleDigest of the bundle it decodes to). */
export function digestOf(encoding: Uint8Array): string {
  return `sha256:${createHash("sha256").update(encoding).digest("hex")}`;
}

function lengthOf(n: number): Buffer {
  const b = Buffer.alloc(LENGTH_BYTES);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** Checks files that claim to be sorted: valid paths, strictly ascending, no file under a file. */
function checkFiles(files: readonly StateFile[]): void {
  if (files.length > MAX_BUNDLE_FILES)
    throw new BundleError(`bundle has more than ${MAX_BUNDLE_FILES} files`);
  let size = 0;
  let previous: Buffer | undefined;
  const paths = new Set<string>();
  for (const file of files) {
    const reason = invalidPathReason(file.path);
    if (reason) throw new BundleError(`refusing bundle path ${JSON.stringify(file.path)}: ${reason}`);
    const current = Buffer.from(file.path, "utf8");
    if (previous && Buffer.compare(previous, current) >= 0) {
      throw new BundleError(
        Buffer.compare(previous, current) === 0
          ? `bundle lists ${JSON.stringify(file.path)} twice`
          : `bundle is not sorted at ${JSON.stringify(file.path)}`,
      );
    }
    previous = current;
    paths.add(file.path);
    size += 2 * LENGTH_BYTES + current.length + file.content.length;
  }
  if (size > MAX_BUNDLE_BYTES) {
    throw new BundleError(`bundle is ${size} bytes, more than the limit of ${MAX_BUNDLE_BYTES}`);
  }
  // "a" and "a/b" cannot both be files: one would have to be a directory.
  for (const path of paths) {
    for (let i = path.indexOf("/"); i !== -1; i = path.indexOf("/", i + 1)) {
      if (paths.has(path.slice(0, i))) {
        throw new BundleError(
          `bundle has both a file ${JSON.stringify(path.slice(0, i))} and a file under it`,
        );
      }
    }
  }
}
