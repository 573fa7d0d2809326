// What the local cluster may change on the host, as one comparable snapshot: network
// namespaces, links, routes, mounts, cgroups, the sysctls that the kubelet sets, and the
// host's iptables rules. cluster:up records it before it starts anything; the cluster tests
// compare it with the host after cluster:down (test/cluster/lifecycle/down.test.ts).
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface HostState {
  netns: string[];
  links: string[];
  routes: string[];
  mounts: string[];
  cgroups: string[];
  sysctls: Record<string, string>;
  iptables: string[];
}

const SYSCTLS = ["vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops", "net/ipv4/ip_forward"];

function lines(cmd: string, args: string[]): string[] {
  return execFileSync(cmd, args, { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.trim() !== "");
}

export function hostState(): HostState {
  const mountinfo = readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter(Boolean);
  const cgroupMounts = mountinfo
    .map((l) => l.split(" - "))
    .filter(([, fs]) => fs?.startsWith("cgroup"))
    .map(([left]) => left!.split(" ")[4]!);
  return {
    netns: lines("ip", ["netns", "list"])
      .map((l) => l.split(" ")[0]!)
      .sort(),
    links: lines("ip", ["-o", "link", "show"])
      .map((l) => l.split(": ")[1]!.split("@")[0]!)
      .sort(),
    routes: lines("ip", ["route", "show"]).sort(),
    // Mount point and source: the kernel's ids change with every mount.
    mounts: mountinfo.map((l) => `${l.split(" ")[4]} ${l.split(" - ")[1]?.split(" ")[1]}`).sort(),
    cgroups: cgroupMounts
      .flatMap((m) =>
        readdirSync(m, { withFileTypes: true })
          .filter((e) => e.isDirectory())
          .map((e) => join(m, e.name)),
      )
      .sort(),
    sysctls: Object.fromEntries(SYSCTLS.map((k) => [k, readFileSync(`/proc/sys/${k}`, "utf8").trim()])),
    // Rules without their packet counters.
    iptables: lines("iptables-save", [])
      .filter((l) => !l.startsWith("#"))
      .map((l) => l.replace(/\[\d+:\d+\]/, ""))
      .sort(),
  };
}

/** What `after` has that `before` had not, and the reverse, field by field; empty when equal. */
export function hostStateDiff(before: HostState, after: HostState): string[] {
  const diff: string[] = [];
  for (const key of ["netns", "links", "routes", "mounts", "cgroups", "iptables"] as const) {
    for (const x of after[key]) if (!before[key].includes(x)) diff.push(`${key}: added ${x}`);
    for (const x of before[key]) if (!after[key].includes(x)) diff.push(`${key}: removed ${x}`);
  }
  for (const [k, v] of Object.entries(before.sysctls)) {
    if (after.sysctls[k] !== v) diff.push(`sysctl ${k}: ${v} -> ${after.sysctls[k]}`);
  }
  return diff;
}
