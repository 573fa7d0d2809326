// A real Prometheus server (the one test/cluster/build.sh builds) on the host, scraping the
// webhook and handler pods by pod IP over HTTPS as the chart's ServiceMonitor makes the
// Prometheus Operator do, with the chart's alert rules loaded. Its HTTP API answers the
// dashboard's queries. The host reaches pod IPs, so no Service or port-forward is involved.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { prometheusTool } from "../../charts/prometheus.ts";
import { eventually } from "../kube.ts";

/** One scrape job: the targets of a Service, labelled as the Prometheus Operator labels them. */
export interface ScrapeJob {
  /** The Service's name: the operator's `job` label. */
  job: string;
  namespace: string;
  /** Pod name and address (ip:port). */
  targets: { pod: string; address: string }[];
  caFile: string;
  serverName: string;
}

export interface Sample {
  metric: Record<string, string>;
  /** [unix seconds, value] pairs: one for an instant query, many for a range. */
  values: [number, string][];
}

export interface Prometheus {
  url: string;
  query(expr: string, time?: number): Promise<Sample[]>;
  queryRange(expr: string, start: number, end: number, stepSeconds: number): Promise<Sample[]>;
  /** GET an API path and return its `data`. */
  api<T>(path: string): Promise<T>;
  /** Each target as `job pod: health (last error)`, to say why a scrape fails. */
  targets(): Promise<string[]>;
  /** The end of Prometheus's log (warnings and errors). */
  log(): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function startPrometheus(opts: {
  jobs: ScrapeJob[];
  /** A Prometheus rule file's text (`groups:`). */
  rules: string;
  scrapeIntervalSeconds: number;
}): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), "cha-prometheus-"));
  writeFileSync(join(dir, "rules.yaml"), opts.rules);
  const interval = `${opts.scrapeIntervalSeconds}s`;
  const config = {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    rule_files: [join(dir, "rules.yaml")],
    scrape_configs: opts.jobs.map((j) => ({
      job_name: j.job,
      scheme: "https",
      metrics_path: "/metrics",
      tls_config: { ca_file: j.caFile, server_name: j.serverName },
      static_configs: j.targets.map((t) => ({
        targets: [t.address],
        labels: { namespace: j.namespace, pod: t.pod },
      })),
    })),
  };
  writeFileSync(join(dir, "prometheus.yml"), stringify(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    prometheusTool("prometheus"),
    [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(url + path);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== "success") throw new Error(`Prometheus ${path}: ${body.error ?? res.status}`);
    return body.data;
  };
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await eventually(
      "Prometheus ready",
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}): ${stderr}`);
        return (await fetch(`${url}/-/ready`)).ok ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  } catch (err) {
    await stop();
    throw err;
  }

  type Result = {
    resultType: string;
    result: { metric: Record<string, string>; value?: [number, string]; values?: [number, string][] }[];
  };
  const samples = (r: Result): Sample[] =>
    r.result.map((s) => ({ metric: s.metric, values: s.values ?? (s.value ? [s.value] : []) }));
  return {
    url,
    api,
    query: async (expr, time) =>
      samples(
        await api<Result>(
          `/api/v1/query?query=${encodeURIComponent(expr)}${time === undefined ? "" : `&time=${time}`}`,
        ),
      ),
    queryRange: async (expr, start, end, step) =>
      samples(
        await api<Result>(
          `/api/v1/query_range?query=${encodeURIComponent(expr)}&start=${start}&end=${end}&step=${step}`,
        ),
      ),
    targets: async () => {
      type Target = { labels: Record<string, string>; scrapeUrl: string; health: string; lastError: string };
      const data = await api<{ activeTargets: Target[] }>("/api/v1/targets");
      return data.activeTargets.map(
        (t) =>
          `${t.labels["job"]} ${t.labels["pod"]} ${t.scrapeUrl}: ${t.health}${t.lastError ? ` (${t.lastError})` : ""}`,
      );
    },
    log: () => stderr,
    stop,
  };
}
