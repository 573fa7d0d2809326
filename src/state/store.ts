// Reads and writes a bundle in a state directory. The directory is shared by the app and
// the sidecar; both use this module, so that there is one definition of "the state".
//
// Writes never produce partial state and never overwrite existing state:
// - the whole bundle is validated, and the directory checked, before anything is written;
// - each file is written to a temp file in its final directory, flushed, and then published
//   with link(2), which fails when the name exists (a no-clobber rename), so a concurrent
//   writer (the app initialized by its user, the sidecar recovering) cannot be overwritten;
// - a failure removes what this write created.
import { constants } from "node:fs";
import { link, mkdir, open, readdir, readlink, stat, unlink, type FileHandle } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import {
  BundleError,
  bundleDigest,
  createBundle,
  MAX_BUNDLE_BYTES,
  type Bundle,
  type StateFile,
} from "./bundle.ts";
import { DATA_LINK, isReservedName, publishedTarget, RESERVED_PREFIX } from "./paths.ts";

/**
 * The app and the sidecar run as different users in one pod, and each must read what the
 * other wrote. The directory is a pod-private tmpfs, so world-readable stays inside the pod.
 */
const FILE_MODE = 0o644;
const DIR_MODE = 0o755;

/** The directory already holds state; nothing was written. */
export class StateExistsError extends Error {
  readonly dir: string;
  constructor(dir: string) {
    super(`the state directory ${dir} already holds state; refusing to overwrite it`);
    this.name = "StateExistsError";
    this.dir = dir;
  }
}

/**
 * The bundle of `dir`: its regular files, recursively, without coordinator-ha's own entries.
 * An empty bundle means "no state". A symlink or any other special file is refused
 * (BundleError): following it could read outside the directory, and skipping it would
 * silently transfer less than the app keeps. The one exception is the sidecar's own layout of
 * a swapped-in bundle (layout.ts): a top-level `<name> -> .coordinator-ha-data/<name>` is
 * read as the file or directory it points to, which is what the app sees.
 */
export async function readBundle(dir: string): Promise<Bundle> {
  const files: StateFile[] = [];
  let total = 0;
  // Resolved once, so that every published name is read from the same version: the bundle is
  // one version even while a swap publishes the next.
  const version = await readlink(join(dir, DATA_LINK)).catch((err: unknown) => {
    if (isErrno(err, "ENOENT") || isErrno(err, "EINVAL")) return undefined;
    throw err;
  });
  // `rel`: the path in the bundle; `at`: where it is on disk, relative to `dir`.
  const walk = async (rel: string, at: string): Promise<void> => {
    const entries = await readdir(at === "" ? dir : join(dir, at), { withFileTypes: true });
    for (const entry of entries) {
      if (isReservedName(entry.name)) continue;
      const path = rel === "" ? entry.name : `${rel}/${entry.name}`;
      let resolved = at === "" ? entry.name : `${at}/${entry.name}`;
      let kind: "file" | "dir" | "other" = entry.isDirectory() ? "dir" : entry.isFile() ? "file" : "other";
      if (
        rel === "" &&
        version !== undefined &&
        entry.isSymbolicLink() &&
        (await readlink(join(dir, path))) === publishedTarget(path)
      ) {
        resolved = `${version}/${path}`;
        const target = await stat(join(dir, resolved)).catch((err: unknown) => {
          // A name the published version dropped, in the instant before the swap removes it.
          if (isErrno(err, "ENOENT")) return undefined;
          throw err;
        });
        if (!target) continue;
        kind = target.isDirectory() ? "dir" : target.isFile() ? "file" : "other";
      }
      if (kind === "dir") {
        await walk(path, resolved);
      } else if (kind === "file") {
        const content = await readRegularFile(join(dir, resolved), MAX_BUNDLE_BYTES - total);
        total += content.length;
        files.push({ path, content });
      } else {
        throw new BundleError(
          `the state directory ${dir} holds ${entry.isSymbolicLink() ? "a symlink" : "a special file"} at ` +
            `${JSON.stringify(path)}; only regular files and directories can be state`,
        );
      }
    }
  };
  await walk("", "");
  return createBundle(files);
}

/** Whether `dir` holds state, and its digest. */
export async function stateDigest(dir: string): Promise<string | undefined> {
  const bundle = await readBundle(dir);
  return bundle.files.length > 0 ? bundleDigest(bundle) : undefined;
}

/**
 * Writes a bundle's files into a new directory `target` (its parent must exist), each
 * flushed: the building block of swaps and of kept (staged, refused) bundles.
 */
export async function writeFilesInto(target: string, bundle: Bundle): Promise<void> {
  await mkdir(target, { mode: DIR_MODE });
  for (const file of bundle.files) {
    const path = join(target, file.path);
    await mkdir(dirname(path), { recursive: true, mode: DIR_MODE });
    await writeDurably(path, file.content);
  }
}

/**
 * Writes `bundle` into `dir`, which must hold no state. Throws StateExistsError when it
 * does (or when state appears while writing), BundleError when the bundle or the directory
 * is unfit; in both cases the directory is left as it was.
 */
export async function writeBundle(dir: string, bundle: Bundle): Promise<void> {
  const checked = createBundle(bundle.files);
  if (checked.files.length === 0) throw new BundleError("refusing to write an empty bundle: it is no state");
  // readBundle refuses symlinks and special files, and any regular file is state: once it
  // reports no state, every entry on the way to a target is a real directory of `dir`.
  if ((await readBundle(dir)).files.length > 0) throw new StateExistsError(dir);

  const staged: { temp: string; target: string }[] = [];
  const published: string[] = [];
  try {
    for (const file of checked.files) {
      const target = join(dir, file.path);
      await mkdir(dirname(target), { recursive: true, mode: DIR_MODE });
      const temp = join(dirname(target), `${RESERVED_PREFIX}-tmp-${randomBytes(8).toString("hex")}`);
      staged.push({ temp, target });
      await writeDurably(temp, file.content);
    }
    for (const { temp, target } of staged) {
      await link(temp, target);
      published.push(target);
    }
  } catch (err) {
    for (const target of published) await unlinkIfPresent(target);
    if (isErrno(err, "EEXIST")) throw new StateExistsError(dir);
    throw err;
  } finally {
    for (const { temp } of staged) await unlinkIfPresent(temp);
  }
}

async function readRegularFile(path: string, limit: number): Promise<Buffer> {
  // O_NOFOLLOW: a symlink swapped in after readdir is refused, not followed.
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const tooLarge = () =>
      new BundleError(`the state in ${dirname(path)} is larger than the limit of ${MAX_BUNDLE_BYTES} bytes`);
    if ((await handle.stat()).size > limit) throw tooLarge();
    // The file may have grown since the stat.
    const content = await handle.readFile();
    if (content.length > limit) throw tooLarge();
    return content;
  } finally {
    await handle.close();
  }
}

async function writeDurably(path: string, content: Buffer): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, "wx", FILE_MODE);
    await handle.writeFile(content);
    // On tmpfs this is free; on a disk it keeps a crash from publishing an empty file.
    await handle.sync();
  } finally {
    await handle?.close();
  }
}

async function unlinkIfPresent(path: string): Promise<void> {
  await unlink(path).catch((err: unknown) => {
    if (!isErrno(err, "ENOENT")) throw err;
  });
}

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === code;
}
