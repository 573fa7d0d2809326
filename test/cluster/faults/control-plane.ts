// Restarting a control-plane component of the local cluster the way an operator's upgrade or a
// crash does: the running process (found through the launcher's pid file) is stopped, stays down
// for a while, and is started again with its exact command line; the pid file then names the new
// process, so that `cluster:down` stops it as usual.
import { readFileSync } from "node:fs";
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
  /**
   * Ends the supervision of the other components, which goes on after the restart (one may
   * exit later, once its watches give up); returns every component it started again.
   */
  stopSupervising(): Promise<string[]>;
}

/** The last lines of a control-plane component's log, for a failed test's output. */
export function logTail(name: string, lines = 30): string {
  try {
    return readFileSync(join(paths.logs, `${name}.log`), "utf8")
      .trimEnd()
      .split("\n")
      .slice(-lines)
      .join("\n");
  } catch (err) {
    return `(no log: ${(err as Error).message})`;
  }
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
  const downMs = Date.now() - stoppedAt;
  const started: string[] = [];
  const superviseOnce = async () => {
    const now: string[] = [];
    for (const other of others) {
      if (runningComponent(other.name)) continue;
      const [cmd, ...rest] = other.cmdline;
      console.log(`${other.name} exited; its last lines:\n${logTail(other.name, 15)}`);
      // Appended, so that the exit's lines stay in the log.
      await spawnDetached(other.name, cmd!, rest, join(paths.logs, `${other.name}.log`));
      now.push(other.name);
    }
    if (now.length > 0) {
      console.log(`started again after the ${component} restart, as a supervisor would: ${now.join(", ")}`);
    }
    started.push(...now);
    return now;
  };
  const restartedOthers = await superviseOnce();
  let supervising = true;
  const loop = (async () => {
    while (supervising) {
      await sleep(2000);
      if (supervising) await superviseOnce();
    }
  })();
  return {
    component,
    downMs,
    restartedOthers,
    stopSupervising: async () => {
      supervising = false;
      await loop;
      return started;
    },
  };
}
