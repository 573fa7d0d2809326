// The host processes of a release's handler: every container shares the host's PID view, on
// the node agent and on kubelet+containerd alike, so a fault can SIGKILL them the way the kernel
// kills a container (no SIGTERM, no graceful shutdown). Both runtimes inject the Service links
// of the pod's namespace into its environment, so a handler of this release (and of no other
// release on the machine) is the one whose environment names this release's Services.
import { readdirSync, readFileSync } from "node:fs";

/**
 * PIDs running `cli.js <command>` whose environment has an entry (`NAME=value`) starting with
 * `env` (with several, one for each); to match a whole entry, end it with "\0".
 */
export function cliProcesses(command: string, env: string | string[]): number[] {
  const wanted = typeof env === "string" ? [env] : env;
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      const at = args.findIndex((a) => a.endsWith("cli.js"));
      if (at < 0 || args[at + 1] !== command) continue;
      // Each entry ends with a NUL: "\0NAME=" starts an entry, "=value\0" ends one.
      const environ = `\0${readFileSync(`/proc/${entry}/environ`, "utf8")}`;
      if (wanted.every((e) => `${environ}\0`.includes(`\0${e}`))) pids.push(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return pids;
}

/** The Service-link prefix of a Helm release's Services: `cha-1a2b3c` -> `CHA_1A2B3C_`. */
export const serviceLinkPrefix = (release: string) => `${release.toUpperCase().replaceAll("-", "_")}_`;

/** SIGKILLs every handler of the release; returns the PIDs it killed. */
export function killHandlers(release: string): number[] {
  const pids = cliProcesses("handler", serviceLinkPrefix(release));
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  return pids;
}
