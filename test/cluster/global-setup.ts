// vitest globalSetup of the `cluster` project: the cluster is started once per test run, not
// once per test. A cluster that already runs (a developer's `npm run cluster:up`, or another
// test run's) is reused. One that a test run started is stopped by the last test run that
// uses it, so that CI leaves no process behind.
import { mkdirSync, readdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { clusterState, down, up } from "./launcher/cluster.ts";
import { paths } from "./launcher/config.ts";
import { readProcess } from "./launcher/processes.ts";

const log = (msg: string) => console.error(`[cluster] ${msg}`);

function otherLiveUsers(): number[] {
  let files: string[];
  try {
    files = readdirSync(paths.testUsers);
  } catch {
    return [];
  }
  return files.map(Number).filter((pid) => pid !== process.pid && readProcess(pid) !== undefined);
}

export default async function setup(): Promise<() => Promise<void>> {
  const before = await clusterState();
  if (before.state === "running") {
    log("reusing the running cluster");
  } else {
    const started = Date.now();
    const result = await up({ log });
    // Another test run may have started it while we waited for its lock.
    if (!result.reused) {
      writeFileSync(paths.testOwned, `${process.pid}\n`);
      log(`cluster started for this test run in ${((Date.now() - started) / 1000).toFixed(0)}s`);
    }
  }
  mkdirSync(paths.testUsers, { recursive: true });
  const me = join(paths.testUsers, String(process.pid));
  writeFileSync(me, "");

  return async () => {
    rmSync(me, { force: true });
    if (!existsSync(paths.testOwned)) return;
    const others = otherLiveUsers();
    if (others.length > 0) {
      log(`leaving the cluster running for the test runs ${others.join(", ")}`);
      return;
    }
    log("stopping the cluster that a test run started");
    await down(log);
  };
}
