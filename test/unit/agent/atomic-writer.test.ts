import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { writeAtomically } from "../../cluster/agent/pod/atomic-writer.ts";

const files = (entries: Record<string, string>, mode = 0o644) =>
  new Map(Object.entries(entries).map(([k, v]) => [k, { data: Buffer.from(v), mode }]));

describe("atomic volume writer", () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "atomic-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("publishes files through the ..data symlink, with their modes", async () => {
    expect(await writeAtomically(dir, files({ token: "t1", "sub/ca.crt": "ca" }, 0o600))).toBe(true);
    expect(readFileSync(join(dir, "token"), "utf8")).toBe("t1");
    expect(readFileSync(join(dir, "sub/ca.crt"), "utf8")).toBe("ca");
    expect(readlinkSync(join(dir, "token"))).toBe("..data/token");
    expect(statSync(join(dir, "token")).mode & 0o777).toBe(0o600);
  });

  it("does nothing when the content is unchanged, and swaps in a new version otherwise", async () => {
    await writeAtomically(dir, files({ token: "t1", old: "x" }));
    const first = readlinkSync(join(dir, "..data"));
    expect(await writeAtomically(dir, files({ token: "t1", old: "x" }))).toBe(false);
    expect(await writeAtomically(dir, files({ token: "t2" }))).toBe(true);
    expect(readlinkSync(join(dir, "..data"))).not.toBe(first);
    expect(readFileSync(join(dir, "token"), "utf8")).toBe("t2");
    // The old version and the entry that left the payload are gone.
    expect(readdirSync(dir).sort()).toEqual(["..data", readlinkSync(join(dir, "..data")), "token"].sort());
  });

  it("refuses a path that escapes the volume", async () => {
    await expect(writeAtomically(dir, files({ "../evil": "x" }))).rejects.toThrow(
      'invalid volume file path "../evil"',
    );
  });
});
