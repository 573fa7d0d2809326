// Where this pod's state came from, kept beside the state so that a restarted sidecar
// confirms the same source (and the handler keeps reason RecoveredFromPeer rather than
// Initialized). It lives under the reserved prefix, so it is never part of the bundle, and
// it names the digest it is about: for any other state it says nothing.
import { randomBytes } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
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

/** The peer that state `digest` came from, or null: initialized in this pod, or unknown. */
export async function sourceOf(dir: string, digest: string): Promise<string | null> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(join(dir, RECORD_FILE), "utf8"));
  } catch (err) {
    if (isErrno(err, "ENOENT") || err instanceof SyntaxError) return null;
    throw err;
  }
  const record = parsed as Partial<SourceRecord> | null;
  const matches = typeof record?.source === "string" && isDigest(record.digest) && record.digest === digest;
  return matches ? (record.source as string) : null;
}
