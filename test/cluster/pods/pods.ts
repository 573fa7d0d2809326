// Helpers for the node agent's cluster tests: create pods, wait for their status, read their
// container logs, and look at what the agent left on the host.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { netnsName, vethName } from "../agent/network/sandbox.ts";
import { run } from "../agent/host/exec.ts";
import { paths } from "../launcher/config.ts";

// Creating and waiting for pods is the same on either node stack (nodes/pods.ts).
export { condition, createPod, isReady, readPod, waitForPod, type PodSpec } from "../nodes/pods.ts";

/** A container's log file as the agent writes it (all runs, appended). */
export function containerLog(namespace: string, pod: string, container: string): string {
  const file = join(paths.agentState, "logs", `${namespace}_${pod}_${container}.log`);
  return existsSync(file) ? readFileSync(file, "utf8") : "";
}

/** What the agent has on the host for a pod UID: namespace, veth, /etc/netns entry, volumes. */
export async function hostTraces(uid: string): Promise<string[]> {
  const traces: string[] = [];
  const netns = (await run(["ip", "netns", "list"])).stdout;
  if (netns.includes(netnsName(uid))) traces.push(`network namespace ${netnsName(uid)}`);
  const links = await run(["ip", "link", "show", "dev", vethName(uid)], { allowFailure: true });
  if (links.code === 0) traces.push(`veth ${vethName(uid)}`);
  if (existsSync(`/etc/netns/${netnsName(uid)}`)) traces.push(`/etc/netns/${netnsName(uid)}`);
  if (existsSync(join(paths.agentState, "pods", uid))) traces.push(`pod directory for ${uid}`);
  return traces;
}

/** PIDs of processes whose command line contains marker. */
export function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmdline.includes(marker)) pids.push(Number(entry));
    } catch {
      // The process ended meanwhile.
    }
  }
  return pids;
}
