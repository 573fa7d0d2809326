// Removes everything the agent creates on the host: at startup (the leftovers of a run that
// crashed or was killed) and at shutdown. Idempotent, and found by name or location, not by
// the agent's memory: network namespaces and veths with the agent's prefix (and whatever
// still runs inside them), tmpfs mounts under the state dir, /etc/netns entries, and the
// iptables chains.
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { run } from "./exec.ts";
import { removeAll as removeIptables } from "../network/iptables.ts";
import { deleteSandbox, listSandboxLeftovers, NETNS_PREFIX } from "../network/sandbox.ts";

/** Mount points under dir, deepest first (/proc/self/mountinfo escapes spaces as \040). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  const points = info
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .map((p) => p.replace(/\\(\d{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))))
    .filter((p) => p.startsWith(`${dir}/`));
  return points.sort((a, b) => b.length - a.length);
}

export async function cleanHost(opts: { podsDir: string; log: Logger }): Promise<void> {
  const { netns, veths } = await listSandboxLeftovers();
  for (const ns of netns) {
    opts.log.info({ netns: ns }, "removing a leftover pod network namespace");
    await deleteSandbox(ns);
  }
  for (const veth of veths) {
    await run(["ip", "link", "del", veth], { allowFailure: true });
  }
  const etcNetns = await readdir("/etc/netns").catch(() => [] as string[]);
  for (const entry of etcNetns.filter((e) => e.startsWith(NETNS_PREFIX))) {
    await rm(join("/etc/netns", entry), { recursive: true, force: true });
  }
  for (const point of await mountsUnder(opts.podsDir)) {
    opts.log.info({ mount: point }, "unmounting a leftover pod volume");
    // Lazy: a process that still holds it must not keep the agent from cleaning up.
    await run(["umount", "-l", point], { allowFailure: true });
  }
  await rm(opts.podsDir, { recursive: true, force: true });
  await removeIptables();
}
