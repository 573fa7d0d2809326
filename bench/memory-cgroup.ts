// A memory cgroup for one benchmarked process: the limit that a container's `resources.limits.
// memory` gives it under the kubelet, without a kubelet. Node.js sizes V8's heap from the limit
// it starts under (`process.constrainedMemory()`), so the process must start inside the cgroup:
// `wrap` turns a command line into one that first moves its own shell there, then execs it.
// Works on cgroup v2 (a `memory.max`) and on v1's memory hierarchy (`memory.limit_in_bytes`).
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const V2_ROOT = "/sys/fs/cgroup";
const V1_ROOT = "/sys/fs/cgroup/memory";

export interface MemoryCgroup {
  /** The command line that starts `argv` inside the cgroup. */
  wrap(argv: string[]): string[];
  /** The highest usage the kernel recorded for the cgroup, in MiB. */
  peakMiB(): number;
  /** How many times the kernel's OOM killer killed a process of the cgroup. */
  oomKills(): number;
  /** Removes the cgroup; its processes must have exited. */
  remove(): void;
}

export function memoryCgroup(name: string, limitMiB: number): MemoryCgroup {
  if (!Number.isInteger(limitMiB) || limitMiB < 16)
    throw new Error(`a memory limit must be a whole number of MiB, at least 16 (got ${limitMiB})`);
  const bytes = String(limitMiB * 2 ** 20);
  const v2 = existsSync(join(V2_ROOT, "cgroup.controllers"));
  const dir = join(v2 ? V2_ROOT : V1_ROOT, name);
  if (!v2 && !existsSync(V1_ROOT)) throw new Error(`no cgroup v2 and no v1 memory hierarchy at ${V1_ROOT}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, v2 ? "memory.max" : "memory.limit_in_bytes"), bytes);
  const read = (file: string) => readFileSync(join(dir, file), "utf8");
  const field = (text: string, key: string) =>
    Number(new RegExp(`^${key} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
  return {
    wrap: (argv) => ["sh", "-c", 'echo $$ > "$0" && exec "$@"', join(dir, "cgroup.procs"), ...argv],
    peakMiB: () =>
      Number(
        read(
          v2
            ? existsSync(join(dir, "memory.peak"))
              ? "memory.peak"
              : "memory.current"
            : "memory.max_usage_in_bytes",
        ),
      ) /
      2 ** 20,
    oomKills: () =>
      v2 ? field(read("memory.events"), "oom_kill") : field(read("memory.oom_control"), "oom_kill"),
    remove: () => rmdirSync(dir),
  };
}
