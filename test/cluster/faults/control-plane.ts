// Restarting a control-plane component of the local cluster the way an operator's upgrade or a
// crash does: the running process (found through the launcher's pid file) is stopped, stays down
// for a while, and is started again with its exact command line; the pid file then names the new
// process, so that `cluster:down` stops it as usual.
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { KubeConfig } from "@kubernetes/client-node";
import { paths } from "../launcher/config.ts";
import { runningComponent, spawnDetached, stopComponent } from "../launcher/processes.ts";
import { eventually, getJson } from "../kube.ts";

export type Component = "etcd" | "kube-apiserver";

/**
 * The control plane's processes. The first run saw kube-scheduler exit, without a line in its
 * log, while the apiserver was down: on a real control plane the kubelet restarts it.
 */
const SUPERVISED = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"];

export interface Restart {
  component: Component;
  /** From the stop to the apiserver serving from etcd again. */
  downMs: number;
  /** Other control-plane components that exited meanwhile and were started again. */
  restartedOthers: string[];
}

export async function restartComponent(
  kc: KubeConfig,
  component: Component,
  downForMs: number,
): Promise<Restart> {
  const running = runningComponent(component);
  if (!running) throw new Error(`${component} is not running (no pid file naming a process of this cluster)`);
  const [command, ...args] = running.cmdline;
  // The others, as their supervisor (the kubelet of a static pod) would restart them.
  const others = SUPERVISED.filter((n) => n !== component).flatMap((name) => {
    const p = runningComponent(name);
    return p ? [{ name, cmdline: p.cmdline }] : [];
  });
  const stoppedAt = Date.now();
  await stopComponent(component, { graceMs: 10_000, log: (m) => console.log(m) });
  await sleep(downForMs);
  await spawnDetached(component, command!, args, join(paths.logs, `${component}.log`));
  // A quorum read (resourceVersion unset) reaches etcd: it answers once both serve again.
  await eventually(
    `${component} restarted: the apiserver reads from etcd`,
    async () =>
      (await getJson<unknown>(kc, "/api/v1/namespaces/default").catch(() => undefined)) !== undefined
        ? true
        : undefined,
    { timeoutMs: 120_000, intervalMs: 500 },
  );
  const restartedOthers: string[] = [];
  for (const other of others) {
    if (runningComponent(other.name)) continue;
    const [cmd, ...rest] = other.cmdline;
    await spawnDetached(other.name, cmd!, rest, join(paths.logs, `${other.name}.log`));
    restartedOthers.push(other.name);
  }
  if (restartedOthers.length > 0) {
    console.log(
      `exited during the ${component} restart, started again as a supervisor would: ${restartedOthers.join(", ")}`,
    );
  }
  return { component, downMs: Date.now() - stoppedAt, restartedOthers };
}
