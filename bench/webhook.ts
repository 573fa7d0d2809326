// npm run bench:webhook: POST /mutate throughput, latency and CPU cost of the built webhook at
// concurrency 32, against baseline servers with the same TLS and HTTP stack that answer a
// fixed "allowed" AdmissionReview (bench/baseline-server.ts):
//   baseline       answers with the very bytes the webhook sends for the benchmark pod (its
//                  patch included): the goal's reference; the difference is the webhook's
//                  own work;
//   baseline-bare  answers without a patch (about 120 bytes instead of about 4 KiB), to show
//                  what carrying the patch costs the stack;
//   baseline-parse reads the request with JSON.parse, then answers like baseline: the ceiling
//                  of any webhook that reads its request, since it does nothing else.
// The servers, and the load generator (bench/load.ts, started anew for every round), are
// processes of their own. Rounds alternate between the servers, so that load from other
// work on the machine hits them alike.
//
// Each round reports throughput, p50/p99 latency, the server's CPU time per request (from
// /proc on Linux: unlike throughput, it hardly depends on what else the machine does) and
// the load generator's CPU use. A generator near a full core measures itself, not the
// server; such a round is marked.
//
// Goals: webhook throughput >= 0.7 x baseline, webhook p99 < 20 ms.
// Knobs: BENCH_SECONDS (per round, default 6), BENCH_ROUNDS (per server, default 5).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { createServer } from "node:net";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createCa, issueServingCert } from "../webhook-certs/x509.ts";

const CONCURRENCY = 32;
const SECONDS = Number(process.env["BENCH_SECONDS"] ?? 6);
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 5);
const WARMUP_SECONDS = 2;
const GOAL_RATIO = 0.7;
const GOAL_P99_MS = 20;
/** A generator busier than this (share of one core) may be what limits the round. */
const GENERATOR_SATURATED = 0.9;

const root = (path: string) => fileURLToPath(new URL(`../${path}`, import.meta.url));

type Name = "baseline" | "baseline-bare" | "baseline-parse" | "webhook";

interface Target {
  name: Name;
  port: number;
  process: ChildProcess;
}

interface Round {
  requests: number;
  seconds: number;
  latenciesMs: Float64Array;
  /** The load generator's CPU time over the round's duration (1 = one full core). */
  generatorLoad: number;
  /** The server's CPU time per request, or undefined where /proc is not available. */
  serverCpuUs: number | undefined;
}

/** A Contrast-like Coordinator pod CREATE: the webhook injects it on every request. */
const body = JSON.stringify({
  apiVersion: "admission.k8s.io/v1",
  kind: "AdmissionReview",
  request: {
    uid: "6f6f6f6f-0000-4000-8000-000000000001",
    kind: { group: "", version: "v1", kind: "Pod" },
    resource: { group: "", version: "v1", resource: "pods" },
    name: "coordinator-1",
    namespace: "contrast",
    operation: "CREATE",
    object: JSON.parse(readFileSync(root("test/unit/webhook/testdata/contrast-coordinator.in.json"), "utf8")),
    dryRun: false,
  },
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** One request outside the measurement: readiness and the answers to compare against. */
function post(
  port: number,
  ca: string,
  path: string,
  payload?: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        servername: "localhost",
        port,
        method: payload ? "POST" : "GET",
        path,
        agent: new Agent({ ca }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      },
    );
    req.on("error", reject);
    if (payload) req.setHeader("content-type", "application/json").end(payload);
    else req.end();
  });
}

async function start(name: Name, args: string[], ca: string): Promise<Target> {
  const port = await freePort();
  // stdout goes to /dev/null: the webhook pays for writing its log lines, the benchmark
  // does not pay for reading them.
  const child = spawn(process.execPath, [...args, "--port", String(port)], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    try {
      if ((await post(port, ca, "/healthz")).status === 200) return { name, port, process: child };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function run(target: Target, seconds: number, files: { ca: string; body: string; latencies: string }): Round {
  const generator = spawnSync(
    process.execPath,
    [
      root("bench/load.ts"),
      ...["--port", String(target.port), "--seconds", String(seconds)],
      ...["--connections", String(CONCURRENCY), "--server-pid", String(target.process.pid)],
      ...["--ca", files.ca, "--body", files.body, "--latencies", files.latencies],
    ],
    { encoding: "utf8" },
  );
  if (generator.status !== 0) {
    throw new Error(`the load generator failed against ${target.name}: ${generator.stderr}`);
  }
  const out = JSON.parse(generator.stdout) as {
    requests: number;
    seconds: number;
    cpuSeconds: number;
    serverCpuSeconds: number | null;
  };
  const bytes = readFileSync(files.latencies);
  return {
    requests: out.requests,
    seconds: out.seconds,
    // A copy: a Float64Array needs an 8-byte-aligned offset, which a Buffer does not promise.
    latenciesMs: new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)),
    generatorLoad: out.cpuSeconds / out.seconds,
    serverCpuUs: out.serverCpuSeconds === null ? undefined : (out.serverCpuSeconds * 1e6) / out.requests,
  };
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const fmt = (n: number | undefined, width: number, digits = 1) =>
  (n === undefined ? "n/a" : n.toFixed(digits)).padStart(width);
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");

const dir = mkdtempSync(join(tmpdir(), "bench-webhook-"));
const targets: Target[] = [];
try {
  const ca = await createCa({ commonName: "bench CA" });
  const pair = await issueServingCert(ca, { dnsNames: ["localhost"], ips: ["127.0.0.1"] });
  const files = { ca: join(dir, "ca.crt"), body: join(dir, "body.json"), latencies: join(dir, "latencies") };
  const cert = join(dir, "tls.crt");
  const key = join(dir, "tls.key");
  writeFileSync(cert, pair.certPem);
  writeFileSync(key, pair.keyPem);
  writeFileSync(files.ca, ca.certPem);
  writeFileSync(files.body, body);

  const webhook = await start(
    "webhook",
    [root("dist/cli.js"), "webhook", "--tls-cert", cert, "--tls-key", key].concat([
      "--sidecar-image",
      "coordinator-ha:bench",
      "--handler-url",
      "https://coordinator-ha-handler.coordinator-ha.svc",
    ]),
    ca.certPem,
  );
  targets.push(webhook);

  // Benchmark the injection path, not an error path; and give the baseline the same answer.
  const injected = await post(webhook.port, ca.certPem, "/mutate", body);
  const sample = JSON.parse(injected.text) as { response?: { patch?: string } };
  if (injected.status !== 200 || !sample.response?.patch) {
    throw new Error(`the webhook did not inject the benchmark pod: ${injected.text}`);
  }
  const answers = {
    baseline: injected.text,
    "baseline-bare": JSON.stringify({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response: { uid: "6f6f6f6f-0000-4000-8000-000000000001", allowed: true },
    }),
  };
  const baselines: [Name, string, string[]][] = [
    ["baseline-parse", answers.baseline, ["--parse"]],
    ["baseline-bare", answers["baseline-bare"], []],
    ["baseline", answers.baseline, []],
  ];
  for (const [name, answer, extra] of baselines) {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, answer);
    const args = [root("bench/baseline-server.ts"), "--tls-cert", cert, "--tls-key", key, "--answer", file];
    targets.unshift(await start(name, [...args, ...extra], ca.certPem));
  }

  console.log(
    `concurrency ${CONCURRENCY}, ${ROUNDS} rounds of ${SECONDS}s per server, ${availableParallelism()} CPUs, ` +
      `load average ${load()}`,
  );
  console.log(
    "server          round  requests     req/s   p50 ms   p99 ms  server CPU µs/req  generator CPU",
  );
  const results = new Map<Name, Round[]>(targets.map((t) => [t.name, []]));
  for (const target of targets) run(target, WARMUP_SECONDS, files);
  for (let round = 1; round <= ROUNDS; round++) {
    for (const target of targets) {
      const r = run(target, SECONDS, files);
      results.get(target.name)!.push(r);
      const sorted = r.latenciesMs.slice().sort();
      const saturated = r.generatorLoad >= GENERATOR_SATURATED ? "  (generator-bound)" : "";
      console.log(
        `${target.name.padEnd(14)} ${String(round).padStart(6)} ${String(r.requests).padStart(9)} ` +
          `${fmt(r.requests / r.seconds, 9, 0)} ${fmt(percentile(sorted, 50), 8, 2)} ${fmt(percentile(sorted, 99), 8, 2)}` +
          `  ${fmt(r.serverCpuUs, 17)}  ${fmt(r.generatorLoad * 100, 12, 0)}%${saturated}`,
      );
    }
  }

  const summary = (name: Name) => {
    const rounds = results.get(name)!;
    const all = new Float64Array(rounds.reduce((n, r) => n + r.latenciesMs.length, 0));
    let at = 0;
    for (const r of rounds) {
      all.set(r.latenciesMs, at);
      at += r.latenciesMs.length;
    }
    all.sort();
    const cpu = rounds.map((r) => r.serverCpuUs).filter((us) => us !== undefined);
    return {
      rps: median(rounds.map((r) => r.requests / r.seconds)),
      p50: percentile(all, 50),
      p99: percentile(all, 99),
      cpuUs: cpu.length > 0 ? median(cpu) : undefined,
    };
  };
  console.log(`\nload average ${load()}`);
  for (const name of ["baseline-bare", "baseline", "baseline-parse", "webhook"] as const) {
    const r = summary(name);
    console.log(
      `${name.padEnd(15)}${r.rps.toFixed(0).padStart(6)} req/s (median of rounds), ` +
        `p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, server CPU ${fmt(r.cpuUs, 0)} µs/request`,
    );
  }
  const w = summary("webhook");
  const b = summary("baseline");
  const ratio = w.rps / b.rps;
  const bareRatio = w.rps / summary("baseline-bare").rps;
  const cpuRatio = w.cpuUs === undefined || b.cpuUs === undefined ? undefined : b.cpuUs / w.cpuUs;
  console.log(
    `ratio webhook/baseline: ${ratio.toFixed(2)} (goal >= ${GOAL_RATIO}: ${ratio >= GOAL_RATIO ? "met" : "MISSED"}); ` +
      `webhook/baseline-bare: ${bareRatio.toFixed(2)}; ` +
      `webhook p99 ${w.p99.toFixed(2)} ms (goal < ${GOAL_P99_MS} ms: ${w.p99 < GOAL_P99_MS ? "met" : "MISSED"})`,
  );
  const ceiling = summary("baseline-parse");
  console.log(
    `ceiling: baseline-parse/baseline ${(ceiling.rps / b.rps).toFixed(2)}: reading the ${(body.length / 1024).toFixed(1)} KiB ` +
      `request with JSON.parse and nothing else` +
      (ceiling.cpuUs === undefined || b.cpuUs === undefined
        ? ""
        : ` (${(ceiling.cpuUs - b.cpuUs).toFixed(1)} µs of CPU per request)`) +
      `; no webhook on this stack that reads its request gets past it`,
  );
  if (cpuRatio !== undefined) {
    console.log(
      `CPU per request: baseline ${b.cpuUs!.toFixed(1)} µs, webhook ${w.cpuUs!.toFixed(1)} µs: ` +
        `the webhook's own work is ${(w.cpuUs! - b.cpuUs!).toFixed(1)} µs, and a server-bound webhook ` +
        `would reach ${cpuRatio.toFixed(2)} of the baseline's throughput`,
    );
  }
} finally {
  for (const t of targets) t.process.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
}
