// Where this pod's state came from, kept beside the state so that a restarted sidecar
// confirms the same source (and the handler keeps reason RecoveredFromPeer rather than
// Initialized), with the peers that failed to deliver it first (the confirmer reports them).
// It lives under the reserved prefix, so it is never part of the bundle, and it names the
// digest it is about: for any other state it says nothing.
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { open, rename, writeFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import type { FailedPeer } from "../handler/api.ts";
import { failedPeersProblem } from "../handler/request.ts";
import { isDigest } from "../state/bundle.ts";
import { RESERVED_PREFIX } from "../state/paths.ts";
import { isErrno } from "../state/store.ts";

const RECORD_FILE = `${RESERVED_PREFIX}-source.json`;

export interface SourceRecord {
  /** The peer pod the state was recovered from. */
  source: string;
  digest: string;
  /** The peers that failed to deliver it before `source` did (failed-peers.ts). */
  failedPeers: FailedPeer[];
}

/** Where a state came from, as the confirmer reports it. */
export interface Provenance {
  /** The peer pod, or null: initialized in this pod, or unknown. */
  source: string | null;
  failedPeers: FailedPeer[];
}

/** Replaces the record atomically (temp file + rename). */
export async function writeSourceRecord(dir: string, record: SourceRecord): Promise<void> {
  const temp = join(dir, `${RESERVED_PREFIX}-tmp-${randomBytes(8).toString("hex")}`);
  await writeFile(temp, JSON.stringify(record), { mode: 0o644, flag: "wx" });
  await rename(temp, join(dir, RECORD_FILE));
}

/**
 * A record is about 150 bytes, and under 11 KB with 8 failed peers whose reasons are at their
 * longest in JSON (200 lone surrogates, 6 bytes each); anything larger is not one of ours.
 */
const MAX_RECORD_BYTES = 16 * 1024;

const UNKNOWN: Provenance = { source: null, failedPeers: [] };

/**
 * Where state `digest` came from: the peer, and the peers that failed before it.
 *
 * The state directory is shared with the app's containers, which may put anything at the
 * record's path. So it is opened without following a symlink (O_NOFOLLOW), without waiting
 * for a writer (O_NONBLOCK: a FIFO would otherwise block the open forever and wedge the
 * confirmer), used only if it is a regular file, and read only up to MAX_RECORD_BYTES.
 * Anything else is no record; a list of failed peers that breaks the handler's rules is none.
 */
export async function sourceOf(dir: string, digest: string): Promise<Provenance> {
  let handle: FileHandle;
  try {
    handle = await open(
      join(dir, RECORD_FILE),
      constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
    );
  } catch (err) {
    if (NO_RECORD.some((code) => isErrno(err, code))) return UNKNOWN;
    throw err;
  }
  let text: string;
  try {
    const info = await handle.stat();
    if (!info.isFile() || info.size > MAX_RECORD_BYTES) return UNKNOWN;
    const buffer = Buffer.alloc(MAX_RECORD_BYTES + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    if (bytesRead > MAX_RECORD_BYTES) return UNKNOWN;
    text = buffer.toString("utf8", 0, bytesRead);
  } finally {
    await handle.close();
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return UNKNOWN;
  }
  const record = parsed as Partial<SourceRecord> | null;
  const matches = typeof record?.source === "string" && isDigest(record.digest) && record.digest === digest;
  if (!matches) return UNKNOWN;
  const failedPeers = failedPeersProblem(record.failedPeers) ? [] : record.failedPeers!;
  return { source: record.source!, failedPeers };
}

/** Errors of the open that mean "no usable record here": absent, a symlink, unreadable. */
const NO_RECORD = ["ENOENT", "ELOOP", "EACCES", "ENXIO", "EISDIR", "ENOTDIR"];
