// Detached processes with pid files, and stopping them so that nothing is left behind.
//
// Each component runs in its own session (and so its own process group), with its output in
// a log file, so it outlives `cluster:up` and a Ctrl-C in the terminal never reaches it. To
// stop one, we signal the leader, wait, then SIGKILL its process group and every descendant
// that we saw beforehand: a child that moved to its own session (as containerd's shims do)
// is still found through its parent.
import { spawn } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { basename, join } from "node:path";
import { STATE_DIR, paths } from "./config.ts";

export interface ProcessInfo {
  pid: number;
  ppid: number;
  pgid: number;
  /** Clock ticks since boot; with the pid it names one process even after pid reuse. */
  startTime: string;
  cmdline: string[];
}

/** Reads /proc/PID; undefined for a process that is gone or a zombie. */
export function readProcess(pid: number): ProcessInfo | undefined {
  let stat: string;
  let cmdline: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return undefined;
  }
  // The command name in parentheses may contain spaces and parentheses: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return undefined;
  return {
    pid,
    ppid: Number(fields[1]),
    pgid: Number(fields[2]),
    startTime: fields[19] ?? "",
    cmdline: cmdline.split("\0").filter((a) => a !== ""),
  };
}

export function listProcesses(): ProcessInfo[] {
  const procs: ProcessInfo[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const info = readProcess(Number(entry));
    if (info) procs.push(info);
  }
  return procs;
}

function isSame(p: ProcessInfo): boolean {
  return readProcess(p.pid)?.startTime === p.startTime;
}

/** Whether the process still has a /proc entry, even as a zombie that awaits its reaper. */
function isUnreaped(p: ProcessInfo): boolean {
  try {
    const stat = readFileSync(`/proc/${p.pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] === p.startTime;
  } catch {
    return false;
  }
}

const COMPONENT_EXECUTABLES = new Set([
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "containerd",
  "kubelet",
  "kube-proxy",
]);

/**
 * A process of this cluster: one of its executables, started with absolute paths under this
 * checkout's state directory. A `tail -f` of a log or a `kubectl --kubeconfig` is not one.
 */
export function isClusterProcess(p: ProcessInfo): boolean {
  const executable =
    COMPONENT_EXECUTABLES.has(basename(p.cmdline[0] ?? "")) ||
    // A worker node's namespace holder (launcher/nodes.ts).
    (basename(p.cmdline[0] ?? "") === "bash" && p.cmdline[1]?.endsWith("/node.sh") === true);
  return executable && p.cmdline.some((arg) => arg.includes(`${STATE_DIR}/`));
}

/** The process, the members of its process group, and all their descendants. */
function processTree(root: number): ProcessInfo[] {
  const all = listProcesses();
  const found = new Map<number, ProcessInfo>();
  const queue = all.filter((p) => p.pid === root || p.pgid === root);
  while (queue.length > 0) {
    const p = queue.pop()!;
    if (found.has(p.pid)) continue;
    found.set(p.pid, p);
    queue.push(...all.filter((c) => c.ppid === p.pid));
  }
  return [...found.values()];
}

function pidFile(name: string): string {
  return join(paths.pids, `${name}.pid`);
}

export interface Spawned {
  pid: number;
  /** Set once the process has exited while this launcher still watches it. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

/** Starts `command` in its own session, output appended to `logFile`, pid in pids/NAME.pid. */
export async function spawnDetached(
  name: string,
  command: string,
  args: string[],
  logFile: string,
  env?: Record<string, string>,
): Promise<Spawned> {
  const fd = openSync(logFile, "a");
  try {
    const child = spawn(command, args, {
      detached: true,
      stdio: ["ignore", fd, fd],
      env: env ? { ...process.env, ...env } : process.env,
    });
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", (err) => reject(new Error(`cannot start ${name} (${command}): ${err.message}`)));
    });
    const spawned: Spawned = { pid: child.pid!, exit: undefined };
    child.once("exit", (code, signal) => {
      spawned.exit = { code, signal };
    });
    child.unref();
    writeFileSync(pidFile(name), `${spawned.pid}\n`);
    return spawned;
  } finally {
    closeSync(fd);
  }
}

/** The running process recorded in pids/NAME.pid, if it is still ours. */
export function runningComponent(name: string): ProcessInfo | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile(name), "utf8").trim());
  } catch {
    return undefined;
  }
  const info = Number.isInteger(pid) && pid > 0 ? readProcess(pid) : undefined;
  return info && isClusterProcess(info) ? info : undefined;
}

async function waitGone(
  procs: ProcessInfo[],
  timeoutMs: number,
  stillThere: (p: ProcessInfo) => boolean = isSame,
): Promise<ProcessInfo[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive = procs.filter(stillThere);
    if (alive.length === 0 || Date.now() >= deadline) return alive;
    await sleep(100);
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

export interface StopOptions {
  graceMs: number;
  log: (msg: string) => void;
}

/**
 * Stops a component: SIGTERM to the leader (which, like a kubelet, may shut down its own
 * children in order), then after the grace period SIGKILL to everything left of its tree.
 * Returns the processes it stopped.
 */
export async function stopComponent(name: string, opts: StopOptions): Promise<ProcessInfo[]> {
  const leader = runningComponent(name);
  if (leader) {
    const before = processTree(leader.pid);
    signal(leader.pid, "SIGTERM");
    const ticker = setInterval(() => opts.log(`waiting for ${name} (pid ${leader.pid}) to exit ...`), 5000);
    try {
      await waitGone([leader], opts.graceMs);
    } finally {
      clearInterval(ticker);
    }
    if (isSame(leader)) opts.log(`${name} did not exit within ${opts.graceMs / 1000}s: killing it`);
    // What the leader started after our first look is found through it (if it still runs) or
    // through its process group.
    const tree = [...before, ...processTree(leader.pid).filter((p) => !before.some((b) => b.pid === p.pid))];
    const leftovers = tree.filter((p) => p.pid !== leader.pid && isSame(p));
    for (const p of leftovers)
      opts.log(`${name} left pid ${p.pid} (${p.cmdline.join(" ")}) behind: killing it`);
    signal(-leader.pid, "SIGKILL");
    for (const p of tree.filter(isSame)) signal(p.pid, "SIGKILL");
    const survivors = await waitGone(tree, 5000);
    if (survivors.length > 0) {
      throw new Error(`${name}: pids ${survivors.map((p) => p.pid).join(", ")} survive SIGKILL`);
    }
    rmSync(pidFile(name), { force: true });
    return tree;
  }
  rmSync(pidFile(name), { force: true });
  return [];
}

/**
 * Waits until stopped processes are reaped. Once cluster:up has exited, init is their parent,
 * and on some machines it reaps a second or more late: a `ps` right after cluster:down should
 * not show them, not even as zombies.
 */
export async function waitReaped(procs: ProcessInfo[], timeoutMs = 10_000): Promise<void> {
  await waitGone(procs, timeoutMs, isUnreaped);
}

/**
 * Kills what pid files no longer point at: any process whose arguments name this cluster's
 * state directory (for example after a launcher was killed between spawn and pid file).
 */
export async function killStrays(log: (msg: string) => void): Promise<ProcessInfo[]> {
  const strays = listProcesses().filter(isClusterProcess);
  for (const p of strays) {
    log(`killing stray cluster process ${p.pid} (${p.cmdline.slice(0, 3).join(" ")} ...)`);
    signal(p.pid, "SIGKILL");
  }
  const survivors = await waitGone(strays, 5000);
  if (survivors.length > 0) {
    throw new Error(`pids ${survivors.map((p) => p.pid).join(", ")} survive SIGKILL`);
  }
  return strays;
}

/** The last lines of a log file, to show why a component failed. */
export function tail(file: string, lines = 25): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}
