// Writes the files of a configMap, secret, downwardAPI or projected volume the way the
// kubelet's AtomicWriter (pkg/volume/util/atomic_writer.go) does: into a fresh timestamped
// directory, switched in with one rename of the `..data` symlink, with each visible entry a
// symlink through `..data`. A reader (an app watching its token or config) therefore sees
// either the old or the new set of files, never a mix, and the update reaches containers
// that bind-mounted the volume directory.
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, readlink, rename, rm, symlink, writeFile, chmod } from "node:fs/promises";
import { dirname, join } from "node:path";

export interface FileProjection {
  data: Buffer;
  mode: number;
}

const DATA_LINK = "..data";

function digest(payload: ReadonlyMap<string, FileProjection>): string {
  const h = createHash("sha256");
  for (const [path, f] of [...payload].sort(([a], [b]) => (a < b ? -1 : 1))) {
    h.update(`${path}\0${f.mode}\0${f.data.length}\0`).update(f.data);
  }
  return h.digest("hex");
}

/** Validates a projected path as the apiserver does: relative, no `..` element. */
function checkPath(path: string): void {
  if (!path || path.startsWith("/") || path.split("/").some((p) => p === ".." || p === "")) {
    throw new Error(`invalid volume file path "${path}"`);
  }
}

/** Writes the payload into dir; returns false when the content was already there. */
export async function writeAtomically(
  dir: string,
  payload: ReadonlyMap<string, FileProjection>,
): Promise<boolean> {
  for (const path of payload.keys()) checkPath(path);
  await mkdir(dir, { recursive: true });
  const sum = digest(payload);
  const current = await readlink(join(dir, DATA_LINK)).catch(() => undefined);
  const marker = current ? await readFile(join(dir, current, "..digest"), "utf8").catch(() => "") : "";
  if (marker === sum) return false;

  const version = `..${new Date().toISOString().replace(/[:.]/g, "_")}.${sum.slice(0, 8)}`;
  const versionDir = join(dir, version);
  await rm(versionDir, { recursive: true, force: true });
  for (const [path, f] of payload) {
    const file = join(versionDir, path);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, f.data);
    await chmod(file, f.mode);
  }
  await writeFile(join(versionDir, "..digest"), sum);

  const tmpLink = join(dir, `${DATA_LINK}_tmp`);
  await rm(tmpLink, { force: true });
  await symlink(version, tmpLink);
  await rename(tmpLink, join(dir, DATA_LINK));

  const top = new Set([...payload.keys()].map((p) => p.split("/")[0]!));
  for (const name of top) {
    const link = join(dir, name);
    const target = await readlink(link).catch(() => undefined);
    if (target !== join(DATA_LINK, name)) {
      await rm(link, { recursive: true, force: true });
      await symlink(join(DATA_LINK, name), link);
    }
  }
  for (const entry of await readdir(dir)) {
    if (entry.startsWith("..") ? entry !== DATA_LINK && entry !== version : !top.has(entry)) {
      await rm(join(dir, entry), { recursive: true, force: true });
    }
  }
  return true;
}
