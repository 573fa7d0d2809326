// Runs the promtool (and prometheus) that test/cluster/build.sh builds from the Prometheus
// module pinned in test/cluster/prometheus/go.mod. The chart's alert tests and the dashboard
// check (test/cluster/charts/dashboard.ts) use them.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT, type RunResult } from "./helm.ts";

/** The module version of github.com/prometheus/prometheus that build.sh builds. */
export function prometheusModuleVersion(): string {
  const gomod = readFileSync(join(REPO_ROOT, "test/cluster/prometheus/go.mod"), "utf8");
  const version = /^\s*(?:require\s+)?github\.com\/prometheus\/prometheus\s+(v\S+)/m.exec(gomod)?.[1];
  if (!version)
    throw new Error("test/cluster/prometheus/go.mod does not require github.com/prometheus/prometheus");
  return version;
}

/** The path of promtool or prometheus: $PROMTOOL / $PROMETHEUS, else build.sh's cache. */
export function prometheusTool(name: "promtool" | "prometheus"): string {
  const override = process.env[name.toUpperCase()];
  if (override) return override;
  const cache = join(process.env["XDG_CACHE_HOME"] || join(homedir(), ".cache"), "coordinator-ha");
  const path = join(cache, "prometheus", prometheusModuleVersion(), name);
  if (!existsSync(path)) {
    throw new Error(
      `${name} is not at ${path}: build it with \`bash test/cluster/build.sh\` (or set $${name.toUpperCase()})`,
    );
  }
  return path;
}

export function promtool(args: string[], cwd?: string): RunResult {
  const r = spawnSync(prometheusTool("promtool"), args, {
    encoding: "utf8",
    ...(cwd === undefined ? {} : { cwd }),
    timeout: 120_000,
  });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
