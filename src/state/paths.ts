// Which relative paths may name a file of a state bundle. A bundle arrives from another pod,
// so every path is hostile until it passes here: nothing may escape the state directory,
// and nothing may collide with coordinator-ha's own files in it.
import { Buffer } from "node:buffer";

/**
 * Names in the state directory that start with this prefix belong to coordinator-ha (temp
 * files of an atomic write, the sidecar's record of where the state came from). They are
 * never part of a bundle, and a bundle may not carry them.
 */
export const RESERVED_PREFIX = ".coordinator-ha";

/**
 * The symlink that names the published version of a swapped-in bundle (layout.ts). A top-level
 * name that links to `<DATA_LINK>/<name>` is a file or directory of the bundle.
 */
export const DATA_LINK = `${RESERVED_PREFIX}-data`;

/** What a top-level name of a published bundle links to. */
export function publishedTarget(name: string): string {
  return `${DATA_LINK}/${name}`;
}

/** Paths are compared and sorted as UTF-8 bytes; 1 KiB is far beyond any real state file name. */
export const MAX_PATH_BYTES = 1024;

/**
 * Why `path` cannot name a bundle file, or undefined when it can. A valid path is relative,
 * uses "/" as separator, and has only non-empty segments that are neither "." nor "..".
 */
export function invalidPathReason(path: string): string | undefined {
  if (path.length === 0) return "path is empty";
  if (Buffer.byteLength(path, "utf8") > MAX_PATH_BYTES) return `path is longer than ${MAX_PATH_BYTES} bytes`;
  // A lone surrogate would turn into U+FFFD on disk, so two paths could name one file.
  if (Buffer.from(path, "utf8").toString("utf8") !== path) return "path is not valid Unicode";
  if (path.includes("\0")) return "path contains a NUL byte";
  // A backslash is a separator on Windows and a trap everywhere else.
  if (path.includes("\\")) return "path contains a backslash";
  if (path.startsWith("/")) return "path is absolute";
  for (const segment of path.split("/")) {
    if (segment === "") return "path has an empty segment";
    if (segment === "." || segment === "..") return `path has a "${segment}" segment`;
    if (segment.startsWith(RESERVED_PREFIX)) return `path uses the reserved prefix ${RESERVED_PREFIX}`;
  }
  return undefined;
}

/** True for directory entries that coordinator-ha itself owns (see RESERVED_PREFIX). */
export function isReservedName(name: string): boolean {
  return name.startsWith(RESERVED_PREFIX);
}
