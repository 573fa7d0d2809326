// The chart's dashboard and alerts against the real metrics: a real Prometheus on the host
// scrapes the webhook and handler pods of an installed release (as the ServiceMonitor would),
// with the chart's PrometheusRule loaded, while the operator guide's workflow runs (coordinator-0
// waits for its user, `set`, scale to 3). Then every panel's query goes through Prometheus's
// HTTP API, and none may come back empty; every alert rule must evaluate without error, and
// the "no replica answers" alerts must stay silent (their job and namespace labels match the
// scraped series). With CHA_DASHBOARD_PNG=FILE it also draws the panels (dashboard-plot.ts),
// which is how docs/images/dashboard.png is made.
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { CHARTS, find, render } from "../../charts/helm.ts";
import { installWorkflow, type Workflow } from "../e2e/harness.ts";
import { eventually } from "../kube.ts";
import { set } from "../workflow/coordinator.ts";
import { dashboardSvg, writePng, type PanelResult } from "./dashboard-plot.ts";
import { panelQueries, readDashboard } from "./dashboard-queries.ts";
import { startPrometheus, type Prometheus, type ScrapeJob } from "./prometheus-server.ts";

const SCRAPE_SECONDS = 5;
/** Grafana's $__rate_interval: four scrape intervals. */
const RATE_INTERVAL = `${4 * SCRAPE_SECONDS}s`;
const METRICS_PORT = 8443;

describe("the dashboard and the alerts on a real Prometheus", () => {
  let w: Workflow;
  let prometheus: Prometheus | undefined;
  let start = 0;

  beforeAll(async () => {
    w = await installWorkflow("dashboard");
  }, 240_000);
  afterAll(async () => {
    await prometheus?.stop();
    await w?.cleanup();
  });

  async function scrapeJob(component: "webhook" | "handler", caFile: string): Promise<ScrapeJob> {
    const service = `${w.release}-coordinator-ha-${component}`;
    const pods = await w.sh.json<{ items: { metadata: { name: string }; status: { podIP?: string } }[] }>(
      `kubectl get pods -n ${w.system} -l app.kubernetes.io/instance=${w.release},app.kubernetes.io/component=${component} -o json`,
    );
    return {
      job: service,
      namespace: w.system,
      targets: pods.items.map((p) => ({
        pod: p.metadata.name,
        address: `${p.status.podIP}:${METRICS_PORT}`,
      })),
      caFile,
      // The serving certificate covers both Services; the ServiceMonitor names the webhook's.
      serverName: `${w.release}-coordinator-ha-webhook.${w.system}.svc`,
    };
  }

  it("Prometheus scrapes every webhook and handler replica while the guide's workflow runs", async () => {
    const secret = await w.sh.json<{ data: Record<string, string> }>(
      `kubectl get secret -n ${w.system} ${w.release}-coordinator-ha-tls -o json`,
    );
    const ca = Buffer.from(secret.data["ca.crt"] ?? "", "base64").toString("utf8");
    expect(ca).toContain("BEGIN CERTIFICATE");
    const caFile = w.files.write("ca.crt", ca);
    const rule = find(
      render(CHARTS.coordinatorHa, {
        release: w.release,
        namespace: w.system,
        values: { prometheusRule: { enabled: true } },
      }),
      "PrometheusRule",
    );
    const jobs = [await scrapeJob("webhook", caFile), await scrapeJob("handler", caFile)];
    expect(jobs.map((j) => j.targets.length)).toEqual([2, 2]);
    start = Math.floor(Date.now() / 1000);
    prometheus = await startPrometheus({
      jobs,
      rules: stringify(rule.spec),
      scrapeIntervalSeconds: SCRAPE_SECONDS,
    });
    const p = prometheus;
    await eventually(
      "all four targets up",
      async () => {
        const targets = await p.targets();
        if (targets.length === 4 && targets.every((t) => /: up$/.test(t))) return true;
        throw new Error(`targets: ${targets.join("; ") || "none"}; Prometheus said: ${p.log()}`);
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    // coordinator-0 waits for its user: seen by Prometheus before `set`, so that the panels of
    // pods without their state have something to show.
    await eventually(
      "coordinator-0 waiting, in Prometheus",
      async () =>
        (await p.query('coordinator_ha_handler_pod_gate_seconds{pod_name="coordinator-0", status!="True"}'))
          .length > 0
          ? true
          : undefined,
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    const manifest = w.files.write("manifest.json", JSON.stringify({ policy: "dashboard" }));
    await set(w.sh, await w.serviceAddress("coordinator"), manifest);
    await w.sh.run("kubectl scale statefulset/coordinator --replicas 3");
    await w.sh.run(
      "kubectl wait statefulset/coordinator --for=jsonpath='{.status.readyReplicas}=3' --timeout=3m",
      { timeoutMs: 200_000 },
    );
    await eventually(
      "three pods' time to Ready, in Prometheus",
      async () =>
        (await p.query("coordinator_ha_handler_pod_time_to_ready_seconds")).length >= 3 ? true : undefined,
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    // Two more rate intervals, so that the rates of the last injections and confirmations show.
    await sleep(2 * 4 * SCRAPE_SECONDS * 1000);
  }, 480_000);

  it("answers every panel's query with data, and the namespace variable lists the release's namespace", async () => {
    const p = prometheus!;
    const end = Math.floor(Date.now() / 1000);
    const dashboard = readDashboard();
    const queries = panelQueries(dashboard, { namespace: w.system, rateInterval: RATE_INTERVAL });
    const namespaces = await p.api<string[]>(
      `/api/v1/label/namespace/values?match[]=${encodeURIComponent("coordinator_ha_webhook_admission_requests_total")}`,
    );
    expect(namespaces).toContain(w.system);

    const results: PanelResult[] = [];
    const empty: string[] = [];
    for (const query of queries) {
      // Over the whole run: a stat or table panel may rightly be empty at one moment (no pod
      // waits once all are Ready), but not for the whole workflow.
      const range = await p.queryRange(query.expr, start, end, SCRAPE_SECONDS);
      const finite = range.some((s) => s.values.some(([, v]) => Number.isFinite(Number(v))));
      if (!finite) empty.push(`${query.panel.title} (${query.refId}): ${query.expr}`);
      results.push({ query, samples: query.instant ? await p.query(query.expr, end) : range });
      console.log(
        `${query.panel.title} [${query.refId}]: ${range.length} series, ` +
          `${range.reduce((n, s) => n + s.values.length, 0)} points`,
      );
    }
    expect(empty, "panels without data").toEqual([]);
    expect(new Set(queries.map((q) => q.panel.id)).size).toBe(dashboard.panels.length);

    const svg = dashboardSvg(dashboard.title, dashboard.panels, results, { start, end });
    expect(svg).toContain("</svg>");
    const png = process.env["CHA_DASHBOARD_PNG"];
    if (png) {
      writePng(svg, png);
      console.log(`wrote ${png}`);
    }
  }, 120_000);

  it("evaluates every alert rule without error, and no replica-down alert is active", async () => {
    const p = prometheus!;
    type Rule = { name: string; health: string; lastError?: string; state: string };
    // Rules are evaluated every scrape interval; wait for one evaluation of each.
    const rules = await eventually(
      "every rule evaluated",
      async () => {
        const data = await p.api<{ groups: { rules: (Rule & { lastEvaluation: string })[] }[] }>(
          "/api/v1/rules",
        );
        const all = data.groups.flatMap((g) => g.rules);
        return all.length > 0 && all.every((r) => !r.lastEvaluation.startsWith("0001")) ? all : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 1000 },
    );
    expect(rules.map((r) => r.name)).toHaveLength(7);
    for (const r of rules)
      expect({ rule: r.name, health: r.health, error: r.lastError ?? "" }).toEqual({
        rule: r.name,
        health: "ok",
        error: "",
      });
    const states = Object.fromEntries(rules.map((r) => [r.name, r.state]));
    console.log("alert states:", states);
    expect(states["CoordinatorHaNoReadyWebhook"]).toBe("inactive");
    expect(states["CoordinatorHaNoReadyHandler"]).toBe("inactive");
  }, 60_000);
});
