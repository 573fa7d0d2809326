// The chart's alerts, run by Prometheus's own rule engine: `promtool check rules` on the
// rendered PrometheusRule's groups, and `promtool test rules` with the unit tests of
// alerts.promtool.yaml, where every alert fires on input series shaped like the exported ones
// and stays silent on healthy ones. (monitoring.test.ts checks that the metric names exist.)
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { CHARTS, find, render } from "./helm.ts";
import { promtool } from "./prometheus.ts";

const UNIT_TESTS = fileURLToPath(new URL("alerts.promtool.yaml", import.meta.url));

/** The rule file that the PrometheusRule stands for: its spec, `groups:` and all. */
function renderRules(prometheusRule: object = {}): string {
  // alerts.promtool.yaml names the jobs of release "cha" in namespace "cha-system".
  const objects = render(CHARTS.coordinatorHa, {
    release: "cha",
    namespace: "cha-system",
    values: { prometheusRule: { enabled: true, ...prometheusRule } },
  });
  return stringify(find(objects, "PrometheusRule").spec);
}

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A directory with rules.yaml and the unit tests beside it, as their rule_files expects. */
function workdir(rules: string): string {
  const dir = mkdtempSync(join(tmpdir(), "cha-alerts-"));
  dirs.push(dir);
  writeFileSync(join(dir, "rules.yaml"), rules);
  copyFileSync(UNIT_TESTS, join(dir, "tests.yaml"));
  return dir;
}

describe("alerts under promtool", () => {
  it("are valid rules for Prometheus (promtool check rules, with its linter)", () => {
    const dir = workdir(renderRules());
    const r = promtool(["check", "rules", "--lint=all", "--lint-fatal", "rules.yaml"], dir);
    expect(r.stderr + r.stdout).toMatch(/SUCCESS: 7 rules found/);
    expect(r.status).toBe(0);
  });

  it("fire on the series that call for them and stay silent otherwise (promtool test rules)", () => {
    const dir = workdir(renderRules());
    const r = promtool(["test", "rules", "tests.yaml"], dir);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/SUCCESS/);
  });

  it("have, for every alert, a case where it fires and one where it does not", () => {
    const rules = parse(renderRules()) as { groups: { rules: { alert: string }[] }[] };
    const tests = parse(readFileSync(UNIT_TESTS, "utf8")) as {
      tests: { alert_rule_test: { alertname: string; exp_alerts: object[] }[] }[];
    };
    const cases = tests.tests.flatMap((t) => t.alert_rule_test);
    for (const { alert } of rules.groups.flatMap((g) => g.rules)) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${alert} is never seen firing`,
      ).toBe(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${alert} is never seen silent`,
      ).toBe(true);
    }
  });

  it("follow the chart's values: with a longer waiting threshold, the 600 s cases fail", () => {
    // Shows that promtool reads the rendered rules and that a failing expectation fails the run.
    const dir = workdir(renderRules({ waitingForStateSeconds: 1200 }));
    const r = promtool(["test", "rules", "tests.yaml"], dir);
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/CoordinatorHaPodWaitingForState/);
    expect(r.stdout + r.stderr).not.toMatch(/CoordinatorHaWebhookSlow|CoordinatorHaStateConflict/);
  });
});
