// `cluster:down` leaves the host as `cluster:up` found it: no process, mount, cgroup, network
// namespace, link, route or iptables rule of the cluster, and the sysctls that the kubelets
// changed set back. The test stops the shared cluster and starts it again for the files after it.
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { down, up } from "../launcher/cluster.ts";
import { STATE_DIR, paths } from "../launcher/config.ts";
import { hostState, hostStateDiff, type HostState } from "../launcher/host-state.ts";
import { isClusterProcess, listProcesses } from "../launcher/processes.ts";

const log = (msg: string) => console.log(`[cluster] ${msg}`);

/** Processes of the cluster: its components, anything in a worker node's cgroups (pods, shims). */
function leftoverProcesses(): string[] {
  const inNodeCgroup = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/cgroup`, "utf8").includes("/ckn-");
    } catch {
      return false;
    }
  };
  return listProcesses()
    .filter(
      (p) => isClusterProcess(p) || p.cmdline.some((a) => a.includes(`${STATE_DIR}/`)) || inNodeCgroup(p.pid),
    )
    .map((p) => `${p.pid} ${p.cmdline.join(" ")}`);
}

describe("npm run cluster:down", () => {
  it("leaves nothing of the cluster on the host", { timeout: 600_000 }, async () => {
    const baseline = JSON.parse(readFileSync(paths.hostBaseline, "utf8")) as HostState;
    // The test harness's own bookkeeping, to put back for the runs that share the cluster.
    const owned = existsSync(paths.testOwned) ? readFileSync(paths.testOwned, "utf8") : undefined;
    const users = existsSync(paths.testUsers) ? readdirSync(paths.testUsers) : [];

    await down(log);
    try {
      expect(existsSync(STATE_DIR)).toBe(false);
      expect(leftoverProcesses()).toEqual([]);
      expect(hostStateDiff(baseline, hostState())).toEqual([]);
    } finally {
      await up({ log });
      if (owned !== undefined) writeFileSync(paths.testOwned, owned);
      mkdirSync(paths.testUsers, { recursive: true });
      for (const u of users) writeFileSync(join(paths.testUsers, u), "");
    }
  });
});
