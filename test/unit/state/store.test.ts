import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BundleError, bundleDigest, createBundle, type Bundle } from "../../../src/state/bundle.ts";
import { readBundle, stateDigest, StateExistsError, writeBundle } from "../../../src/state/store.ts";

let root: string;
let dir: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "cha-store-"));
  dir = join(root, "state");
  await mkdir(dir);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const bundleOf = (files: Record<string, string>): Bundle =>
  createBundle(Object.entries(files).map(([path, content]) => ({ path, content: Buffer.from(content) })));

/** Every entry below `d`, reserved ones included, as sorted relative paths. */
async function tree(d: string): Promise<string[]> {
  return (await readdir(d, { recursive: true })).sort();
}

describe("readBundle", () => {
  it("reads the regular files recursively and skips coordinator-ha's own entries", async () => {
    await mkdir(join(dir, "keys"));
    await writeFile(join(dir, "state.json"), "{}");
    await writeFile(join(dir, "keys", "seed"), "secret");
    await writeFile(join(dir, ".coordinator-ha-tmp-abc"), "half-written");
    await writeFile(join(dir, "keys", ".coordinator-ha-tmp-def"), "half-written");
    const bundle = await readBundle(dir);
    expect(bundle).toEqual(bundleOf({ "keys/seed": "secret", "state.json": "{}" }));
    expect(await stateDigest(dir)).toBe(bundleDigest(bundle));
  });

  it("reports no state for an empty directory, even with empty subdirectories", async () => {
    await mkdir(join(dir, "sub"));
    expect((await readBundle(dir)).files).toEqual([]);
    expect(await stateDigest(dir)).toBeUndefined();
  });

  it("refuses a symlinked file or directory instead of following or skipping it", async () => {
    await writeFile(join(root, "outside"), "not state");
    await symlink(join(root, "outside"), join(dir, "link"));
    await expect(readBundle(dir)).rejects.toThrow(/symlink at "link"/);
    await rm(join(dir, "link"));
    await symlink(root, join(dir, "dirlink"));
    await expect(readBundle(dir)).rejects.toThrow(BundleError);
  });
});

describe("writeBundle", () => {
  it("writes a bundle that reads back with the same digest, and leaves no temp files", async () => {
    const bundle = bundleOf({ "a.json": "{}", "deep/er/b": "bee" });
    await writeBundle(dir, bundle);
    expect(bundleDigest(await readBundle(dir))).toBe(bundleDigest(bundle));
    expect(await readFile(join(dir, "deep/er/b"), "utf8")).toBe("bee");
    expect(await tree(dir)).toEqual(["a.json", "deep", "deep/er", "deep/er/b"]);
  });

  it("never overwrites existing state", async () => {
    await writeFile(join(dir, "mine"), "the app's state");
    await expect(writeBundle(dir, bundleOf({ other: "x" }))).rejects.toThrow(StateExistsError);
    await expect(writeBundle(dir, bundleOf({ mine: "theirs" }))).rejects.toThrow(StateExistsError);
    expect(await tree(dir)).toEqual(["mine"]);
    expect(await readFile(join(dir, "mine"), "utf8")).toBe("the app's state");
  });

  it("refuses to write through a symlinked directory, and writes nothing", async () => {
    const outside = join(root, "outside");
    await mkdir(outside);
    await symlink(outside, join(dir, "sub"));
    await expect(writeBundle(dir, bundleOf({ a: "1", "sub/x": "2" }))).rejects.toThrow(/symlink at "sub"/);
    expect(await readdir(outside)).toEqual([]);
    expect(await tree(dir)).toEqual(["sub"]);
  });

  it("refuses the empty bundle: it is no state", async () => {
    await expect(writeBundle(dir, createBundle([]))).rejects.toThrow(/empty bundle/);
  });

  it("re-validates a bundle that was not built by createBundle", async () => {
    const hostile: Bundle = { files: [{ path: "../escape", content: Buffer.from("x") }] };
    await expect(writeBundle(dir, hostile)).rejects.toThrow(/"\.\." segment/);
    expect(await readdir(root)).toEqual(["state"]);
  });

  it("lets exactly one of two racing writers win, with its whole state", async () => {
    const one = bundleOf({ "state.json": "one" });
    const two = bundleOf({ "state.json": "two" });
    const results = await Promise.allSettled([writeBundle(dir, one), writeBundle(dir, two)]);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r) => r.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(StateExistsError);
    const winner = results[0]!.status === "fulfilled" ? one : two;
    expect(bundleDigest(await readBundle(dir))).toBe(bundleDigest(winner));
    expect(await tree(dir)).toEqual(["state.json"]);
  });
});
