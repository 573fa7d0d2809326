// Helpers for the node agent's cluster tests: create pods, wait for their status, read their
// container logs, and look at what the agent left on the host.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CoreV1Api, type KubeConfig, type V1Pod, type V1PodCondition } from "@kubernetes/client-node";
import { INJECT_ANNOTATION } from "../../../src/names.ts";
import { netnsName, vethName } from "../agent/network/sandbox.ts";
import { run } from "../agent/host/exec.ts";
import { eventually } from "../kube.ts";
import { paths } from "../launcher/config.ts";

export type PodSpec = NonNullable<V1Pod["spec"]>;

/** Creates a pod that the product's webhook (should a test have installed it) leaves alone. */
export async function createPod(
  kc: KubeConfig,
  namespace: string,
  name: string,
  spec: PodSpec,
  labels: Record<string, string> = {},
): Promise<V1Pod> {
  return kc.makeApiClient(CoreV1Api).createNamespacedPod({
    namespace,
    body: { metadata: { name, labels, annotations: { [INJECT_ANNOTATION]: "false" } }, spec },
  });
}

export function readPod(kc: KubeConfig, namespace: string, name: string): Promise<V1Pod> {
  return kc.makeApiClient(CoreV1Api).readNamespacedPod({ namespace, name });
}

export function condition(pod: V1Pod, type: string): V1PodCondition | undefined {
  return pod.status?.conditions?.find((c) => c.type === type);
}

/** Waits until the pod satisfies `ok`, and returns it. */
export function waitForPod(
  kc: KubeConfig,
  namespace: string,
  name: string,
  what: string,
  ok: (pod: V1Pod) => boolean,
  timeoutMs = 60_000,
): Promise<V1Pod> {
  return eventually(
    `pod ${namespace}/${name}: ${what}`,
    async () => {
      const pod = await readPod(kc, namespace, name);
      return ok(pod) ? pod : undefined;
    },
    { timeoutMs },
  );
}

export const isReady = (pod: V1Pod) => condition(pod, "Ready")?.status === "True";

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
