// The pod sandbox: a network namespace per pod, wired to the node bridge by a veth pair,
// with the pod's own address (the job a CNI bridge plugin does for a container runtime).
// Every name the agent creates starts with "cha", so that leftovers of a crashed run are
// found by prefix.
import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { mkdir, open, rm, writeFile } from "node:fs/promises";
import { run, type CommandError } from "../host/exec.ts";

export const NETNS_PREFIX = "cha-";
export const VETH_PREFIX = "chav";

export interface BridgeConfig {
  bridge: string;
  /** The bridge's own address, the pods' default gateway. */
  gateway: string;
  prefixLength: number;
}

export interface Sandbox {
  netns: string;
  veth: string;
  ip: string;
}

/** Network namespace name for a pod: the full UID, so that two pods of one name never clash. */
export const netnsName = (uid: string) => `${NETNS_PREFIX}${uid}`;

/** Host end of the pod's veth; interface names are at most 15 bytes. */
export const vethName = (uid: string) =>
  `${VETH_PREFIX}${createHash("sha256").update(uid).digest("hex").slice(0, 11)}`;

/** The /etc/netns directory whose files `ip netns exec` binds over the pod's /etc. */
export const netnsEtcDir = (netns: string) => `/etc/netns/${netns}`;

async function linkExists(name: string): Promise<boolean> {
  return (await run(["ip", "link", "show", "dev", name], { allowFailure: true })).code === 0;
}

/**
 * Creates the bridge with the gateway address, or reuses it (the launcher may have created it
 * before the apiserver, so that the apiserver could bind the gateway address). Also enables
 * IP forwarding, which pod -> Service -> pod traffic needs.
 */
export async function ensureBridge(cfg: BridgeConfig): Promise<void> {
  if (!(await linkExists(cfg.bridge))) {
    await run(["ip", "link", "add", cfg.bridge, "type", "bridge"]);
  }
  const addrs = await run(["ip", "-o", "-4", "addr", "show", "dev", cfg.bridge]);
  if (!addrs.stdout.includes(` ${cfg.gateway}/`)) {
    await run(["ip", "addr", "add", `${cfg.gateway}/${cfg.prefixLength}`, "dev", cfg.bridge]);
  }
  await run(["ip", "link", "set", cfg.bridge, "up"]);
  await writeFile("/proc/sys/net/ipv4/ip_forward", "1\n");
}

/** Creates the pod's namespace, veth and address; on failure, removes what it created. */
export async function createSandbox(cfg: BridgeConfig, uid: string, ip: string): Promise<Sandbox> {
  const sandbox: Sandbox = { netns: netnsName(uid), veth: vethName(uid), ip };
  const { netns, veth } = sandbox;
  try {
    await run(["ip", "netns", "add", netns]);
    await run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns]);
    await run(["ip", "link", "set", veth, "master", cfg.bridge, "up"]);
    // Hairpin: the bridge may send a frame back out of the port it came from, which a pod
    // reaching itself through its own Service needs.
    await run(["ip", "link", "set", veth, "type", "bridge_slave", "hairpin", "on"]);
    await run(["ip", "-n", netns, "addr", "add", `${ip}/${cfg.prefixLength}`, "dev", "eth0"]);
    await run(["ip", "-n", netns, "link", "set", "eth0", "up"]);
    await run(["ip", "-n", netns, "link", "set", "lo", "up"]);
    await run(["ip", "-n", netns, "route", "add", "default", "via", cfg.gateway]);
    await mkdir(netnsEtcDir(netns), { recursive: true });
    return sandbox;
  } catch (err) {
    await deleteSandbox(netns, veth);
    throw err;
  }
}

/**
 * Writes the pod's /etc/hosts. `ip netns exec` bind-mounts the file's inode over each
 * container's /etc/hosts when the container starts, so an update must rewrite that same
 * inode in place (a rename would leave running containers on the old file). One write and a
 * truncate: a reader could see a mix only during those two calls, and getaddrinfo rereads
 * the file on every lookup. Only the sandbox's creation creates the file: an update never
 * recreates it (or its directory) for a sandbox that is being removed.
 */
export async function writeHostsFile(netns: string, content: string, create = false): Promise<void> {
  const flags = constants.O_WRONLY | (create ? constants.O_CREAT : 0);
  const file = await open(`${netnsEtcDir(netns)}/hosts`, flags, 0o644);
  try {
    const data = Buffer.from(content);
    await file.write(data, 0, data.length, 0);
    await file.truncate(data.length);
  } finally {
    await file.close();
  }
}

/** Processes still inside a pod's network namespace (a runtime kills a container's cgroup). */
export async function netnsPids(netns: string): Promise<number[]> {
  const r = await run(["ip", "netns", "pids", netns], { allowFailure: true });
  return r.stdout
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 1);
}

/** Kills whatever still runs in the namespace, then removes namespace, veth and /etc/netns entry. */
export async function deleteSandbox(netns: string, veth?: string): Promise<void> {
  for (const pid of await netnsPids(netns)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  await run(["ip", "netns", "del", netns], { allowFailure: true });
  // Deleting the namespace destroys eth0 and with it the host end; this covers a veth whose
  // peer never made it into the namespace.
  if (veth && (await linkExists(veth))) {
    await run(["ip", "link", "del", veth]).catch((err: CommandError) => {
      if (!/Cannot find device/.test(err.result.stderr)) throw err;
    });
  }
  await rm(netnsEtcDir(netns), { recursive: true, force: true });
}

/** The agent's namespaces and veths that exist now, for cleaning up a crashed run. */
export async function listSandboxLeftovers(): Promise<{ netns: string[]; veths: string[] }> {
  const ns = await run(["ip", "netns", "list"], { allowFailure: true });
  const netns = ns.stdout
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith(NETNS_PREFIX));
  const links = await run(["ip", "-o", "link", "show"], { allowFailure: true });
  const veths = [...links.stdout.matchAll(/^\d+: ([^:@]+)[@:]/gm)]
    .map((m) => m[1]!)
    .filter((n) => n.startsWith(VETH_PREFIX));
  return { netns, veths };
}
