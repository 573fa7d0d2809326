// The chart's Grafana dashboard as the PromQL queries that Grafana would send: each panel's
// targets with the dashboard's variables and Grafana's interval macros filled in. Pure, so the
// live check (dashboard.test.ts) and the picture (dashboard-plot.ts) read the same queries.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CHARTS } from "../../charts/helm.ts";

export interface Panel {
  id: number;
  type: "stat" | "timeseries" | "table";
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  fieldConfig?: { defaults?: { unit?: string } };
  targets: { refId: string; expr: string; legendFormat?: string; instant?: boolean }[];
}

export interface Dashboard {
  title: string;
  panels: Panel[];
}

export interface PanelQuery {
  panel: Panel;
  refId: string;
  /** The PromQL with variables and macros replaced. */
  expr: string;
  legendFormat: string;
  /** Stat and table panels ask for one instant value; time series for a range. */
  instant: boolean;
}

export function readDashboard(): Dashboard {
  return JSON.parse(
    readFileSync(join(CHARTS.coordinatorHa, "dashboards/coordinator-ha.json"), "utf8"),
  ) as Dashboard;
}

/**
 * `namespace`: the value the dashboard's namespace variable is set to (the release's
 * namespace). `rateInterval`: what Grafana puts for $__rate_interval, at least four scrape
 * intervals (Grafana's rule), as a PromQL duration.
 */
export function panelQueries(
  dashboard: Dashboard,
  vars: { namespace: string; rateInterval: string },
): PanelQuery[] {
  return dashboard.panels.flatMap((panel) =>
    panel.targets.map((t) => {
      const expr = t.expr
        .replaceAll("$__rate_interval", vars.rateInterval)
        .replaceAll("$namespace", vars.namespace);
      const unknown = /\$\w+/.exec(expr);
      if (unknown) throw new Error(`panel "${panel.title}" uses ${unknown[0]}, which no variable defines`);
      return {
        panel,
        refId: t.refId,
        expr,
        legendFormat: t.legendFormat ?? "",
        instant: t.instant === true || panel.type !== "timeseries",
      };
    }),
  );
}

/** A series' legend as Grafana writes it: {{label}} replaced by the label's value. */
export function legend(format: string, metric: Record<string, string>): string {
  if (!format) {
    const labels = Object.entries(metric).filter(([k]) => k !== "__name__");
    return labels.length === 0 ? "value" : labels.map(([k, v]) => `${k}="${v}"`).join(", ");
  }
  return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name: string) => metric[name] ?? "");
}
