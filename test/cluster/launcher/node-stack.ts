// Where build.sh and image/build.sh put the node stack: the binaries of the versions pinned in
// node/versions.txt (and k8s/go.mod for the kubelet and kube-proxy), and the image archives
// that every node's containerd imports.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "./config.ts";

/**
 * The image that cluster tests run plain pods with (sh, coreutils and node): the Dockerfile's
 * slim base, which image/build.sh assembles and every node imports.
 */
export const TEST_IMAGE = "docker.io/library/node:24-bookworm-slim";

export interface ImageArchive {
  /** The name pods use, e.g. ghcr.io/coordinator-ha/coordinator-ha:0.1.0. */
  reference: string;
  /** An OCI image layout archive for `ctr images import`. */
  archive: string;
}

export interface NodeStack {
  /** kubelet, kube-proxy (and the control plane's binaries). */
  k8sBin: string;
  runc: string;
  runcDir: string;
  /** containerd, containerd-shim-runc-v2, ctr. */
  containerdBin: string;
  cniBin: string;
  crictlDir: string;
  pauseImage: string;
  corednsImage: string;
  /** Imported into every node: pause, CoreDNS, the project's image, the base image for test pods. */
  images: ImageArchive[];
}

export function cacheRoot(): string {
  return join(process.env["XDG_CACHE_HOME"] || join(homedir(), ".cache"), "coordinator-ha");
}

/** name -> version, from test/cluster/node/versions.txt. */
export function nodeVersions(): Map<string, string> {
  const text = readFileSync(join(REPO_ROOT, "test/cluster/node/versions.txt"), "utf8");
  const versions = new Map<string, string>();
  for (const line of text.split("\n")) {
    const [name, , version] = line.trim().split(/\s+/);
    if (name && !name.startsWith("#") && version) versions.set(name, version);
  }
  return versions;
}

function nodeDir(name: string): string {
  const version = nodeVersions().get(name);
  if (!version) throw new Error(`test/cluster/node/versions.txt has no ${name}`);
  return join(cacheRoot(), "node", `${name}@${version}`);
}

export function crictlPath(): string {
  return join(nodeDir("crictl"), "crictl");
}

/** The node stack in build.sh's cache; the project's images come from `images`. */
export function nodeStack(k8sBin: string, images: ImageArchive[]): NodeStack {
  const versions = nodeVersions();
  const stack: NodeStack = {
    k8sBin,
    runc: join(nodeDir("runc"), "runc"),
    runcDir: nodeDir("runc"),
    containerdBin: nodeDir("containerd"),
    cniBin: nodeDir("cni-plugins"),
    crictlDir: nodeDir("crictl"),
    pauseImage: `registry.k8s.io/pause:${versions.get("pause")}`,
    corednsImage: `registry.k8s.io/coredns/coredns:${versions.get("coredns")}`,
    images: [],
  };
  stack.images = [
    { reference: stack.pauseImage, archive: join(nodeDir("pause"), "image.oci.tar") },
    { reference: stack.corednsImage, archive: join(nodeDir("coredns"), "image.oci.tar") },
    ...images,
  ];
  const missing = [
    join(k8sBin, "kubelet"),
    join(k8sBin, "kube-proxy"),
    stack.runc,
    join(stack.containerdBin, "containerd"),
    join(stack.cniBin, "bridge"),
    join(stack.crictlDir, "crictl"),
    ...stack.images.map((i) => i.archive),
  ].filter((f) => !existsSync(f));
  if (missing.length > 0) {
    throw new Error(`the node stack is incomplete (${missing.join(", ")}): run bash test/cluster/build.sh`);
  }
  return stack;
}

/**
 * Runs image/build.sh (which builds the project's image from its Dockerfile when its sources
 * changed) and returns the archives it prints. Its progress goes to stderr.
 */
export async function buildImages(signal?: AbortSignal): Promise<ImageArchive[]> {
  const child = spawn("bash", [join(REPO_ROOT, "test/cluster/image/build.sh")], {
    stdio: ["ignore", "pipe", "inherit"],
    detached: true,
  });
  const stop = () => {
    try {
      process.kill(-child.pid!, "SIGTERM");
    } catch {
      // Already exited.
    }
  };
  signal?.addEventListener("abort", stop, { once: true });
  let stdout = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  }).finally(() => signal?.removeEventListener("abort", stop));
  signal?.throwIfAborted();
  if (code !== 0)
    throw new Error(`test/cluster/image/build.sh failed (exit code ${code}); its output is above`);
  return stdout
    .trim()
    .split("\n")
    .map((l) => l.split(" "))
    .map(([reference, archive]) => ({ reference: reference!, archive: archive! }));
}
