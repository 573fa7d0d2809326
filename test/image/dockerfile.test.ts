// The project's image as test/cluster/image/build.sh builds it: the repository's Dockerfile,
// built with buildah FROM the node:24 base images the script assembles (Debian bookworm plus
// the Node.js binary from npm). The cluster's pods run this archive; here we read it as an OCI
// image layout and check that it is what the Dockerfile says: the runtime stage's user,
// entrypoint and files, the base's Node.js version, and a build step of each stage in its history.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");
const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
const lock = JSON.parse(readFileSync(join(REPO_ROOT, "package-lock.json"), "utf8")) as {
  packages: Record<string, { version: string }>;
};

interface Descriptor {
  digest: string;
  mediaType: string;
  annotations?: Record<string, string>;
}
interface ImageConfig {
  config: {
    User?: string;
    Entrypoint?: string[];
    Env?: string[];
    WorkingDir?: string;
    Labels?: Record<string, string>;
  };
  history?: { created_by?: string }[];
}

/** The instruction keywords of the Dockerfile's last stage, after its FROM. */
function runtimeStage(): string[] {
  const lines = readFileSync(join(REPO_ROOT, "Dockerfile"), "utf8")
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const from = lines.map((l) => l.split(/\s+/)[0]!.toUpperCase()).lastIndexOf("FROM");
  return lines.slice(from + 1).map((l) => l.split(/\s+/)[0]!.toUpperCase());
}

function build(): { lines: string[]; stderr: string; ms: number } {
  const started = Date.now();
  const r = spawnSync("bash", [join(REPO_ROOT, "test/cluster/image/build.sh")], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`image/build.sh failed (${r.status}):\n${r.stderr}`);
  return { lines: r.stdout.trim().split("\n"), stderr: r.stderr, ms: Date.now() - started };
}

class Layout {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }
  blob<T>(digest: string): T {
    return JSON.parse(
      readFileSync(join(this.dir, "blobs/sha256", digest.replace("sha256:", "")), "utf8"),
    ) as T;
  }
  /** The files of every layer, as tar lists them (GNU tar detects the compression). */
  files(layers: Descriptor[]): string[] {
    return layers.flatMap((l) => {
      const blob = join(this.dir, "blobs/sha256", l.digest.replace("sha256:", ""));
      const r = spawnSync("tar", ["-tf", blob], { encoding: "utf8", maxBuffer: 64 << 20 });
      if (r.status !== 0) throw new Error(`tar -tf ${blob}: ${r.stderr}`);
      return r.stdout.split("\n").map((f) => f.replace(/^\.\//, ""));
    });
  }
}

function unpack(archive: string): Layout {
  const dir = mkdtempSync(join(tmpdir(), "cha-image-"));
  const r = spawnSync("tar", ["-xf", archive, "-C", dir]);
  if (r.status !== 0) throw new Error(`tar -xf ${archive} failed`);
  return new Layout(dir);
}

function image(layout: Layout) {
  const top = JSON.parse(readFileSync(join(layout.dir, "index.json"), "utf8")) as { manifests: Descriptor[] };
  const manifest = layout.blob<{ config: Descriptor; layers: Descriptor[] }>(top.manifests[0]!.digest);
  return { top, manifest, config: layout.blob<ImageConfig>(manifest.config.digest) };
}

describe("the image from the repository's Dockerfile (test/cluster/image/build.sh)", () => {
  let built: ReturnType<typeof build>;
  const layouts: Layout[] = [];

  beforeAll(() => {
    built = build();
  });
  afterAll(() => {
    for (const l of layouts) rmSync(l.dir, { recursive: true, force: true });
  });

  it("names the project's image and the slim base image, each with an OCI archive", () => {
    const refs = built.lines.map((l) => l.split(" ")[0]);
    expect(refs).toEqual([
      `ghcr.io/coordinator-ha/coordinator-ha:${pkg.version}`,
      "docker.io/library/node:24-bookworm-slim",
    ]);
  });

  it("is the Dockerfile's runtime stage: user 65532, the CLI as entrypoint, dist/ and production node_modules", () => {
    const layout = unpack(built.lines[0]!.split(" ")[1]!);
    layouts.push(layout);
    const { top, manifest, config } = image(layout);
    expect(top.manifests[0]!.annotations?.["org.opencontainers.image.ref.name"]).toContain(pkg.version);
    expect(config.config.User).toBe("65532:65532");
    expect(config.config.Entrypoint).toEqual(["node", "/app/dist/cli.js"]);
    expect(config.config.WorkingDir).toBe("/app");
    expect(config.config.Env).toContain("NODE_ENV=production");
    expect(config.config.Labels?.["org.opencontainers.image.title"]).toBe("coordinator-ha");
    // The history ends with the runtime stage's instructions, in the Dockerfile's order.
    const history = (config.history ?? []).map(
      (h) => /#\(nop\) (\w+)/.exec(h.created_by ?? "")?.[1] ?? "RUN",
    );
    expect(history.slice(-runtimeStage().length)).toEqual(runtimeStage());
    expect(config.history?.some((h) => /COPY dir:\w+ in \.\/dist/.test(h.created_by ?? ""))).toBe(true);
    const files = layout.files(manifest.layers);
    expect(files).toContain("app/dist/cli.js");
    expect(files).toContain("app/package.json");
    expect(files).toContain("app/node_modules/express/package.json");
    // --omit=dev: no devDependency in the runtime stage.
    expect(files.filter((f) => f.startsWith("app/node_modules/vitest/"))).toEqual([]);
    expect(files.filter((f) => f.startsWith("app/node_modules/typescript/"))).toEqual([]);
    // The base: Debian's root file system and Node.js where the official images keep it.
    expect(files).toContain("usr/local/bin/node");
    expect(files).toContain("etc/debian_version");
  });

  it("runs on the Node.js version that package-lock.json pins for the project", () => {
    const layout = unpack(built.lines[1]!.split(" ")[1]!);
    layouts.push(layout);
    const { config } = image(layout);
    expect(config.config.Env).toContain(`NODE_VERSION=${lock.packages["node_modules/node"]!.version}`);
  });

  it("is taken from the cache when no source changed", () => {
    const again = build();
    expect(again.lines).toEqual(built.lines);
    expect(again.stderr).toMatch(/coordinator-ha:[^ ]+: cached/);
  });
});
