// The agent's configuration: flags, defaults and the host tools it needs, validated in one
// place, with errors that name the bad value and what to do about it.
import { accessSync, constants } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, InvalidArgumentError } from "commander";

export interface HostTools {
  ip: string;
  unshare: string;
  sh: string;
  nsenter: string;
}

export interface AgentConfig {
  kubeconfig: string;
  stateDir: string;
  /** The image mapping file, and how to name it in messages. */
  imagesFile: string;
  imagesDisplay: string;
  repoRoot: string;
  nodeName: string;
  /** The node's address: the bridge's own address, the pods' gateway. */
  nodeIP: string;
  bridge: string;
  podCIDR: string;
  prefixLength: number;
  maxPods: number;
  tools: HostTools;
}

/** The checkout this agent belongs to (its images map to programs in it). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

function findTool(name: string): string {
  for (const dir of (process.env["PATH"] ?? "")
    .split(":")
    .concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory.
    }
  }
  throw new Error(
    `${name} not found on PATH: run test/cluster/setup-host.sh (it installs iproute2, iptables and util-linux)`,
  );
}

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`"${v}" is not a positive integer`);
  return n;
};

export function parseConfig(argv: string[]): AgentConfig {
  const defaultImages = join(REPO_ROOT, "test/cluster/agent/images.yaml");
  const opts = new Command("node-agent")
    .description("Runs the pods bound to one Node as processes, and reports their status as the kubelet does")
    .requiredOption("--kubeconfig <file>", "kubeconfig of the cluster")
    .requiredOption("--state-dir <dir>", "where pod volumes, container logs and IP allocations live")
    .option("--images <file>", "image mapping file", defaultImages)
    .option("--node-name <name>", "name of the Node", "local-node")
    .option("--node-ip <ip>", "address of the node on the pod bridge", "10.244.0.1")
    .option("--bridge <name>", "the pod bridge", "cha0")
    .option("--pod-cidr <cidr>", "pod addresses", "10.244.0.0/24")
    .option("--max-pods <n>", "pods capacity", positiveInt, 110)
    .exitOverride()
    .parse(argv, { from: "user" })
    .opts<{
      kubeconfig: string;
      stateDir: string;
      images: string;
      nodeName: string;
      nodeIp: string;
      bridge: string;
      podCidr: string;
      maxPods: number;
    }>();
  if (process.getuid?.() !== 0) {
    throw new Error(
      "the node agent must run as root: it creates network namespaces, veths, mounts and iptables rules",
    );
  }
  const prefixLength = Number(opts.podCidr.split("/")[1]);
  if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(opts.podCidr) || prefixLength < 8 || prefixLength > 30) {
    throw new Error(`--pod-cidr "${opts.podCidr}" is not an IPv4 CIDR with a prefix length between 8 and 30`);
  }
  const imagesFile = resolve(opts.images);
  const rel = relative(REPO_ROOT, imagesFile);
  return {
    kubeconfig: resolve(opts.kubeconfig),
    stateDir: resolve(opts.stateDir),
    imagesFile,
    imagesDisplay: rel.startsWith("..") || isAbsolute(rel) ? imagesFile : rel,
    repoRoot: REPO_ROOT,
    nodeName: opts.nodeName,
    nodeIP: opts.nodeIp,
    bridge: opts.bridge,
    podCIDR: opts.podCidr,
    prefixLength,
    maxPods: opts.maxPods,
    tools: {
      ip: findTool("ip"),
      unshare: findTool("unshare"),
      sh: findTool("sh"),
      nsenter: findTool("nsenter"),
    },
  };
}
