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

describe("source record", () => {
  it("names the peer for the digest it was written for, and nothing for another", async () => {
    await writeSourceRecord(dir, { source: "coordinator-0", digest: A });
    expect(await sourceOf(dir, A)).toBe("coordinator-0");
    expect(await sourceOf(dir, B)).toBeNull();
    await writeSourceRecord(dir, { source: "coordinator-2", digest: B });
    expect(await sourceOf(dir, B)).toBe("coordinator-2");
  });

  it("is never part of the state bundle, and leaves no temp file", async () => {
    await writeSourceRecord(dir, { source: "coordinator-0", digest: A });
    expect((await readBundle(dir)).files).toEqual([]);
    expect(await readdir(dir)).toEqual([".coordinator-ha-source.json"]);
  });

  it("says null without a record, or with a broken one", async () => {
    expect(await sourceOf(dir, A)).toBeNull();
    await writeFile(join(dir, ".coordinator-ha-source.json"), "{");
    expect(await sourceOf(dir, A)).toBeNull();
  });
});

// The state directory is shared with the app's containers: whatever they put at the
// record's path must not wedge or mislead the sidecar.
describe("source record planted by the app", () => {
  const record = () => join(dir, ".coordinator-ha-source.json");

  it("does not block on a FIFO at its path", async () => {
    execFileSync("mkfifo", [record()]);
    expect(await sourceOf(dir, A)).toBeNull();
  });

  it("does not follow a symlink at its path", async () => {
    const elsewhere = join(dir, "elsewhere.json");
    await writeFile(elsewhere, JSON.stringify({ source: "coordinator-9", digest: A }));
    await symlink(elsewhere, record());
    expect(await sourceOf(dir, A)).toBeNull();
  });

  it("ignores a directory, and a file too large to be a record", async () => {
    await mkdir(record());
    expect(await sourceOf(dir, A)).toBeNull();
    await rm(record(), { recursive: true });
    await writeFile(record(), JSON.stringify({ source: "coordinator-0", digest: A, pad: "x".repeat(8192) }));
    expect(await sourceOf(dir, A)).toBeNull();
  });
});
