// Who listens on a TCP port, read from /proc (no ss/lsof needed), so that a port clash is
// reported with the process that holds the port.
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { readProcess } from "./processes.ts";

export interface Listener {
  port: number;
  /** Undefined when the socket's owner is not visible (another network or pid namespace). */
  pid: number | undefined;
  command: string | undefined;
}

const TCP_LISTEN = "0A";

/** Socket inodes that listen on `port` (IPv4 and IPv6, any address). */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      // cols: sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
      const local = cols[1];
      if (!local || cols[3] !== TCP_LISTEN) continue;
      if (parseInt(local.slice(local.lastIndexOf(":") + 1), 16) === port) inodes.add(cols[9]!);
    }
  }
  return inodes;
}

function socketOwners(inodes: Set<string>): Map<string, number> {
  const owners = new Map<string, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${entry}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) owners.set(m[1]!, Number(entry));
      } catch {
        // The fd closed while we looked.
      }
    }
  }
  return owners;
}

/** The listeners on any of `ports`; empty when all are free. */
export function findListeners(ports: number[]): Listener[] {
  const byPort = new Map(ports.map((p) => [p, listeningInodes(p)]));
  const all = new Set([...byPort.values()].flatMap((s) => [...s]));
  if (all.size === 0) return [];
  const owners = socketOwners(all);
  const listeners: Listener[] = [];
  for (const [port, inodes] of byPort) {
    if (inodes.size === 0) continue;
    const pids = new Set([...inodes].map((i) => owners.get(i)));
    for (const pid of pids) {
      const command = pid === undefined ? undefined : readProcess(pid)?.cmdline.slice(0, 2).join(" ");
      listeners.push({ port, pid, command });
    }
  }
  return listeners;
}
