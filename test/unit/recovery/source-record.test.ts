import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sourceOf, writeSourceRecord } from "../../../src/recovery/source-record.ts";
import { readBundle } from "../../../src/state/store.ts";

const A = `sha256:${"a".repeat(64)}`;
const B = `sha256:${"b".repeat(64)}`;
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cha-source-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const UNKNOWN = { source: null, failedPeers: [] };
const failedPeers = [
  { pod: "coordinator-1", reason: "no answer within 15000 ms" },
  { pod: "coordinator-3", reason: "ECONNRESET: aborted" },
];
const recordPath = () => join(dir, ".coordinator-ha-source.json");

describe("source record", () => {
  it("names the peer for the digest it was written for, and nothing for another", async () => {
    await writeSourceRecord(dir, { source: "coordinator-0", digest: A, failedPeers: [] });
    expect(await sourceOf(dir, A)).toEqual({ source: "coordinator-0", failedPeers: [] });
    expect(await sourceOf(dir, B)).toEqual(UNKNOWN);
    await writeSourceRecord(dir, { source: "coordinator-2", digest: B, failedPeers });
    expect(await sourceOf(dir, B)).toEqual({ source: "coordinator-2", failedPeers });
  });

  it("is never part of the state bundle, and leaves no temp file", async () => {
    await writeSourceRecord(dir, { source: "coordinator-0", digest: A, failedPeers });
    expect((await readBundle(dir)).files).toEqual([]);
    expect(await readdir(dir)).toEqual([".coordinator-ha-source.json"]);
  });

  it("says nothing without a record, or with a broken one", async () => {
    expect(await sourceOf(dir, A)).toEqual(UNKNOWN);
    await writeFile(recordPath(), "{");
    expect(await sourceOf(dir, A)).toEqual(UNKNOWN);
  });

  it("reads a record without failed peers (written by an older sidecar) as none failed", async () => {
    await writeFile(recordPath(), JSON.stringify({ source: "coordinator-0", digest: A }));
    expect(await sourceOf(dir, A)).toEqual({ source: "coordinator-0", failedPeers: [] });
  });

  it("keeps 8 failed peers with 200-character reasons of the longest encoding", async () => {
    const longest = Array.from({ length: 8 }, (_, i) => ({
      pod: `coordinator-${i + 1}`,
      reason: "\ud800".repeat(200),
    }));
    await writeSourceRecord(dir, { source: "coordinator-0", digest: A, failedPeers: longest });
    expect(await sourceOf(dir, A)).toEqual({ source: "coordinator-0", failedPeers: longest });
  });
});

// The state directory is shared with the app's containers: whatever they put at the
// record's path must not wedge or mislead the sidecar.
describe("source record planted by the app", () => {
  const record = () => join(dir, ".coordinator-ha-source.json");

  it.each([
    ["not a list", { pod: "coordinator-1", reason: "x" }],
    ["a peer with a control character", [{ pod: "coordinator-1", reason: "reset\u001b[2J" }]],
    ["a peer with another field", [{ pod: "coordinator-1", reason: "x", state: "c2VjcmV0" }]],
    ["a peer that is no pod name", [{ pod: "Coordinator 1", reason: "x" }]],
    ["nine peers", Array.from({ length: 9 }, () => ({ pod: "coordinator-1", reason: "x" }))],
  ])(
    "reads failed peers that break the handler's rules (%s) as none, and keeps the source",
    async (_why, bad) => {
      await writeFile(record(), JSON.stringify({ source: "coordinator-0", digest: A, failedPeers: bad }));
      expect(await sourceOf(dir, A)).toEqual({ source: "coordinator-0", failedPeers: [] });
    },
  );

  it("does not block on a FIFO at its path", async () => {
    execFileSync("mkfifo", [record()]);
    expect(await sourceOf(dir, A)).toEqual(UNKNOWN);
  });

  it("does not follow a symlink at its path", async () => {
    const elsewhere = join(dir, "elsewhere.json");
    await writeFile(elsewhere, JSON.stringify({ source: "coordinator-9", digest: A }));
    await symlink(elsewhere, record());
    expect(await sourceOf(dir, A)).toEqual(UNKNOWN);
  });

  it("ignores a directory, and a file too large to be a record", async () => {
    await mkdir(record());
    expect(await sourceOf(dir, A)).toEqual(UNKNOWN);
    await rm(record(), { recursive: true });
    await writeFile(
      record(),
      JSON.stringify({ source: "coordinator-0", digest: A, pad: "x".repeat(16 * 1024) }),
    );
    expect(await sourceOf(dir, A)).toEqual(UNKNOWN);
  });
});
