import { mkdtemp, readdir, readFile, readlink, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bundleDigest, createBundle } from "../../../src/state/bundle.ts";
import { keepBundle, keptBundle, REFUSED, STAGED, swapBundle } from "../../../src/state/layout.ts";
import { DATA_LINK } from "../../../src/state/paths.ts";
import { readBundle, writeBundle } from "../../../src/state/store.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cha-layout-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const bundle = (files: Record<string, string>) =>
  createBundle(Object.entries(files).map(([path, content]) => ({ path, content: Buffer.from(content) })));

describe("swapBundle (the AtomicWriter layout)", () => {
  it("replaces an app-written directory with the new version, seen through the same names", async () => {
    await writeBundle(dir, bundle({ "a.json": "1", "keys/k": "1", "gone.txt": "1" }));
    const next = bundle({ "a.json": "2", "keys/k": "2", "new.txt": "2" });
    await swapBundle(dir, next);
    expect(bundleDigest(await readBundle(dir))).toBe(bundleDigest(next));
    expect(await readFile(join(dir, "a.json"), "utf8")).toBe("2");
    expect(await readFile(join(dir, "keys", "k"), "utf8")).toBe("2");
    expect((await readdir(dir)).sort()).toEqual([".coordinator-ha", DATA_LINK, "a.json", "keys", "new.txt"]);
    expect(await readlink(join(dir, "a.json"))).toBe(`${DATA_LINK}/a.json`);
    // Only the published version is kept.
    expect(await readdir(join(dir, ".coordinator-ha", "versions"))).toHaveLength(1);
  });

  it("publishes every shared name at once: a reader through the data link never sees two versions", async () => {
    await swapBundle(dir, bundle({ a: "0", b: "0" }));
    let stop = false;
    const seen = new Set<string>();
    const reader = (async () => {
      while (!stop) {
        try {
          const version = await readlink(join(dir, DATA_LINK));
          const [a, b] = await Promise.all(["a", "b"].map((n) => readFile(join(dir, version, n), "utf8")));
          seen.add(`${a}/${b}`);
        } catch {
          // The version was removed after the next swap: read again.
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    for (let i = 1; i <= 30; i++) await swapBundle(dir, bundle({ a: String(i), b: String(i) }));
    stop = true;
    await reader;
    expect(seen.size).toBeGreaterThan(1);
    for (const pair of seen) expect(pair.split("/")[0]).toBe(pair.split("/")[1]);
    expect(bundleDigest(await readBundle(dir))).toBe(bundleDigest(bundle({ a: "30", b: "30" })));
  });

  it("sees a write of the app over a published name (temp file + rename) as the new content", async () => {
    await swapBundle(dir, bundle({ "a.json": "1" }));
    await writeFile(join(dir, ".tmp-app"), "app");
    await import("node:fs/promises").then((fs) => fs.rename(join(dir, ".tmp-app"), join(dir, "a.json")));
    expect((await readBundle(dir)).files.map((f) => f.content.toString())).toEqual(["app"]);
  });

  it("refuses a symlink that is not its own", async () => {
    await mkdir(join(dir, "x"));
    await import("node:fs/promises").then((fs) => fs.symlink("/etc/passwd", join(dir, "p")));
    await expect(readBundle(dir)).rejects.toThrow(/a symlink at "p"/);
  });
});

describe("kept bundles (staged proposals, refused writes)", () => {
  it("keeps a bundle under its digest, outside the bundle of the directory", async () => {
    const b = bundle({ "a.json": "refused" });
    await keepBundle(dir, REFUSED, bundleDigest(b), b);
    await keepBundle(dir, STAGED, bundleDigest(b), b);
    expect(bundleDigest((await keptBundle(dir, REFUSED, bundleDigest(b)))!)).toBe(bundleDigest(b));
    expect(await readdir(join(dir, ".coordinator-ha", "refused"))).toEqual([bundleDigest(b).slice(7)]);
    expect((await readBundle(dir)).files).toEqual([]);
    expect(await keptBundle(dir, STAGED, `sha256:${"0".repeat(64)}`)).toBeUndefined();
  });
});
