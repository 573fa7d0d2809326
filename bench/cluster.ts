// npm run bench:cluster [-- --rounds N] [-- --out FILE]
//
// What HA costs an operator, measured side by side on the local cluster (issue 14): the same
// StatefulSet and probes (charts/coordinator), three ways a new pod gets the state:
//   coordinator-ha  the webhook, sidecar and handler (the chart's default recovery.mode);
//   guide           recovery.mode self: the Coordinator asks a Ready peer itself, Contrast's
//                   mechanism and the anchor that coordinator-ha must beat;
//   floor           recovery.mode floor: no state, each pod Ready at start.
// In rounds that alternate the systems: scale 1->3, scale 3->5, `kubectl rollout restart` of 3
// and the deletion of one pod, each under the availability probe (test/cluster/workflow/
// probe.ts). For every new pod a timeline from a pod watch (times as this process saw them):
// created, scheduled, sidecar started, sidecar ready, app started, app ready, gate True,
// Ready. It prints a table, the ratios and, where a goal is missed, why; and writes JSON and a
// PNG plot of the timelines made from it (plot.ts).
//
// It starts the cluster if none runs and stops it again. The cluster is shared: run it alone.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { AppsV1Api, CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { RECOVERED_CONDITION, SIDECAR_NAME } from "../src/names.ts";
import { tool } from "../test/charts/helm.ts";
import { installWorkflow } from "../test/cluster/e2e/harness.ts";
import { createNamespace, deleteNamespace, kubeConfig } from "../test/cluster/kube.ts";
import { down, up } from "../test/cluster/launcher/cluster.ts";
import { UserFiles, set } from "../test/cluster/workflow/coordinator.ts";
import { listWatch } from "../test/cluster/workflow/list-watch.ts";
import { startProbe, type ProbeReport } from "../test/cluster/workflow/probe.ts";
import { plotFile } from "./plot.ts";
import { CLI, Shell } from "../test/cluster/workflow/shell.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "1" },
    out: { type: "string", default: "bench/results/cluster.json" },
  },
});
const ROUNDS = Number(values.rounds);
const SYSTEMS = ["coordinator-ha", "guide", "floor"] as const;
type System = (typeof SYSTEMS)[number];
const SCENARIOS = ["scale 1->3", "scale 3->5", "rollout restart 3", "delete 1 pod"] as const;
type Scenario = (typeof SCENARIOS)[number];

/** The points of a pod's timeline, in ms since the scenario started. */
const POINTS = [
  "created",
  "scheduled",
  "sidecarStarted",
  "sidecarListening",
  "stateWritten",
  "startupPassed",
  "sidecarReady",
  "appStarted",
  "appReady",
  "confirmed",
  "gateTrue",
  "ready",
] as const;
/**
 * The points that only the sidecar's own log has (its line's time; every process here shares
 * one clock): coordinator-ha's pods only.
 */
const SIDECAR_LOG_POINTS: Partial<Record<Point, string>> = {
  sidecarListening: "recovery sidecar listening",
  stateWritten: "wrote the state recovered from a peer",
  startupPassed: "startup passed: the app may start",
  confirmed: "confirmed to the handler: the app holds the state",
};
type Point = (typeof POINTS)[number];
type Timeline = Partial<Record<Point, number>> & { pod: string; uid: string };

interface Run {
  round: number;
  system: System;
  scenario: Scenario;
  wallMs: number;
  pods: Timeline[];
  probe: Pick<ProbeReport, "requests" | "minReadyEndpoints" | "seconds"> & { failed: number };
}

const log = (msg: string) => console.error(`[bench] ${msg}`);
const runs: Run[] = [];

const started = await up({ log });
try {
  for (let round = 1; round <= ROUNDS; round++) {
    // Alternate the order from round to round, so that no system always runs first.
    const order = round % 2 === 1 ? SYSTEMS : [...SYSTEMS].reverse();
    for (const system of order) runs.push(...(await runSystem(round, system)));
  }
} finally {
  if (!started.reused) await down(log);
}

mkdirSync(dirname(values.out), { recursive: true });
writeFileSync(
  values.out,
  `${JSON.stringify({ date: new Date().toISOString(), points: POINTS, runs }, null, 2)}\n`,
);
report();
const png = values.out.replace(/\.json$/, "") + ".png";
plotFile(values.out, png);
log(`wrote ${values.out} and ${png}`);

async function runSystem(round: number, system: System): Promise<Run[]> {
  log(`round ${round}: ${system}`);
  const env = await install(system);
  const results: Run[] = [];
  try {
    const files = new UserFiles();
    const manifest = files.write("manifest.json", JSON.stringify({ policies: ["bench"] }));
    await waitReplicas(env, 1, system !== "floor" ? 0 : 1);
    const core = env.kc.makeApiClient(CoreV1Api);
    // The pod exists before it has an address.
    let ip: string | undefined;
    while (
      !(ip = (await core.readNamespacedPod({ namespace: env.namespace, name: "coordinator-0" })).status
        ?.podIP)
    ) {
      await sleep(100);
    }
    const { state } = await set(env.sh, `${ip}:1313`, manifest, { timeoutMs: 120_000 });
    files.remove();
    if (!state) throw new Error(`${system}: set failed`);
    await waitReplicas(env, 1, 1);
    const apps = env.kc.makeApiClient(AppsV1Api);
    const svc = await core.readNamespacedService({ namespace: env.namespace, name: "coordinator-ready" });
    const scenario = async (name: Scenario, command: string, replicas: number, gone?: string) => {
      const probe = await startProbe({
        kc: env.kc,
        namespace: env.namespace,
        service: "coordinator-ready",
        serviceAddress: `${svc.spec!.clusterIP}:1313`,
        publicKey: state.publicKey,
        pauseMs: 50,
      });
      const t0 = Date.now();
      const timelines = await watchPods(env.kc, env.namespace, t0);
      const before = (await apps.readNamespacedStatefulSet({ namespace: env.namespace, name: "coordinator" }))
        .status?.updateRevision;
      await env.sh.run(command);
      await waitReplicas(env, replicas, replicas, gone === "rollout" ? { rolloutFrom: before } : gone);
      const wallMs = Date.now() - t0;
      const pods = timelines.stop();
      if (system === "coordinator-ha") await addSidecarLogPoints(core, env.namespace, pods, t0);
      const report = await probe.stop();
      results.push({
        round,
        system,
        scenario: name,
        wallMs,
        pods,
        probe: {
          requests: report.requests,
          failed: report.failures.length,
          minReadyEndpoints: report.minReadyEndpoints,
          seconds: report.seconds,
        },
      });
      log(`${system} ${name}: ${(wallMs / 1000).toFixed(1)} s, ${report.failures.length} failed requests`);
    };
    await scenario("scale 1->3", "kubectl scale statefulset/coordinator --replicas 3", 3);
    await scenario("scale 3->5", "kubectl scale statefulset/coordinator --replicas 5", 5);
    await env.sh.run("kubectl scale statefulset/coordinator --replicas 3");
    await waitReplicas(env, 3, 3);
    await scenario("rollout restart 3", "kubectl rollout restart statefulset/coordinator", 3, "rollout");
    const uid = (await core.readNamespacedPod({ namespace: env.namespace, name: "coordinator-1" })).metadata!
      .uid!;
    await scenario("delete 1 pod", "kubectl delete pod coordinator-1 --wait=false", 3, uid);
  } finally {
    await env.cleanup();
  }
  return results;
}

interface Env {
  sh: Shell;
  kc: KubeConfig;
  namespace: string;
  cleanup(): Promise<void>;
}

async function install(system: System): Promise<Env> {
  if (system === "coordinator-ha") return installWorkflow("bench-cha");
  const admin = kubeConfig();
  const namespace = await createNamespace(admin, `bench-${system}`);
  const kc = kubeConfig();
  kc.contexts = kc.contexts.map((c) => (c.name === kc.currentContext ? { ...c, namespace } : c));
  const files = new UserFiles();
  const sh = new Shell({
    programs: { kubectl: [tool("kubectl")], helm: [tool("helm")], "coordinator-ha": CLI },
    env: { KUBECONFIG: files.write("kubeconfig", kc.exportConfig()) },
  });
  await sh.run(
    `helm install coordinator charts/coordinator --set recovery.mode=${system === "guide" ? "self" : "floor"}`,
  );
  return {
    sh,
    kc,
    namespace,
    cleanup: async () => {
      await deleteNamespace(admin, namespace);
      files.remove();
    },
  };
}

/**
 * Until the StatefulSet has `replicas` pods and `ready` of them are Ready; with `gone` (a pod
 * uid, or the revision before a rollout), also until that pod is replaced or the rollout is complete.
 */
async function waitReplicas(
  env: Env,
  replicas: number,
  ready: number,
  gone?: string | { rolloutFrom: string | undefined },
): Promise<void> {
  const core = env.kc.makeApiClient(CoreV1Api);
  const apps = env.kc.makeApiClient(AppsV1Api);
  const deadline = Date.now() + 300_000;
  for (;;) {
    const sts = await apps.readNamespacedStatefulSet({ namespace: env.namespace, name: "coordinator" });
    const pods = (await core.listNamespacedPod({ namespace: env.namespace })).items;
    const readyPods = pods.filter((p) => !p.metadata?.deletionTimestamp && isReady(p)).length;
    let done = pods.length === replicas && readyPods >= ready;
    if (typeof gone === "object") {
      // The controller has seen the restart (a new revision), and every pod runs it.
      const st = sts.status;
      done &&=
        st?.updateRevision !== gone.rolloutFrom &&
        st?.currentRevision === st?.updateRevision &&
        st?.updatedReplicas === replicas &&
        pods.every((p) => p.metadata?.labels?.["controller-revision-hash"] === st?.updateRevision);
    } else if (gone !== undefined) {
      done &&= !pods.some((p) => p.metadata?.uid === gone);
    }
    if (done) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${ready}/${replicas} Ready`);
    await sleep(100);
  }
}

function isReady(p: V1Pod): boolean {
  return p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/** Records, for every pod created after t0, when each point of its timeline was first seen. */
async function watchPods(kc: KubeConfig, namespace: string, t0: number) {
  const timelines = new Map<string, Timeline>();
  const known = new Set<string>();
  let first = true;
  const see = (pod: V1Pod) => {
    const uid = pod.metadata!.uid!;
    if (first) {
      known.add(uid);
      return;
    }
    if (known.has(uid)) return;
    let t = timelines.get(uid);
    if (!t) timelines.set(uid, (t = { pod: pod.metadata!.name!, uid }));
    const now = Date.now() - t0;
    const mark = (point: Point, yes: boolean) => {
      if (yes && t[point] === undefined) t[point] = now;
    };
    const container = (name: string) => pod.status?.containerStatuses?.find((c) => c.name === name);
    const sidecar =
      container(SIDECAR_NAME) ?? pod.status?.initContainerStatuses?.find((c) => c.name === SIDECAR_NAME);
    const app = container("coordinator");
    mark("created", true);
    mark("scheduled", Boolean(pod.spec?.nodeName));
    mark("sidecarStarted", Boolean(sidecar?.state?.running));
    mark("sidecarReady", sidecar?.ready === true);
    mark("appStarted", Boolean(app?.state?.running));
    mark("appReady", app?.ready === true);
    mark(
      "gateTrue",
      pod.status?.conditions?.some((c) => c.type === RECOVERED_CONDITION && c.status === "True") ?? false,
    );
    mark("ready", isReady(pod));
  };
  const stop = await listWatch<V1Pod>(
    kc,
    {
      list: () => kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace }),
      path: `/api/v1/namespaces/${namespace}/pods`,
    },
    {
      reset(items) {
        for (const p of items) see(p);
        first = false;
      },
      event(type, p) {
        if (type !== "DELETED") see(p);
      },
    },
  );
  return {
    stop: () => {
      stop();
      return [...timelines.values()].sort((a, b) => (a.created ?? 0) - (b.created ?? 0));
    },
  };
}

/** Adds SIDECAR_LOG_POINTS to each pod's timeline from its sidecar's log (the pod as it is now). */
async function addSidecarLogPoints(core: CoreV1Api, namespace: string, pods: Timeline[], t0: number) {
  for (const t of pods) {
    try {
      const pod = await core.readNamespacedPod({ namespace, name: t.pod });
      if (pod.metadata?.uid !== t.uid) continue;
      const text = await core.readNamespacedPodLog({ namespace, name: t.pod, container: SIDECAR_NAME });
      for (const line of text.split("\n")) {
        if (!line.startsWith("{")) continue;
        const entry = JSON.parse(line) as { time?: number; msg?: string };
        for (const [point, msg] of Object.entries(SIDECAR_LOG_POINTS) as [Point, string][]) {
          if (entry.msg === msg && entry.time !== undefined && t[point] === undefined)
            t[point] = entry.time - t0;
        }
      }
    } catch (err) {
      log(`no sidecar log of ${t.pod}: ${(err as Error).message}`);
    }
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0
    ? NaN
    : s.length % 2
      ? s[(s.length - 1) / 2]!
      : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function report(): void {
  const row = (system: System, scenario: Scenario) => {
    const rs = runs.filter((r) => r.system === system && r.scenario === scenario);
    const perPod = rs.flatMap((r) =>
      r.pods
        .filter((p) => p.ready !== undefined && p.created !== undefined)
        .map((p) => p.ready! - p.created!),
    );
    return {
      wall: median(rs.map((r) => r.wallMs)),
      perPod: median(perPod),
      failed: rs.reduce((n, r) => n + r.probe.failed, 0),
    };
  };
  const s = (ms: number) => (Number.isNaN(ms) ? "-" : (ms / 1000).toFixed(1));
  console.log("scenario            system          wall s  per-pod created->Ready s  failed requests");
  const misses: string[] = [];
  for (const scenario of SCENARIOS) {
    for (const system of SYSTEMS) {
      const r = row(system, scenario);
      console.log(
        `${scenario.padEnd(20)}${system.padEnd(16)}${s(r.wall).padStart(6)}  ${s(r.perPod).padStart(24)}  ${String(r.failed).padStart(15)}`,
      );
    }
    const cha = row("coordinator-ha", scenario);
    const floor = row("floor", scenario);
    const guide = row("guide", scenario);
    const ratio = (a: number, b: number) => (a / b).toFixed(2);
    console.log(
      `${"".padEnd(20)}ratios: wall cha/floor ${ratio(cha.wall, floor.wall)}, cha/guide ${ratio(cha.wall, guide.wall)}; per pod cha/floor ${ratio(cha.perPod, floor.perPod)}, cha/guide ${ratio(cha.perPod, guide.perPod)}`,
    );
    if (cha.perPod > 1.1 * floor.perPod) {
      misses.push(
        `${scenario}: per-pod time to Ready ${s(cha.perPod)} s is ${ratio(cha.perPod, floor.perPod)}x the floor's ${s(floor.perPod)} s (goal <= 1.1x)`,
      );
    }
    if (!(cha.perPod < guide.perPod)) {
      misses.push(
        `${scenario}: per-pod time to Ready ${s(cha.perPod)} s is not below the guide's ${s(guide.perPod)} s`,
      );
    }
    if (cha.failed > 0 || guide.failed > 0) {
      misses.push(
        `${scenario}: failed requests coordinator-ha ${cha.failed}, guide ${guide.failed} (goal 0)`,
      );
    }
  }
  for (const m of misses) console.log(`goal missed: ${m}`);
  if (misses.length > 0) breakdown();
}

/**
 * Why: the median time of each point since the pod was created, per system (every scenario's
 * new pods), and what lies between two points.
 */
function breakdown(): void {
  const why: Partial<Record<Point, string>> = {
    scheduled: "the scheduler",
    sidecarStarted: "the kubelet: sandbox, network, image, runc (the floor's app starts here)",
    sidecarListening: "Node starts the sidecar and loads its modules",
    stateWritten: "the sidecar asks the handler for peers and fetches the state (TLS, JWE)",
    startupPassed: "the sidecar checks and writes it; startup passes",
    sidecarReady: "the kubelet's next startup probe (every 1 s) and its status write",
    appStarted: "the kubelet's next pod sync (it waits for the PLEG's relist, every 1 s), then runc",
    appReady: "the app's own startup and readiness probes (the chart's delays)",
    confirmed: "the sidecar sees the app ready and confirms",
    gateTrue: "the handler records it and writes the gate",
    ready: "the kubelet recomputes Ready with the gate at its next pod sync (PLEG, up to 1 s)",
  };
  console.log("\nmedian ms since created, over every scenario's new pods:");
  console.log(`${"point".padEnd(18)}${SYSTEMS.map((s) => s.padStart(16)).join("")}  what comes before it`);
  for (const point of POINTS) {
    const cells = SYSTEMS.map((system) => {
      const at = runs
        .filter((r) => r.system === system)
        .flatMap((r) => r.pods)
        .filter((p) => p[point] !== undefined && p.created !== undefined)
        .map((p) => p[point]! - p.created!);
      return at.length ? String(Math.round(median(at))) : "-";
    });
    console.log(`${point.padEnd(18)}${cells.map((c) => c.padStart(16)).join("")}  ${why[point] ?? ""}`);
  }
}
