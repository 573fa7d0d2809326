// Where this pod's state came from, kept beside the state so that a restarted sidecar
// confirms the same source (and the handler keeps reason RecoveredFromPeer rather than
// Initialized). It lives under the reserved prefix, so it is never part of the bundle, and
// it names the digest it is about: for any other state it says nothing.
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { open, rename, writeFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { isDigest } from "../state/bundle.ts";
import { RESERVED_PREFIX } from "../state/paths.ts";
import { isErrno } from "../state/store.ts";

const RECORD_FILE = `${RESERVED_PREFIX}-source.json`;

export interface SourceRecord {
  /** The peer pod the state was recovered from. */
  source: string;
  digest: string;
}

/** Replaces the record atomically (temp file + rename). */
export async function writeSourceRecord(dir: string, record: SourceRecord): Promise<void> {
  const temp = join(dir, `${RESERVED_PREFIX}-tmp-${randomBytes(8).toString("hex")}`);
  await writeFile(temp, JSON.stringify(record), { mode: 0o644, flag: "wx" });
  await rename(temp, join(dir, RECORD_FILE));
}

/** A record is about 150 bytes; anything larger is not one of ours. */
const MAX_RECORD_BYTES = 4096;

/**
 * The peer that state `digest` came from, or null: initialized in this pod, or unknown.
 *
 * The state directory is shared with the app's containers, which may put anything at the
 * record's path. So it is opened without following a symlink (O_NOFOLLOW), without waiting
 * for a writer (O_NONBLOCK: a FIFO would otherwise block the open forever and wedge the
 * confirmer), used only if it is a regular file, and read only up to MAX_RECORD_BYTES.
 * Anything else is no record.
 */
export async function sourceOf(dir: string, digest: string): Promise<string | null> {
  let handle: FileHandle;
  try {
    handle = await open(
      join(dir, RECORD_FILE),
      constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
    );
  } catch (err) {
    if (NO_RECORD.some((code) => isErrno(err, code))) return null;
    throw err;
  }
  let text: string;
  try {
    const info = await handle.stat();
    if (!info.isFile() || info.size > MAX_RECORD_BYTES) return null;
    const buffer = Buffer.alloc(MAX_RECORD_BYTES + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    if (bytesRead > MAX_RECORD_BYTES) return null;
    text = buffer.toString("utf8", 0, bytesRead);
  } finally {
    await handle.close();
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  const record = parsed as Partial<SourceRecord> | null;
  const matches = typeof record?.source === "string" && isDigest(record.digest) && record.digest === digest;
  return matches ? (record.source as string) : null;
}

/** Errors of the open that mean "no usable record here": absent, a symlink, unreadable. */
const NO_RECORD = ["ENOENT", "ELOOP", "EACCES", "ENXIO", "EISDIR", "ENOTDIR"];
