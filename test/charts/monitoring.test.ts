// The chart's alerts and dashboard: rendered only on request, every metric they name is one
// that the webhook or the handler exports (so a renamed metric fails here, not in production),
// every alert is scoped to this release's jobs, and the dashboard is a Grafana dashboard that
// the sidecar finds by its label. The real CRD checks the PrometheusRule in the cluster
// tests (helm-lifecycle.test.ts, kubectl apply --dry-run=server).
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { handlerMetrics } from "../../src/handler/metrics.ts";
import { registerPodGauges } from "../../src/handler/pod-gauges.ts";
import { webhookMetrics } from "../../src/webhook/metrics.ts";
import { CHARTS, find, render } from "./helm.ts";

const CHART = CHARTS.coordinatorHa;
const values = { prometheusRule: { enabled: true }, grafana: { dashboard: { enabled: true } } };

/** The metric names that a running webhook and handler serve on /metrics. */
async function exportedMetrics(): Promise<Set<string>> {
  const registry = new Registry();
  webhookMetrics(registry);
  handlerMetrics(registry, () => 0);
  registerPodGauges(registry, () => []);
  const names = new Set<string>();
  for (const metric of await registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === "histogram")
      for (const s of ["_bucket", "_sum", "_count"]) names.add(metric.name + s);
  }
  return names;
}

/** The coordinator_ha_* metric names in a PromQL expression. */
const metricsIn = (expr: string) => expr.match(/\bcoordinator_ha_[a-z_]+\b/g) ?? [];

describe("monitoring", () => {
  it("renders no PrometheusRule and no dashboard unless asked", () => {
    const objects = render(CHART);
    expect(
      objects.filter((o) => o.kind === "PrometheusRule" || o.metadata.name.endsWith("-dashboard")),
    ).toEqual([]);
  });

  it("alerts on what the issue names, with metrics that exist, for this release's jobs", async () => {
    const objects = render(CHART, {
      values: { ...values, prometheusRule: { enabled: true, labels: { release: "kps" } } },
    });
    const rule = find(objects, "PrometheusRule");
    expect(rule.metadata.labels.release).toBe("kps");
    const rules = rule.spec.groups.flatMap((g: { rules: object[] }) => g.rules) as {
      alert: string;
      expr: string;
      labels: { severity: string };
      annotations: { summary: string; description: string };
    }[];
    expect(rules.map((r) => r.alert)).toEqual([
      "CoordinatorHaPodWaitingForState",
      "CoordinatorHaStateConflict",
      "CoordinatorHaConfirmationsRefused",
      "CoordinatorHaWebhookRejecting",
      "CoordinatorHaWebhookSlow",
      "CoordinatorHaNoReadyWebhook",
      "CoordinatorHaNoReadyHandler",
    ]);
    const exported = await exportedMetrics();
    for (const r of rules) {
      for (const name of metricsIn(r.expr)) expect(exported, `${r.alert}: ${name}`).toContain(name);
      expect(r.expr).toMatch(/job="cha-coordinator-ha-(webhook|handler)", namespace="cha-system"/);
      expect(["warning", "critical"]).toContain(r.labels.severity);
      expect(r.annotations.summary).not.toContain("{{ {{");
    }
    expect(rules[0]!.expr).toContain("> 600");
    const tuned = render(CHART, {
      values: { prometheusRule: { enabled: true, waitingForStateSeconds: 120 } },
    });
    expect(find(tuned, "PrometheusRule").spec.groups[0].rules[0].expr).toContain("> 120");
  });

  it("ships a Grafana dashboard for the sidecar, whose panels all query exported metrics", async () => {
    const objects = render(CHART, {
      values: {
        grafana: {
          dashboard: { enabled: true, namespace: "monitoring", annotations: { grafana_folder: "HA" } },
        },
      },
    });
    const configMap = find(objects, "ConfigMap", "cha-coordinator-ha-dashboard");
    expect(configMap.metadata.namespace).toBe("monitoring");
    expect(configMap.metadata.labels.grafana_dashboard).toBe("1");
    expect(configMap.metadata.annotations).toEqual({ grafana_folder: "HA" });
    const dashboard = JSON.parse(configMap.data["coordinator-ha.json"]) as {
      uid: string;
      templating: { list: { name: string }[] };
      panels: { title: string; targets: { expr: string }[] }[];
    };
    expect(dashboard.uid).toBe("coordinator-ha");
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(["datasource", "namespace"]);
    expect(dashboard.panels.map((p) => p.title)).toEqual(
      expect.arrayContaining(["Injections", "Confirmations", "Gates by reason", "Time to Ready per pod"]),
    );
    const exported = await exportedMetrics();
    for (const panel of dashboard.panels) {
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets) {
        expect(metricsIn(target.expr).length, panel.title).toBeGreaterThan(0);
        for (const name of metricsIn(target.expr))
          expect(exported, `${panel.title}: ${name}`).toContain(name);
      }
    }
  });
});
