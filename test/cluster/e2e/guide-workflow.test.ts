// The operator guide's workflow, end to end, with the real helm, kubectl and CLI on the local
// cluster: the user initializes coordinator-0 with `set`, scales to 3 (each pod recovers from
// a peer before the next one starts), and rolls the StatefulSet and deletes single pods while
// an availability probe keeps calling the Coordinator. Every command and its output, and the
// probe's counts, go to the test output.
import { setTimeout as sleep } from "node:timers/promises";
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RECOVERED_CONDITION, Reason } from "../../../src/names.ts";
import { eventually } from "../kube.ts";
import { isReady, recovered, sameKey, set, verify, type CoordinatorState } from "../workflow/coordinator.ts";
import { formatReport, startProbe, type Probe, type ProbeReport } from "../workflow/probe.ts";
import { installWorkflow, type Workflow } from "./harness.ts";

const GET_PODS = "kubectl get pods -l app.kubernetes.io/name=coordinator";
const PODS = ["coordinator-0", "coordinator-1", "coordinator-2"];

/** The rows of `kubectl get pods`: name -> [READY, STATUS]. */
function rows(table: string): Map<string, [string, string]> {
  const lines = table.trim().split("\n").slice(1);
  return new Map(lines.map((l) => l.split(/\s+/)).map(([name, ready, status]) => [name!, [ready!, status!]]));
}

describe("the operator guide's workflow", () => {
  let w: Workflow;
  let state: CoordinatorState;
  let keyFile: string;
  const reports: ProbeReport[] = [];

  beforeAll(async () => {
    w = await installWorkflow("e2e-guide");
  }, 240_000);
  afterAll(async () => {
    await w?.cleanup();
  });

  const uids = async () =>
    Object.fromEntries(await Promise.all(PODS.map(async (p) => [p, (await w.pod(p)).metadata!.uid!])));

  it("before set, coordinator-0 is Running but not Ready, and its gate says why", async () => {
    const pod = await eventually(
      "coordinator-0 Running, its app started, and its gate condition written",
      async () => {
        const p = await w.pod("coordinator-0");
        const started = p.status?.containerStatuses?.every((c) => c.started) ?? false;
        return p.status?.phase === "Running" && started && recovered(p) ? p : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    expect(isReady(pod)).toBe(false);
    expect(recovered(pod)).toMatchObject({ status: "False", reason: Reason.AwaitingState });
    expect(recovered(pod)!.message).toMatch(
      /No initialized peer exists: initialize this Coordinator with "coordinator-ha set"/,
    );

    const table = rows((await w.sh.run(GET_PODS)).stdout);
    expect([...table.keys()]).toEqual(["coordinator-0"]);
    // The app container is not ready (it holds no state); the recovery sidecar is.
    expect(table.get("coordinator-0")).toEqual(["1/2", "Running"]);
    const message = await w.sh.run(
      `kubectl get pod coordinator-0 -o jsonpath='{.status.conditions[?(@.type=="${RECOVERED_CONDITION}")].message}'`,
    );
    expect(message.stdout).toContain('initialize this Coordinator with "coordinator-ha set"');
  });

  it("the user's set initializes coordinator-0, which turns Ready", async () => {
    const manifest = w.files.write("manifest.json", JSON.stringify({ policy: "e2e-guide" }));
    // The `coordinator` Service publishes the not yet Ready pod, for exactly this call.
    const result = await set(w.sh, await w.serviceAddress("coordinator"), manifest);
    state = result.state!;
    keyFile = w.files.write("public-key.pem", state.publicKey);
    await w.sh.run("kubectl wait pod/coordinator-0 --for=condition=Ready --timeout=1m");
    expect(rows((await w.sh.run(GET_PODS)).stdout).get("coordinator-0")).toEqual(["2/2", "Running"]);
    expect(recovered(await w.pod("coordinator-0"))).toMatchObject({
      status: "True",
      reason: Reason.Initialized,
    });
  });

  it("kubectl scale --replicas 3: the new pods recover from a peer, one after another", async () => {
    const scale = await w.sh.run("kubectl scale statefulset/coordinator --replicas 3");
    expect(scale.stdout).toContain("statefulset.apps/coordinator scaled");
    const wait = await w.sh.run(
      "kubectl wait statefulset/coordinator --for=jsonpath='{.status.readyReplicas}=3' --timeout=2m",
      { timeoutMs: 150_000 },
    );
    expect(wait.stdout).toContain("statefulset.apps/coordinator condition met");
    const table = rows((await w.sh.run(GET_PODS)).stdout);
    expect([...table.keys()]).toEqual(PODS);
    for (const p of PODS) expect(table.get(p), p).toEqual(["2/2", "Running"]);

    // OrderedReady: each pod was created only once the one before held the state.
    const pods = await Promise.all(PODS.map((p) => w.pod(p)));
    for (let i = 1; i < pods.length; i++) {
      expect(recovered(pods[i]!)).toMatchObject({ status: "True", reason: Reason.RecoveredFromPeer });
      const created = Date.parse(String(pods[i]!.metadata!.creationTimestamp));
      const previousReady = readySince(pods[i - 1]!);
      expect(created, `${PODS[i]} created after ${PODS[i - 1]} turned Ready`).toBeGreaterThanOrEqual(
        previousReady,
      );
    }
  });

  it("every replica answers verify with the same public key", async () => {
    await verifyAll();
  });

  it("kubectl describe pod coordinator-1 shows the gate True, RecoveredFromPeer, and its peer", async () => {
    const describe = (await w.sh.run("kubectl describe pod coordinator-1")).stdout;
    expect(describe).toMatch(
      new RegExp(`Readiness Gates:\\s+Type\\s+Status\\s+${RECOVERED_CONDITION}\\s+True`),
    );
    expect(describe).toMatch(new RegExp(`Conditions:[\\s\\S]*\\n\\s+Ready\\s+True`));
    expect(describe).toMatch(new RegExp(`Conditions:[\\s\\S]*\\n\\s+${RECOVERED_CONDITION}\\s+True`));
    const events = describe.slice(describe.indexOf("Events:"));
    expect(events).toMatch(
      new RegExp(
        `Normal\\s+${Reason.RecoveredFromPeer}\\s+.*coordinator-ha-handler\\s+Recovered state ${state.digest} from peer coordinator-0`,
      ),
    );
  });

  it("kubectl rollout restart replaces all three pods, and the Coordinator stays available", async () => {
    const before = await uids();
    const probe = await startProbe({
      kc: w.kc,
      namespace: w.namespace,
      service: "coordinator-ready",
      serviceAddress: await w.serviceAddress("coordinator-ready"),
      publicKey: state.publicKey,
    });
    try {
      expect((await w.sh.run("kubectl rollout restart statefulset/coordinator")).stdout).toContain(
        "statefulset.apps/coordinator restarted",
      );
      const status = await w.sh.run("kubectl rollout status statefulset/coordinator -w", {
        timeoutMs: 240_000,
      });
      expect(status.stdout).toMatch(/rolling update complete 3 pods|roll out complete: 3 new pods/);
    } finally {
      reports.push(await stopProbe(probe));
    }
    const table = rows((await w.sh.run(GET_PODS)).stdout);
    for (const p of PODS) expect(table.get(p), p).toEqual(["2/2", "Running"]);
    const after = await uids();
    for (const p of PODS) expect(after[p], `${p} is a new pod`).not.toBe(before[p]);
    await verifyAll();
    expectAvailable(reports.at(-1)!);
  });

  it("kubectl delete pod, one at a time: each pod recovers, and the Coordinator stays available", async () => {
    const probe = await startProbe({
      kc: w.kc,
      namespace: w.namespace,
      service: "coordinator-ready",
      serviceAddress: await w.serviceAddress("coordinator-ready"),
      publicKey: state.publicKey,
    });
    try {
      for (const p of ["coordinator-1", "coordinator-0"]) {
        const before = (await w.pod(p)).metadata!.uid;
        await w.sh.run(`kubectl delete pod ${p}`);
        await eventually(
          `a new ${p}, Ready`,
          async () => {
            const pod = await w.pod(p).catch(() => undefined);
            return pod && pod.metadata!.uid !== before && isReady(pod) ? pod : undefined;
          },
          { timeoutMs: 90_000, intervalMs: 500 },
        );
      }
    } finally {
      reports.push(await stopProbe(probe));
    }
    // coordinator-0 has no initialized pod before it: it recovered from a later one.
    expect(recovered(await w.pod("coordinator-0"))).toMatchObject({
      status: "True",
      reason: Reason.RecoveredFromPeer,
    });
    await w.sh.run(GET_PODS);
    await verifyAll();
    expectAvailable(reports.at(-1)!);
  });

  it("evictions as a node drain makes them: one pod at a time, and the Coordinator stays available", async () => {
    await w.sh.run("kubectl get poddisruptionbudget coordinator");
    const before = await uids();
    const core = w.kc.makeApiClient(CoreV1Api);
    let refused = 0;
    // As `kubectl drain` does: ask to evict every pod at once, and retry each refused one.
    const evict = async (name: string) => {
      for (;;) {
        try {
          await core.createNamespacedPodEviction({
            name,
            namespace: w.namespace,
            body: { metadata: { name } },
          });
          return;
        } catch (err) {
          if ((err as { code?: number }).code !== 429) throw err;
          refused++;
          await sleep(1000);
        }
      }
    };
    const probe = await startProbe({
      kc: w.kc,
      namespace: w.namespace,
      service: "coordinator-ready",
      serviceAddress: await w.serviceAddress("coordinator-ready"),
      publicKey: state.publicKey,
    });
    try {
      await Promise.all(PODS.map(evict));
      await eventually(
        "three new pods, Ready",
        async () => {
          const pods = await Promise.all(PODS.map((p) => w.pod(p).catch(() => undefined)));
          return pods.every((p, i) => p && p.metadata!.uid !== before[PODS[i]!] && isReady(p))
            ? pods
            : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 500 },
      );
    } finally {
      reports.push(await stopProbe(probe));
    }
    console.log(`evictions refused by the PodDisruptionBudget (and retried): ${refused}`);
    expect(refused).toBeGreaterThan(0);
    await w.sh.run(GET_PODS);
    await verifyAll();
    expectAvailable(reports.at(-1)!);
  });

  async function verifyAll() {
    for (const p of PODS) {
      const { state: got } = await verify(w.sh, await w.podAddress(p), { expectKeyFile: keyFile });
      expect(sameKey(got!.publicKey, state.publicKey), p).toBe(true);
      expect(got!.digest, p).toBe(state.digest);
    }
  }
});

function readySince(pod: V1Pod): number {
  const ready = pod.status?.conditions?.find((c) => c.type === "Ready" && c.status === "True");
  return Date.parse(String(ready?.lastTransitionTime));
}

async function stopProbe(probe: Probe): Promise<ProbeReport> {
  const report = await probe.stop();
  console.log(`availability probe: ${formatReport(report)}`);
  for (const f of report.failures.slice(0, 20))
    console.log(`  failed: ${f.at} ${f.via} ${f.target}: ${f.error}`);
  return report;
}

function expectAvailable(report: ProbeReport) {
  expect(report.failures).toEqual([]);
  expect(report.minReadyEndpoints).toBeGreaterThanOrEqual(1);
  // The probe ran throughout, and its watch saw the endpoints change.
  expect(report.requests.service).toBeGreaterThan(0);
  expect(report.requests.endpoint).toBeGreaterThan(0);
  expect(report.readyEndpointCounts.length).toBeGreaterThan(1);
}
