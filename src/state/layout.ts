// Swapping a whole new bundle into a state directory at once, with the layout Kubernetes uses
// for ConfigMap and Secret volumes (AtomicWriter):
//
//   .coordinator-ha/versions/<id>/…      one complete version, written and flushed first
//   .coordinator-ha-data -> .coordinator-ha/versions/<id>
//   <name> -> .coordinator-ha-data/<name>   for every top-level name of the bundle
//
// Publishing a version is one rename(2) of the `.coordinator-ha-data` symlink: every name that
// the old and the new version share switches at the same instant, so a reader never sees
// files of two versions. A name the new version adds appears right after, one it drops goes
// right after. An app that reads several files and wants one version for all of them even
// across added names resolves `.coordinator-ha-data` once and reads below it.
//
// The first swap into a directory the app wrote itself (plain files) first moves the current
// content into the layout unchanged (each name replaced by a symlink to the same bytes), and
// only then publishes the new version, so the rule holds from the first update on.
//
// Everything here lives under the reserved prefix, so none of it is part of a bundle;
// readBundle (store.ts) follows exactly these symlinks and no others.
import { randomBytes } from "node:crypto";
import { lstat, mkdir, readdir, readlink, rename, rm, symlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { createBundle, type Bundle } from "./bundle.ts";
import { DATA_LINK, isReservedName, publishedTarget, RESERVED_PREFIX } from "./paths.ts";
import { isErrno, readBundle, writeFilesInto } from "./store.ts";

/** The sidecar's own directory in the state directory. */
export const SIDECAR_DIR = RESERVED_PREFIX;
const VERSIONS = `${SIDECAR_DIR}/versions`;
export const STAGED = `${SIDECAR_DIR}/staged`;
export const REFUSED = `${SIDECAR_DIR}/refused`;

/**
 * Publishes `bundle` as the directory's state at once (see above). The caller (the sidecar)
 * is the only one that swaps, one swap at a time.
 */
export async function swapBundle(dir: string, bundle: Bundle): Promise<void> {
  const checked = createBundle(bundle.files);
  if (!(await isPublished(dir))) {
    const current = await readBundle(dir);
    if (current.files.length > 0) await publish(dir, current);
  }
  await publish(dir, checked);
}

/** Whether every top-level entry of the bundle is one of our symlinks (or there is none). */
async function isPublished(dir: string): Promise<boolean> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (isReservedName(entry.name)) continue;
    if (!entry.isSymbolicLink() || (await readlink(join(dir, entry.name))) !== publishedTarget(entry.name)) {
      return false;
    }
  }
  return true;
}

async function publish(dir: string, bundle: Bundle): Promise<void> {
  const id = `${Date.now().toString(36)}-${randomBytes(6).toString("hex")}`;
  const version = `${VERSIONS}/${id}`;
  await mkdir(join(dir, VERSIONS), { recursive: true, mode: 0o755 });
  await writeFilesInto(join(dir, version), bundle);

  // The one atomic step.
  await replaceWithSymlink(dir, DATA_LINK, version);

  const names = new Set(bundle.files.map((f) => f.path.split("/")[0]!));
  for (const name of names) {
    const path = join(dir, name);
    const info = await lstat(path).catch((err: unknown) =>
      isErrno(err, "ENOENT") ? undefined : Promise.reject(err),
    );
    if (info?.isSymbolicLink() && (await readlink(path)) === publishedTarget(name)) continue;
    // rename(2) cannot replace a directory with a symlink: an app-written directory goes first.
    if (info?.isDirectory()) await rm(path, { recursive: true, force: true });
    await replaceWithSymlink(dir, name, publishedTarget(name));
  }
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (isReservedName(entry.name) || names.has(entry.name)) continue;
    await rm(join(dir, entry.name), { recursive: true, force: true });
  }
  for (const old of await readdir(join(dir, VERSIONS))) {
    if (old !== id) await rm(join(dir, VERSIONS, old), { recursive: true, force: true });
  }
}

async function replaceWithSymlink(dir: string, name: string, target: string): Promise<void> {
  const temp = join(dir, `${RESERVED_PREFIX}-tmp-${randomBytes(8).toString("hex")}`);
  await symlink(target, temp);
  try {
    await rename(temp, join(dir, name));
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/**
 * Keeps a bundle under `.coordinator-ha/<area>/<hex of its digest>/` (staged proposals,
 * refused writes), written completely before it appears under its name.
 */
export async function keepBundle(
  dir: string,
  area: typeof STAGED | typeof REFUSED,
  digest: string,
  bundle: Bundle,
) {
  const target = join(dir, area, digest.replace(/^sha256:/, ""));
  if (await lstat(target).catch(() => undefined)) return target;
  const temp = join(dir, area, `${RESERVED_PREFIX}-tmp-${randomBytes(8).toString("hex")}`);
  await mkdir(dirname(temp), { recursive: true, mode: 0o755 });
  try {
    await writeFilesInto(temp, bundle);
    await rename(temp, target);
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    // Another keep of the same digest won the race: same content, nothing lost.
    if (!isErrno(err, "ENOTEMPTY") && !isErrno(err, "EEXIST")) throw err;
  }
  return target;
}

/** A kept bundle, or undefined when there is none for `digest`. */
export async function keptBundle(
  dir: string,
  area: typeof STAGED | typeof REFUSED,
  digest: string,
): Promise<Bundle | undefined> {
  const path = join(dir, area, digest.replace(/^sha256:/, ""));
  if (!(await lstat(path).catch(() => undefined))?.isDirectory()) return undefined;
  return readBundle(path);
}

/** Removes staged bundles other than `keep`. */
export async function pruneStaged(dir: string, keep: ReadonlySet<string>): Promise<void> {
  const names = await readdir(join(dir, STAGED)).catch((err: unknown) => {
    if (isErrno(err, "ENOENT")) return [] as string[];
    throw err;
  });
  const hexes = new Set([...keep].map((d) => d.replace(/^sha256:/, "")));
  for (const name of names) {
    if (!hexes.has(name)) await rm(join(dir, STAGED, name), { recursive: true, force: true });
  }
}
