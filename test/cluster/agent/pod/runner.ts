// Containers as processes. Each container runs as
//   ip netns exec <pod netns> unshare --mount --uts --propagation private \
//     sh -c '<hostname; bind mounts; cd workingDir>; exec "$@"' <argv...>
// so it has the pod's network (and its /etc/hosts), its own mount namespace in which its
// volumeMounts are bound at their mountPaths without the host seeing them, and the pod's
// hostname. Nothing forks in between: the PID the agent spawns ends up as the container's
// command, so signals reach the app directly. Processes run as root; securityContext users
// are not enforced.
import { spawn } from "node:child_process";
import { accessSync, closeSync, constants, openSync, readSync, statSync, fstatSync } from "node:fs";
import { posix } from "node:path";
import { constants as osConstants } from "node:os";
import type { Mount } from "./volumes.ts";

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface ContainerLaunch {
  netns: string;
  hostname: string;
  argv: string[];
  env: Record<string, string>;
  workingDir: string;
  mounts: Mount[];
  logFile: string;
}

export interface ContainerExit {
  exitCode: number;
  finishedAt: Date;
}

/** The command cannot be started (runc's StartError, exit code 128). */
export class StartError extends Error {}

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** The shell prologue that prepares the container's mount namespace before exec. */
export function launchScript(l: Pick<ContainerLaunch, "hostname" | "mounts" | "workingDir">): string {
  const lines = ["set -e", `echo ${quote(l.hostname)} > /proc/sys/kernel/hostname`];
  for (const m of l.mounts) {
    const src = quote(m.source);
    const dst = quote(m.target);
    // A directory mounts on a directory, a file (a subPath to a file) on a file.
    lines.push(
      `if [ -d ${src} ]; then mkdir -p ${dst}; else mkdir -p "$(dirname ${dst})"; [ -e ${dst} ] || : > ${dst}; fi`,
      `mount --bind ${src} ${dst}`,
    );
    if (m.readOnly) lines.push(`mount -o remount,bind,ro ${dst}`);
  }
  lines.push(`mkdir -p ${quote(l.workingDir)}`, `cd ${quote(l.workingDir)}`, 'exec "$@"');
  return lines.join("\n");
}

/** Where a container path lives on the host, through the container's bind mounts. */
function hostPathOf(path: string, mounts: readonly Mount[]): string {
  let best: Mount | undefined;
  for (const m of mounts) {
    const t = m.target.replace(/\/+$/, "");
    if ((path === t || path.startsWith(`${t}/`)) && (!best || t.length > best.target.length)) best = m;
  }
  return best ? best.source + path.slice(best.target.replace(/\/+$/, "").length) : path;
}

const isExecutable = (p: string) => {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
};

/**
 * Checks that argv[0] can be executed in the container, as runc does before it starts the
 * process, so that a typo is a StartError with runc's message rather than a shell's 127.
 */
export function checkExecutable(
  argv: readonly string[],
  env: Record<string, string>,
  l: Pick<ContainerLaunch, "mounts" | "workingDir">,
): void {
  const cmd = argv[0];
  if (!cmd)
    throw new StartError(
      "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: args must not be empty: unknown",
    );
  const fail = (why: string) => {
    throw new StartError(
      `failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "${cmd}": ${why}: unknown`,
    );
  };
  if (cmd.includes("/")) {
    const abs = posix.resolve(l.workingDir, cmd);
    if (!isExecutable(hostPathOf(abs, l.mounts))) fail("stat " + abs + ": no such file or directory");
    return;
  }
  const dirs = (env["PATH"] ?? DEFAULT_PATH).split(":").filter(Boolean);
  if (!dirs.some((d) => isExecutable(hostPathOf(posix.join(d, cmd), l.mounts)))) {
    fail("executable file not found in $PATH");
  }
}

/** The last lines of what the container wrote to its log since `offset` (FallbackToLogsOnError). */
export function logTail(file: string, offset: number, maxLines = 80, maxBytes = 2048): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    const size = fstatSync(fd).size;
    const start = Math.max(offset, size - 64 * 1024);
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    const lines = buf.toString("utf8").split("\n");
    if (lines.at(-1) === "") lines.pop();
    const text = lines.slice(-maxLines).join("\n");
    return text.length > maxBytes ? text.slice(text.length - maxBytes) : text;
  } catch {
    return "";
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export class ContainerProcess {
  readonly pid: number;
  readonly startedAt: Date;
  /** Size of the log file when the container started: where this run's output begins. */
  readonly logOffset: number;
  readonly exited: Promise<ContainerExit>;
  private done = false;

  constructor(l: ContainerLaunch, tools: { ip: string; unshare: string; sh: string }) {
    const log = openSync(l.logFile, "a", 0o644);
    this.logOffset = fstatSync(log).size;
    const child = spawn(
      tools.ip,
      [
        "netns",
        "exec",
        l.netns,
        tools.unshare,
        "--mount",
        "--uts",
        "--propagation",
        "private",
        tools.sh,
        "-c",
        launchScript(l),
        "container",
        ...l.argv,
      ],
      // A process group of its own: signals aimed at the agent's terminal do not reach it,
      // and the agent can kill whatever the container forked.
      { env: l.env, detached: true, stdio: ["ignore", log, log], cwd: "/" },
    );
    closeSync(log);
    if (child.pid === undefined) throw new StartError(`failed to start ${tools.ip}`);
    this.pid = child.pid;
    this.startedAt = new Date();
    this.exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        this.done = true;
        const signo = signal ? (osConstants.signals[signal] ?? 9) : 0;
        resolve({ exitCode: code ?? 128 + signo, finishedAt: new Date() });
      });
    });
    child.unref();
  }

  get running(): boolean {
    return !this.done;
  }

  /** Sends a signal to the container's main process. */
  signal(sig: NodeJS.Signals): void {
    if (this.done) return;
    try {
      process.kill(this.pid, sig);
    } catch {
      // It exited meanwhile.
    }
  }

  /** SIGKILL to the container's whole process group (its main process and its children). */
  killAll(): void {
    try {
      process.kill(-this.pid, "SIGKILL");
    } catch {
      // No process left in the group.
    }
  }
}
