// npm run bench:webhook: POST /mutate throughput and latency of the built webhook at
// concurrency 32, against baseline servers with the same TLS and HTTP stack that answer a
// fixed "allowed" AdmissionReview (bench/baseline-server.ts):
//   baseline       answers with the very bytes the webhook sends for the benchmark pod
//                  (its patch included), so the difference is the webhook's own work;
//   baseline-bare  answers without a patch (about 120 bytes instead of about 3.5 KiB). On a
//                  2-core machine the load generator shares the CPU, so this one also shows
//                  what receiving the larger answer costs the client.
// All run as their own processes, in alternating rounds, so that load from other work on
// the machine hits them alike.
//
// Goals: webhook throughput >= 0.7 x baseline, webhook p99 < 20 ms.
// Knobs: BENCH_SECONDS (per round, default 5), BENCH_ROUNDS (per server, default 3).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { createServer } from "node:net";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createCa, issueServingCert } from "../webhook-certs/x509.ts";

const CONCURRENCY = 32;
const SECONDS = Number(process.env["BENCH_SECONDS"] ?? 5);
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 3);
const WARMUP_SECONDS = 1;
const GOAL_RATIO = 0.7;
const GOAL_P99_MS = 20;

const root = (path: string) => fileURLToPath(new URL(`../${path}`, import.meta.url));

type Name = "baseline" | "baseline-bare" | "webhook";

interface Target {
  name: Name;
  port: number;
  agent: Agent;
  process: ChildProcess;
}

interface Round {
  requests: number;
  seconds: number;
  latenciesMs: number[];
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

function post(target: Target, path: string, payload?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        servername: "localhost",
        port: target.port,
        method: payload ? "POST" : "GET",
        path,
        agent: target.agent,
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
  const target: Target = {
    name,
    port,
    process: child,
    agent: new Agent({ keepAlive: true, maxSockets: CONCURRENCY, ca }),
  };
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    try {
      if ((await post(target, "/healthz")).status === 200) return target;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function run(target: Target, seconds: number): Promise<Round> {
  const latenciesMs: number[] = [];
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      const reply = await post(target, "/mutate", body);
      latenciesMs.push(performance.now() - t0);
      if (reply.status !== 200) throw new Error(`${target.name} answered ${reply.status}: ${reply.text}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { requests: latenciesMs.length, seconds: (performance.now() - started) / 1000, latenciesMs };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const fmt = (n: number, digits = 1) => n.toFixed(digits).padStart(8);

const dir = mkdtempSync(join(tmpdir(), "bench-webhook-"));
const targets: Target[] = [];
try {
  const ca = await createCa({ commonName: "bench CA" });
  const pair = await issueServingCert(ca, { dnsNames: ["localhost"], ips: ["127.0.0.1"] });
  const cert = join(dir, "tls.crt");
  const key = join(dir, "tls.key");
  writeFileSync(cert, pair.certPem);
  writeFileSync(key, pair.keyPem);

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
  const injected = await post(webhook, "/mutate", body);
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
  for (const [name, answer] of Object.entries(answers) as [Name, string][]) {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, answer);
    const args = [root("bench/baseline-server.ts"), "--tls-cert", cert, "--tls-key", key, "--answer", file];
    targets.unshift(await start(name, args, ca.certPem));
  }

  console.log(
    `concurrency ${CONCURRENCY}, ${ROUNDS} rounds of ${SECONDS}s per server, ${availableParallelism()} CPUs, ` +
      `load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")}`,
  );
  console.log("server     round  requests     req/s   p50 ms   p99 ms");
  const results = new Map<Name, Round[]>(targets.map((t) => [t.name, []]));
  for (const target of targets) await run(target, WARMUP_SECONDS);
  for (let round = 1; round <= ROUNDS; round++) {
    for (const target of targets) {
      const r = await run(target, SECONDS);
      results.get(target.name)!.push(r);
      const sorted = [...r.latenciesMs].sort((a, b) => a - b);
      console.log(
        `${target.name.padEnd(9)} ${String(round).padStart(6)} ${String(r.requests).padStart(9)} ` +
          `${fmt(r.requests / r.seconds, 0)}  ${fmt(percentile(sorted, 50), 2)} ${fmt(percentile(sorted, 99), 2)}`,
      );
    }
  }

  const summary = (name: Name) => {
    const rounds = results.get(name)!;
    const all = rounds.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
    return {
      rps: median(rounds.map((r) => r.requests / r.seconds)),
      p50: percentile(all, 50),
      p99: percentile(all, 99),
    };
  };
  const w = summary("webhook");
  console.log();
  for (const name of ["baseline-bare", "baseline", "webhook"] as const) {
    const r = summary(name);
    console.log(
      `${name.padEnd(14)} ${r.rps.toFixed(0).padStart(6)} req/s (median of rounds), ` +
        `p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms`,
    );
  }
  const ratio = w.rps / summary("baseline").rps;
  const bareRatio = w.rps / summary("baseline-bare").rps;
  console.log(
    `ratio webhook/baseline: ${ratio.toFixed(2)} (goal >= ${GOAL_RATIO}: ${ratio >= GOAL_RATIO ? "met" : "MISSED"}); ` +
      `webhook/baseline-bare: ${bareRatio.toFixed(2)}; ` +
      `webhook p99 ${w.p99.toFixed(2)} ms (goal < ${GOAL_P99_MS} ms: ${w.p99 < GOAL_P99_MS ? "met" : "MISSED"})`,
  );
} finally {
  for (const t of targets) {
    t.agent.destroy();
    t.process.kill("SIGTERM");
  }
  rmSync(dir, { recursive: true, force: true });
}
