// Resident memory (VmRSS) of every component of a run, read from /proc: the control plane and
// node processes through the launcher's pid files, the release's handlers and webhooks, and the
// Coordinators' apps and sidecars, so that a soak can print it across the run and show it flat.
import { readFileSync } from "node:fs";
import { runningComponent } from "../launcher/processes.ts";
import { cliProcesses, serviceLinkPrefix } from "./processes.ts";

/** The launcher's components on either node stack; those not running are left out. */
const LAUNCHED = [
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "agent",
  "kubelet",
  "containerd",
  "kube-proxy",
];

function rssMiB(pid: number): number | undefined {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb === undefined ? undefined : Math.round(Number(kb) / 1024);
  } catch {
    return undefined;
  }
}

export type MemorySample = Record<string, number>;

/**
 * MiB per component; several processes of one kind (the handler's replicas, the Coordinators)
 * are reported as their largest, so that a leak in one of them shows.
 * `coordinatorEnv`: a `NAME=value` that only the Coordinators of the run have in their
 * environment (their Service link, e.g. COORDINATOR_READY_SERVICE_HOST=<ClusterIP>).
 */
export function sampleMemory(release: string, coordinatorEnv: string): MemorySample {
  const sample: MemorySample = {};
  for (const name of LAUNCHED) {
    const p = runningComponent(name);
    const rss = p && rssMiB(p.pid);
    if (rss !== undefined) sample[name] = rss;
  }
  const largest = (label: string, pids: number[]) => {
    const values = pids.map(rssMiB).filter((v): v is number => v !== undefined);
    if (values.length > 0) sample[label] = Math.max(...values);
  };
  largest("handler", cliProcesses("handler", serviceLinkPrefix(release)));
  largest("webhook", cliProcesses("webhook", serviceLinkPrefix(release)));
  // A whole entry: 10.0.0.1 must not match 10.0.0.12 (the `env` match is a prefix).
  largest("coordinator", cliProcesses("coordinator", `${coordinatorEnv}\0`));
  largest("recovery sidecar", cliProcesses("recover", `${coordinatorEnv}\0`));
  return sample;
}

/** A table: one row per component, one column per sample. */
export function formatMemory(samples: { label: string; sample: MemorySample }[]): string {
  const names = [...new Set(samples.flatMap((s) => Object.keys(s.sample)))];
  const width = Math.max(...names.map((n) => n.length));
  const header = `${"MiB".padEnd(width)}  ${samples.map((s) => s.label.padStart(8)).join(" ")}`;
  const rows = names.map(
    (n) => `${n.padEnd(width)}  ${samples.map((s) => String(s.sample[n] ?? "-").padStart(8)).join(" ")}`,
  );
  return [header, ...rows].join("\n");
}
