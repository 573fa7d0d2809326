// Faults inside one Coordinator pod of the real node stack, made from the host: every container
// shares the host's PID view, so a pod's processes, its network namespace (nsenter) and its
// state directory (/proc/<pid>/root) are all reachable from here, and its veth's host side
// lives in its node's network namespace (`ckn-<node>`, launcher/nodes.ts).
import { execFile } from "node:child_process";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { DEFAULT_STATE_DIR, PEER_PORT } from "../../../src/names.ts";
import { SidecarEnv } from "../../../src/recovery/sidecar-env.ts";
import { WORKERS } from "../launcher/config.ts";
import { cliProcesses } from "./processes.ts";

const run = promisify(execFile);

async function sh(cmd: string, args: string[]): Promise<string> {
  try {
    return (await run(cmd, args, { timeout: 30_000 })).stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${cmd} ${args.join(" ")}: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

/** The PID of a pod's recovery sidecar (`cli.js recover`), or undefined while none runs. */
export function sidecarPid(namespace: string, pod: string): number | undefined {
  return cliProcesses("recover", [
    `${SidecarEnv.podNamespace}=${namespace}\0`,
    `${SidecarEnv.podName}=${pod}\0`,
  ])[0];
}

/** Runs a command in the network namespace of the process `pid` (a pod's). */
export const inPodNetwork = (pid: number, cmd: string, args: string[]) =>
  sh("nsenter", ["--target", String(pid), "--net", "--", cmd, ...args]);

/** The kernel's default TCP send buffer sizes (min, default, max), as every network namespace starts. */
const TCP_WMEM = "4096 16384 4194304";
/** A send buffer this small keeps most of a large answer in the sending process. */
const SMALL_TCP_WMEM = "4096 16384 32768";

/**
 * Slows the pod's peer API answers (TCP source port cha-peer) to `rate` (tc's units, e.g.
 * "48kbit") and leaves all its other traffic alone: a transfer from this pod takes seconds, so
 * a fault can hit it in the middle, while the pod answers its users and probes at full speed.
 * It also caps the namespace's TCP send buffers at 32 KiB: the kernel would otherwise take a
 * whole answer of a few hundred KiB at once (the queue ahead of a slow link drops nothing, so
 * the buffer grows), and a process killed after that still gets its answer out.
 */
export async function throttlePeerAnswers(pid: number, rate: string): Promise<void> {
  await inPodNetwork(pid, "sysctl", ["-qw", `net.ipv4.tcp_wmem=${SMALL_TCP_WMEM}`]);
  const tc = (...args: string[]) => inPodNetwork(pid, "tc", args);
  await tc("qdisc", "replace", "dev", "eth0", "root", "handle", "1:", "htb", "default", "10", "r2q", "10000");
  await tc("class", "add", "dev", "eth0", "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit");
  await tc(
    "class",
    "add",
    "dev",
    "eth0",
    "parent",
    "1:",
    "classid",
    "1:20",
    "htb",
    "rate",
    rate,
    "ceil",
    rate,
  );
  await tc(
    ...["filter", "add", "dev", "eth0", "parent", "1:", "protocol", "ip", "prio", "1", "u32"],
    ...["match", "ip", "sport", String(PEER_PORT), "0xffff", "flowid", "1:20"],
  );
}

export async function unthrottle(pid: number): Promise<void> {
  await inPodNetwork(pid, "tc", ["qdisc", "del", "dev", "eth0", "root"]).catch(() => undefined);
  await inPodNetwork(pid, "sysctl", ["-qw", `net.ipv4.tcp_wmem=${TCP_WMEM}`]);
}

export interface PeerConnection {
  /** The caller's address and port (hex, as the kernel writes them). */
  peer: string;
  /**
   * "open" while the server may still write (ESTABLISHED); "closing" once it has handed the
   * kernel its whole answer and closed its end (FIN_WAIT1 and later): a peer killed then still
   * gets its answer out, as the kernel sends what it holds.
   */
  state: "open" | "closing";
  /** Bytes of the answer written but not yet acknowledged by the caller (Send-Q). */
  sendQ: number;
}

/**
 * The connections to the pod's peer API with their send queues, from the kernel's table of the
 * pod's network namespace (/proc/<pid>/net/tcp and tcp6). `ss state established` misses
 * them: the caller asks for `Connection: close`, so the server closes its end as soon as the
 * kernel has the answer, and the rest of the transfer runs in FIN_WAIT1.
 */
export async function peerConnections(pid: number): Promise<PeerConnection[]> {
  const port = PEER_PORT.toString(16).toUpperCase().padStart(4, "0");
  const found: PeerConnection[] = [];
  for (const table of ["tcp", "tcp6"]) {
    const text = await readFile(`/proc/${pid}/net/${table}`, "utf8");
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue ...
      const [, local, remote, st, queues] = line.trim().split(/\s+/);
      // 0A is LISTEN, 07 CLOSE (the socket is gone).
      if (!local?.endsWith(`:${port}`) || !st || st === "0A" || st === "07" || !remote || !queues) continue;
      found.push({
        peer: remote,
        state: st === "01" ? "open" : "closing",
        sendQ: parseInt(queues.split(":")[0]!, 16),
      });
    }
  }
  return found;
}

/** The host side of the pod's veth (in its node's network namespace), and that namespace. */
export async function hostVeth(pid: number, node: string): Promise<{ netns: string; link: string }> {
  const worker = WORKERS.find((w) => w.name === node);
  if (!worker) throw new Error(`no worker node ${node} (the real node stack's nodes: CHA_NODE_STACK=real)`);
  const own = await inPodNetwork(pid, "ip", ["-o", "link", "show", "dev", "eth0"]);
  const peerIndex = /eth0@if(\d+)/.exec(own)?.[1];
  if (!peerIndex) throw new Error(`cannot read the veth peer of eth0: ${own}`);
  const links = await sh("ip", ["-n", worker.netns, "-o", "link", "show"]);
  const link = new RegExp(`^${peerIndex}: ([^@:]+)[@:]`, "m").exec(links)?.[1];
  if (!link) throw new Error(`no link with index ${peerIndex} in ${worker.netns}`);
  return { netns: worker.netns, link };
}

/** Sets the host side of a pod's veth down (the pod's network cut) or up again. */
export async function setLink(veth: { netns: string; link: string }, state: "up" | "down"): Promise<void> {
  await sh("ip", ["-n", veth.netns, "link", "set", "dev", veth.link, state]);
}

/**
 * `path` as the process `pid` sees it, from the host: under /proc/<pid>/root, with every
 * symlink on the way resolved inside that root (the image's /var/run -> /run would otherwise
 * lead to the host's /run).
 */
export async function inProcessRoot(pid: number, path: string): Promise<string> {
  const root = `/proc/${pid}/root`;
  const parts = path.split("/").filter(Boolean);
  let at = "";
  for (let hops = 0; parts.length > 0;) {
    const next = `${at}/${parts.shift()!}`;
    const info = await lstat(`${root}${next}`);
    if (!info.isSymbolicLink()) {
      at = next;
      continue;
    }
    if (++hops > 40) throw new Error(`too many symlinks in ${path}`);
    const target = await readlink(`${root}${next}`);
    parts.unshift(...target.split("/").filter(Boolean));
    if (target.startsWith("/")) at = "";
  }
  return `${root}${at}`;
}

/** Every path in the pod's state directory (as its process `pid` sees it), sorted. */
export async function stateTree(pid: number, stateDir = DEFAULT_STATE_DIR): Promise<string[]> {
  const dir = await inProcessRoot(pid, stateDir);
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .map((e) => `${relative(dir, join(e.parentPath, e.name))}${e.isDirectory() ? "/" : ""}`)
    .sort();
}
