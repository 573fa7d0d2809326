// npm run bench:footprint: what each component costs while it waits, against a bare Node.js
// process that only waits, all measured in the same run on the same machine:
//   bare         `node -e 'setInterval(() => {}, 2 ** 30)'`: the floor of any Node process;
//   sidecar      `coordinator-ha recover` in its steady state: startup passed (first instance),
//                its app (the reference Coordinator below) initialized with `set` through the
//                sidecar's commit API, the state confirmed to the handler; then it looks at the
//                app (8 s apart once settled), re-confirms and long-polls the head. Run
//                with the NODE_OPTIONS that the webhook injects;
//   coordinator  `coordinator-ha coordinator`, that sidecar's app, initialized;
//   webhook      `coordinator-ha webhook` after 200 injected AdmissionReviews;
//   handler      `coordinator-ha handler` watching BENCH_HANDLER_PODS (default 4) gated pods,
//                recovered and Ready, through a stand-in apiserver
//                (HTTPS, OIDC discovery, pod list and watch), which ends each watch after its
//                timeoutSeconds as the apiserver does, so the handler relists and re-watches.
// Sidecar and handler talk to stand-ins in this process (no Kubernetes needed); everything else
// is the built CLI, each component a process of its own.
//
// For each process: resident memory (VmRSS, and its anonymous part) sampled every second over
// the window, median; idle CPU from /proc/<pid>/task/*/schedstat (ns, every thread: GC and
// libuv workers included) over the window, in millicores. Rounds start fresh processes.
//
// Goals (issue 14): sidecar RSS <= 1.5 x bare, sidecar idle CPU < 1 millicore.
// Knobs: BENCH_WINDOW_SECONDS (default 60), BENCH_ROUNDS (default 2), BENCH_HANDLER_PODS (default
// 4), BENCH_JSON (where the JSON goes; default bench/results/footprint.json),
// BENCH_SIDECAR_NODE_OPTIONS (instead of the webhook's), BENCH_CLI (another build's dist/cli.js,
// e.g. of an older commit, to compare).
// Linux only (/proc).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpsServer, request, type Server } from "node:https";
import { createServer as createNetServer } from "node:net";
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { SidecarEnv } from "../src/recovery/sidecar-env.ts";
import { sidecarContainer } from "../src/webhook/sidecar.ts";
import { sidecarUser } from "../src/webhook/sidecar-user.ts";
import { createCa, issueServingCert } from "../webhook-certs/x509.ts";

const WINDOW_SECONDS = Number(process.env["BENCH_WINDOW_SECONDS"] ?? 60);
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 2);
/** After the last setup step, before the window: late timers, lazy compilation, first GCs. */
const SETTLE_SECONDS = 5;
const WEBHOOK_REVIEWS = 200;
const GOAL_SIDECAR_RATIO = 1.5;
const GOAL_SIDECAR_MILLICORES = 1;
/** How many gated pods the handler watches (bench:handler measures it on a real apiserver). */
const HANDLER_PODS = Number(process.env["BENCH_HANDLER_PODS"] ?? 4);

const root = (path: string) => fileURLToPath(new URL(`../${path}`, import.meta.url));
const CLI = process.env["BENCH_CLI"] ?? root("dist/cli.js");
const JSON_OUT = process.env["BENCH_JSON"] ?? root("bench/results/footprint.json");

type Name = "bare" | "sidecar" | "coordinator" | "webhook" | "handler";
const NAMES: Name[] = ["bare", "sidecar", "coordinator", "webhook", "handler"];

interface Measured {
  rssMiB: number;
  anonMiB: number;
  millicores: number;
}

// ---------------------------------------------------------------------------------------------
// /proc

function memory(pid: number): { rssKiB: number; anonKiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rssKiB: kib("VmRSS"), anonKiB: kib("RssAnon") };
}

/** CPU time of every thread of the process, in ns. */
function cpuNs(pid: number): number {
  let total = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // a thread that ended between the listing and the read
    }
  }
  return total;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

// ---------------------------------------------------------------------------------------------
// processes

async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Running {
  name: Name;
  child: ChildProcess;
  /** Resolves with the first log line whose msg is `msg`. */
  logged(msg: string): Promise<Record<string, unknown>>;
}

function start(name: Name, args: string[], env: Record<string, string> = {}): Running {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Record<string, unknown>[] = [];
  const waiters: { msg: string; resolve: (line: Record<string, unknown>) => void }[] = [];
  let out = "";
  let err = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    out += chunk.toString();
    const parts = out.split("\n");
    out = parts.pop()!;
    for (const text of parts) {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        continue;
      }
      lines.push(line);
      for (const w of waiters.filter((w) => w.msg === line["msg"])) w.resolve(line);
    }
  });
  child.stderr!.on("data", (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<never>((_, reject) =>
    child.once("exit", (code) =>
      reject(
        new Error(`${name} exited with ${code}: ${err.slice(-2000)} ${JSON.stringify(lines.slice(-3))}`),
      ),
    ),
  );
  exited.catch(() => undefined);
  return {
    name,
    child,
    logged: (msg) => {
      const seen = lines.find((l) => l["msg"] === msg);
      if (seen) return Promise.resolve(seen);
      const line = new Promise<Record<string, unknown>>((resolve) => waiters.push({ msg, resolve }));
      const timeout = sleep(30_000).then(() => {
        throw new Error(
          `${name} did not log "${msg}" within 30 s; last lines: ${JSON.stringify(lines.slice(-5))}`,
        );
      });
      return Promise.race([line, exited, timeout]);
    },
  };
}

async function stop(running: Running): Promise<void> {
  if (running.child.exitCode !== null || running.child.signalCode !== null) return;
  const exited = new Promise((resolve) => running.child.once("exit", resolve));
  running.child.kill("SIGTERM");
  await Promise.race([exited, sleep(10_000)]);
  if (running.child.exitCode === null) running.child.kill("SIGKILL");
}

function postJson(port: number, ca: string, path: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", servername: "localhost", port, method: "POST", path, ca, agent: false },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.setHeader("content-type", "application/json");
    req.end(body);
  });
}

// ---------------------------------------------------------------------------------------------
// stand-ins for the handler (for the sidecar) and for the apiserver (for the handler)

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)),
  );
}

/**
 * The handler as one sidecar sees it: no initialized peer at first, a head with a quorum of one
 * (a proposal commits at once), GET /v1/head held open until the head differs from what the
 * caller knows or waitSeconds pass (as the handler's long-poll), and every confirmation taken.
 */
function fakeHandler(tls: { certPem: string; keyPem: string }): Server {
  let committed: { digest: string; parent: string | null; by: string; at: string } | null = null;
  const waiting = new Set<() => void>();
  const head = () => ({ committed, proposal: null, quorum: 1 });
  return createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "https://handler");
      const json = (status: number, body: unknown) =>
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
      const body = () => JSON.parse(Buffer.concat(chunks).toString() || "{}") as Record<string, unknown>;
      if (req.method === "GET" && url.pathname === "/v1/peers") {
        json(200, {
          namespace: "bench",
          statefulSet: "coordinator",
          peers: [],
          head: { digest: committed?.digest ?? null },
        });
      } else if (req.method === "GET" && url.pathname === "/v1/head") {
        if ((url.searchParams.get("known") ?? "") !== (committed?.digest ?? "")) {
          json(200, head());
          return;
        }
        const wake = () => {
          clearTimeout(timer);
          waiting.delete(wake);
          if (!res.writableEnded) json(200, head());
        };
        const timer = setTimeout(wake, Number(url.searchParams.get("waitSeconds") ?? 0) * 1000);
        waiting.add(wake);
        res.on("close", () => {
          clearTimeout(timer);
          waiting.delete(wake);
        });
      } else if (req.method === "POST" && url.pathname === "/v1/proposals") {
        const { digest, parent } = body() as { digest: string; parent: string | null };
        committed = { digest, parent, by: "coordinator-0", at: new Date().toISOString() };
        json(200, head());
        for (const wake of [...waiting]) wake();
      } else if (req.method === "POST" && url.pathname === "/v1/holds") {
        json(200, { committed: true });
      } else if (req.method === "POST" && url.pathname === "/v1/recovered") {
        json(200, { changed: false, reason: "Initialized", message: "" });
      } else {
        json(404, { error: `no ${req.method} ${url.pathname} here` });
      }
    });
  });
}

const GATE = "coordinator-ha.io/recovered";
function gatedPod(ordinal: number) {
  const name = `coordinator-${ordinal}`;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: "bench",
      uid: `00000000-0000-4000-8000-${String(ordinal).padStart(12, "0")}`,
      resourceVersion: String(10 + ordinal),
      labels: { "app.kubernetes.io/name": "coordinator" },
      annotations: { "coordinator-ha.io/status": "injected" },
      ownerReferences: [
        { apiVersion: "apps/v1", kind: "StatefulSet", name: "coordinator", uid: "sts-uid", controller: true },
      ],
    },
    spec: {
      serviceAccountName: "coordinator",
      nodeName: "node-1",
      readinessGates: [{ conditionType: GATE }],
      containers: [{ name: "coordinator", image: "coordinator-ha:bench" }],
    },
    status: {
      phase: "Running",
      podIP: `10.0.${Math.floor(ordinal / 250)}.${10 + (ordinal % 250)}`,
      conditions: [
        { type: GATE, status: "True", reason: "Initialized", message: "" },
        { type: "Ready", status: "True" },
      ],
      containerStatuses: [{ name: "coordinator", ready: true, restartCount: 0, image: "", imageID: "" }],
    },
  };
}

/** Enough of the apiserver for the handler to start and stay synced. */
function fakeApiserver(tls: { certPem: string; keyPem: string }, issuer: string): Server {
  const pods = Array.from({ length: HANDLER_PODS }, (_, i) => gatedPod(i));
  return createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const url = new URL(req.url ?? "/", "https://apiserver");
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    };
    if (url.pathname === "/.well-known/openid-configuration") {
      json(200, { issuer, jwks_uri: `${issuer}/openid/v1/jwks` });
    } else if (url.pathname === "/openid/v1/jwks") {
      json(200, { keys: [] });
    } else if (url.pathname === "/api/v1/pods" && url.searchParams.get("watch") === "true") {
      // Nothing changes; the watch ends when it asked to, as the apiserver ends it.
      res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
      res.flushHeaders();
      const seconds = Number(url.searchParams.get("timeoutSeconds") ?? 60);
      const timer = setTimeout(() => res.end(), seconds * 1000);
      res.on("close", () => clearTimeout(timer));
    } else if (url.pathname === "/api/v1/pods") {
      json(200, { apiVersion: "v1", kind: "PodList", metadata: { resourceVersion: "100" }, items: pods });
    } else {
      json(404, { kind: "Status", apiVersion: "v1", status: "Failure", reason: "NotFound", code: 404 });
    }
  });
}

// ---------------------------------------------------------------------------------------------
// one round

interface Fixture {
  dir: string;
  ca: string;
  cert: string;
  key: string;
  /** The serving pair of the stand-ins (for 127.0.0.1 and localhost, from `ca`). */
  tls: { certPem: string; keyPem: string };
  kubeconfig: string;
  reviewBody: string;
}

/**
 * The NODE_OPTIONS that the webhook puts into the sidecar container, if any;
 * BENCH_SIDECAR_NODE_OPTIONS replaces them, to try other flags.
 */
function sidecarNodeOptions(): string | undefined {
  const override = process.env["BENCH_SIDECAR_NODE_OPTIONS"];
  if (override !== undefined) return override;
  const container = sidecarContainer(
    { image: "coordinator-ha:bench", handlerUrl: "https://handler", handlerCa: "", stateDir: "/state" },
    "",
    sidecarUser(undefined, { name: "app" }),
  );
  return container.env?.find((e) => e.name === "NODE_OPTIONS")?.value;
}

async function round(fx: Fixture, n: number): Promise<Record<Name, Measured>> {
  const dir = mkdtempSync(join(fx.dir, `round-${n}-`));
  const running: Running[] = [];
  let handlerStandIn: Server | undefined;
  try {
    running.push(start("bare", ["-e", "setInterval(() => {}, 2 ** 30)"]));

    const webhookPort = await freePort();
    const webhook = start("webhook", [
      CLI,
      "webhook",
      ...["--port", String(webhookPort), "--tls-cert", fx.cert, "--tls-key", fx.key],
      ...[
        "--sidecar-image",
        "coordinator-ha:bench",
        "--handler-url",
        "https://coordinator-ha-handler.bench.svc",
      ],
    ]);
    running.push(webhook);

    const handler = start("handler", [
      CLI,
      "handler",
      ...["--port", "0", "--tls-cert", fx.cert, "--tls-key", fx.key, "--kubeconfig", fx.kubeconfig],
    ]);
    running.push(handler);

    // A Coordinator pod: the sidecar first, the app once the sidecar's startup passed. Each
    // round's pod starts a new StatefulSet history, so it gets a handler of its own.
    handlerStandIn = fakeHandler(fx.tls);
    const handlerPort = await listen(handlerStandIn);
    const stateDir = join(dir, "state");
    mkdirSync(stateDir);
    writeFileSync(join(dir, "token"), "bench-handler-token");
    writeFileSync(join(dir, "peer-token"), "bench-peer-token");
    const [apiPort, probePort, commitPort] = [await freePort(), await freePort(), await freePort()];
    const nodeOptions = sidecarNodeOptions();
    const sidecar = start("sidecar", [CLI, "recover"], {
      [SidecarEnv.podName]: "coordinator-0",
      [SidecarEnv.podNamespace]: "bench",
      [SidecarEnv.podUid]: "00000000-0000-4000-8000-000000000000",
      [SidecarEnv.podIp]: "127.0.0.1",
      [SidecarEnv.serviceAccount]: "coordinator",
      [SidecarEnv.handlerUrl]: `https://127.0.0.1:${handlerPort}`,
      [SidecarEnv.handlerCa]: fx.ca,
      [SidecarEnv.stateDir]: stateDir,
      [SidecarEnv.tokenFile]: join(dir, "token"),
      [SidecarEnv.peerTokenFile]: join(dir, "peer-token"),
      [SidecarEnv.peerPort]: "0",
      [SidecarEnv.probePort]: "0",
      [SidecarEnv.appReadinessUrl]: `http://127.0.0.1:${probePort}/probe/readiness`,
      [SidecarEnv.commitPort]: String(commitPort),
      ...(nodeOptions === undefined ? {} : { NODE_OPTIONS: nodeOptions }),
    });
    running.push(sidecar);
    await sidecar.logged("startup passed: the app may start");
    const coordinator = start("coordinator", [
      CLI,
      "coordinator",
      ...["--state-dir", stateDir, "--api-port", String(apiPort), "--probe-port", String(probePort)],
      ...["--commit-api", `http://127.0.0.1:${commitPort}/v1/commit`],
    ]);
    running.push(coordinator);
    await coordinator.logged("coordinator listening");
    const manifest = join(dir, "manifest.json");
    writeFileSync(manifest, JSON.stringify({ policies: ["bench"] }));
    const set = spawnSync(process.execPath, [CLI, "set", "-c", `127.0.0.1:${apiPort}`, "-m", manifest], {
      encoding: "utf8",
    });
    if (set.status !== 0) throw new Error(`set failed: ${set.stderr}`);
    await sidecar.logged("confirmed to the handler: the app holds the state");

    await webhook.logged("webhook serving");
    for (let i = 0; i < WEBHOOK_REVIEWS; i++) {
      const status = await postJson(webhookPort, fx.ca, "/mutate", fx.reviewBody);
      if (status !== 200) throw new Error(`the webhook answered ${status}`);
    }
    await handler.logged("handler serving");
    await handler.logged("listed pods");

    await sleep(SETTLE_SECONDS * 1000);
    const pids = new Map(running.map((r) => [r.name, r.child.pid!]));
    const cpu0 = new Map([...pids].map(([name, pid]) => [name, cpuNs(pid)]));
    const t0 = process.hrtime.bigint();
    const samples = new Map<Name, { rss: number[]; anon: number[] }>(
      NAMES.map((n) => [n, { rss: [], anon: [] }]),
    );
    for (let s = 0; s < WINDOW_SECONDS; s++) {
      await sleep(1000);
      for (const [name, pid] of pids) {
        const m = memory(pid);
        samples.get(name)!.rss.push(m.rssKiB / 1024);
        samples.get(name)!.anon.push(m.anonKiB / 1024);
      }
    }
    const elapsedNs = Number(process.hrtime.bigint() - t0);
    for (const r of running) {
      if (r.child.exitCode !== null) throw new Error(`${r.name} exited during the window`);
    }
    return Object.fromEntries(
      NAMES.map((name) => [
        name,
        {
          rssMiB: median(samples.get(name)!.rss),
          anonMiB: median(samples.get(name)!.anon),
          millicores: ((cpuNs(pids.get(name)!) - cpu0.get(name)!) / elapsedNs) * 1000,
        },
      ]),
    ) as Record<Name, Measured>;
  } finally {
    await Promise.all(running.map(stop));
    handlerStandIn?.closeAllConnections();
    handlerStandIn?.close();
  }
}

// ---------------------------------------------------------------------------------------------
// main

const fmt = (n: number, width: number, digits = 1) => n.toFixed(digits).padStart(width);

const work = mkdtempSync(join(tmpdir(), "bench-footprint-"));
const servers: Server[] = [];
try {
  const ca = await createCa({ commonName: "bench CA" });
  const tls = await issueServingCert(ca, { dnsNames: ["localhost"], ips: ["127.0.0.1"] });
  const cert = join(work, "tls.crt");
  const key = join(work, "tls.key");
  writeFileSync(cert, tls.certPem);
  writeFileSync(key, tls.keyPem);

  const apiserver = fakeApiserver(tls, "https://kubernetes.default.svc.cluster.local");
  servers.push(apiserver);
  const apiPort = await listen(apiserver);
  const kubeconfig = join(work, "kubeconfig");
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: "bench",
          cluster: {
            server: `https://127.0.0.1:${apiPort}`,
            "certificate-authority-data": Buffer.from(ca.certPem).toString("base64"),
          },
        },
      ],
      users: [{ name: "bench", user: { token: "bench-token" } }],
      contexts: [{ name: "bench", context: { cluster: "bench", user: "bench" } }],
      "current-context": "bench",
    }),
  );
  const reviewBody = JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: "6f6f6f6f-0000-4000-8000-000000000001",
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      namespace: "bench",
      operation: "CREATE",
      object: JSON.parse(
        readFileSync(root("test/unit/webhook/testdata/contrast-coordinator.in.json"), "utf8"),
      ),
    },
  });
  const fx: Fixture = {
    dir: work,
    ca: ca.certPem,
    cert,
    key,
    tls,
    kubeconfig,
    reviewBody,
  };

  const cpu = cpus()[0]?.model ?? "unknown CPU";
  console.log(
    `${ROUNDS} rounds, ${WINDOW_SECONDS}s window each; Node ${process.version}; ${availableParallelism()} CPUs ` +
      `(${cpu}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB; load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")}`,
  );
  console.log(`sidecar NODE_OPTIONS (from the webhook): ${sidecarNodeOptions() ?? "(none)"}`);
  const rounds: Record<Name, Measured>[] = [];
  for (let n = 1; n <= ROUNDS; n++) {
    const result = await round(fx, n);
    rounds.push(result);
    console.log(
      `round ${n}: ` +
        NAMES.map(
          (name) => `${name} ${fmt(result[name].rssMiB, 0)} MiB ${fmt(result[name].millicores, 0, 2)} mc`,
        ).join(", "),
    );
  }

  const summary = Object.fromEntries(
    NAMES.map((name) => [
      name,
      {
        rssMiB: median(rounds.map((r) => r[name].rssMiB)),
        anonMiB: median(rounds.map((r) => r[name].anonMiB)),
        millicores: median(rounds.map((r) => r[name].millicores)),
      },
    ]),
  ) as Record<Name, Measured>;
  const bare = summary.bare;
  console.log("");
  console.log("component     RSS MiB  anon MiB  x bare RSS  idle CPU millicores");
  for (const name of NAMES) {
    const m = summary[name];
    console.log(
      `${name.padEnd(12)} ${fmt(m.rssMiB, 8)} ${fmt(m.anonMiB, 9)} ${fmt(m.rssMiB / bare.rssMiB, 11, 2)} ${fmt(m.millicores, 20, 2)}`,
    );
  }
  const ratio = summary.sidecar.rssMiB / bare.rssMiB;
  const verdicts = [
    ratio <= GOAL_SIDECAR_RATIO
      ? `sidecar RSS ${ratio.toFixed(2)} x bare: goal <= ${GOAL_SIDECAR_RATIO} met`
      : `sidecar RSS ${ratio.toFixed(2)} x bare (${summary.sidecar.rssMiB.toFixed(1)} vs ${bare.rssMiB.toFixed(1)} MiB): goal <= ${GOAL_SIDECAR_RATIO} MISSED by ${(summary.sidecar.rssMiB - GOAL_SIDECAR_RATIO * bare.rssMiB).toFixed(1)} MiB`,
    summary.sidecar.millicores < GOAL_SIDECAR_MILLICORES
      ? `sidecar idle CPU ${summary.sidecar.millicores.toFixed(2)} millicores: goal < ${GOAL_SIDECAR_MILLICORES} met`
      : `sidecar idle CPU ${summary.sidecar.millicores.toFixed(2)} millicores: goal < ${GOAL_SIDECAR_MILLICORES} MISSED`,
  ];
  console.log("");
  for (const v of verdicts) console.log(v);

  mkdirSync(dirname(JSON_OUT), { recursive: true });
  writeFileSync(
    JSON_OUT,
    `${JSON.stringify(
      {
        at: new Date().toISOString(),
        node: process.version,
        cpus: availableParallelism(),
        cpuModel: cpu,
        windowSeconds: WINDOW_SECONDS,
        sidecarNodeOptions: sidecarNodeOptions() ?? null,
        rounds,
        summary,
        goals: {
          sidecarRssRatio: { goal: GOAL_SIDECAR_RATIO, value: ratio, met: ratio <= GOAL_SIDECAR_RATIO },
          sidecarMillicores: {
            goal: GOAL_SIDECAR_MILLICORES,
            value: summary.sidecar.millicores,
            met: summary.sidecar.millicores < GOAL_SIDECAR_MILLICORES,
          },
        },
      },
      null,
      2,
    )}\n`,
  );
  console.log(`JSON: ${JSON_OUT}`);
} finally {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  rmSync(work, { recursive: true, force: true });
}
