// Image "pulls": an image reference resolves to a local program through the mapping file
// (images.yaml). Pure apart from loadImageMap, so the Docker rules for entrypoint/cmd and
// the reference normalization are table-tested.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { parse } from "yaml";

export interface ImageEntry {
  entrypoint?: string[];
  cmd?: string[];
  env?: Record<string, string>;
  workingDir?: string;
}

export interface ImageMap {
  /** Where the mapping came from, for error messages. */
  source: string;
  /** Keyed by normalized repository, e.g. docker.io/library/busybox. */
  entries: Map<string, ImageEntry>;
}

export interface ResolvedImage {
  /** The image as a runtime reports it: docker.io/library/busybox:latest. */
  image: string;
  imageID: string;
  argv: string[];
  env: Record<string, string>;
  workingDir: string;
}

export interface ParsedReference {
  repository: string;
  tag?: string;
  digest?: string;
}

/** Normalizes an image reference as the Docker reference library does (ParseNormalizedNamed). */
export function parseReference(ref: string): ParsedReference {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const slash = rest.indexOf("/");
  const first = slash >= 0 ? rest.slice(0, slash) : "";
  const hasDomain = slash >= 0 && (first.includes(".") || first.includes(":") || first === "localhost");
  let repository = hasDomain ? rest : `docker.io/${rest}`;
  if (!hasDomain && slash < 0) repository = `docker.io/library/${rest}`;
  return { repository: repository.toLowerCase(), ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

export function normalizedImage(ref: string): string {
  const p = parseReference(ref);
  if (p.digest) return `${p.repository}${p.tag ? `:${p.tag}` : ""}@${p.digest}`;
  return `${p.repository}:${p.tag ?? "latest"}`;
}

export class ImagePullError extends Error {}

/**
 * The program a container runs, with Docker's rules: `command` replaces the entrypoint (and
 * drops the image's cmd); `args` replaces the cmd.
 */
export function resolveImage(
  map: ImageMap,
  ref: string,
  container: { command?: string[]; args?: string[] },
): ResolvedImage {
  const parsed = parseReference(ref);
  const entry = map.entries.get(parsed.repository);
  if (!entry) {
    throw new ImagePullError(
      `failed to pull image "${ref}": the node agent runs images as local programs, and ${map.source} ` +
        `has no entry for repository "${parsed.repository}"; add one there (or pass --images FILE)`,
    );
  }
  const argv = container.command
    ? [...container.command, ...(container.args ?? [])]
    : [...(entry.entrypoint ?? []), ...(container.args ?? entry.cmd ?? [])];
  const digest = createHash("sha256").update(JSON.stringify(entry)).digest("hex");
  return {
    image: normalizedImage(ref),
    imageID: `${parsed.repository}@sha256:${digest}`,
    argv,
    env: { ...(entry.env ?? {}) },
    workingDir: entry.workingDir ?? "/",
  };
}

function stringList(value: unknown, where: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw new Error(`${where} must be a list of strings`);
  }
  return value;
}

/** Parses the mapping file's text; ${repo} expands to the repository root. */
export function parseImageMap(text: string, source: string, repoRoot: string): ImageMap {
  const doc = parse(text) as { images?: Record<string, Record<string, unknown>> } | null;
  if (!doc?.images || typeof doc.images !== "object") {
    throw new Error(`${source}: expected a top-level "images" map of repository -> entry`);
  }
  const expand = (s: string) => s.replaceAll("${repo}", repoRoot);
  const entries = new Map<string, ImageEntry>();
  for (const [repo, raw] of Object.entries(doc.images)) {
    const where = `${source}: images["${repo}"]`;
    const entry: ImageEntry = {};
    const entrypoint = stringList(raw?.["entrypoint"], `${where}.entrypoint`);
    const cmd = stringList(raw?.["cmd"], `${where}.cmd`);
    if (entrypoint) entry.entrypoint = entrypoint.map(expand);
    if (cmd) entry.cmd = cmd.map(expand);
    const env = raw?.["env"];
    if (env !== undefined) {
      if (typeof env !== "object" || env === null) throw new Error(`${where}.env must be a map`);
      entry.env = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, expand(String(v))]));
    }
    if (typeof raw?.["workingDir"] === "string") entry.workingDir = expand(raw["workingDir"]);
    entries.set(parseReference(repo).repository, entry);
  }
  return { source, entries };
}

export function loadImageMap(file: string, displayName: string, repoRoot: string): ImageMap {
  return parseImageMap(readFileSync(file, "utf8"), displayName, repoRoot);
}
