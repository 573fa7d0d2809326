// The operator guide's "draining a node in a multi-node cluster": three Coordinators spread over
// the worker nodes (the chart's anti-affinity), then `kubectl drain` of a node that holds one,
// and of a node that holds two, under the availability probe. Every evicted pod recovers on
// another node from a peer, the Coordinator never goes dark, and the PodDisruptionBudget is what
// orders the evictions. Each node is uncordoned afterwards.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Reason } from "../../../src/names.ts";
import { eventually } from "../kube.ts";
import { isReady, recovered, sameKey, set, verify, type CoordinatorState } from "../workflow/coordinator.ts";
import { formatReport, startProbe, type ProbeReport } from "../workflow/probe.ts";
import { installWorkflow, type Workflow } from "./harness.ts";

const PODS = ["coordinator-0", "coordinator-1", "coordinator-2"];
/** `kubectl drain` of a node with pods that use emptyDir (the state volume) and DaemonSets. */
const drain = (node: string) =>
  `kubectl drain ${node} --ignore-daemonsets --delete-emptydir-data --timeout=4m`;

describe("kubectl drain of worker nodes that hold Coordinators", () => {
  let w: Workflow;
  let state: CoordinatorState;
  let keyFile: string;

  beforeAll(async () => {
    w = await installWorkflow("e2e-drain");
    const manifest = w.files.write("manifest.json", JSON.stringify({ policy: "e2e-drain" }));
    await w.sh.run("kubectl wait pod/coordinator-0 --for=jsonpath='{.status.phase}'=Running --timeout=2m", {
      timeoutMs: 150_000,
    });
    state = (await set(w.sh, await w.serviceAddress("coordinator"), manifest)).state!;
    keyFile = w.files.write("public-key.pem", state.publicKey);
    await w.sh.run("kubectl scale statefulset/coordinator --replicas 3");
    await w.sh.run(
      "kubectl wait statefulset/coordinator --for=jsonpath='{.status.readyReplicas}=3' --timeout=3m",
      {
        timeoutMs: 200_000,
      },
    );
  }, 420_000);
  afterAll(async () => {
    // Never leave a node cordoned for the next test file.
    await w?.sh.run("kubectl uncordon worker-1 worker-2 worker-3", { check: false });
    await w?.cleanup();
  });

  /** pod name -> node name. */
  const placement = async (): Promise<Record<string, string>> =>
    Object.fromEntries(await Promise.all(PODS.map(async (p) => [p, (await w.pod(p)).spec!.nodeName!])));

  async function drainUnderProbe(node: string): Promise<{ report: ProbeReport; output: string }> {
    const before = await placement();
    const evicted = PODS.filter((p) => before[p] === node);
    const uids = Object.fromEntries(
      await Promise.all(evicted.map(async (p) => [p, (await w.pod(p)).metadata!.uid!])),
    );
    const probe = await startProbe({
      kc: w.kc,
      namespace: w.namespace,
      service: "coordinator-ready",
      serviceAddress: await w.serviceAddress("coordinator-ready"),
      publicKey: state.publicKey,
    });
    let output: string;
    let report: ProbeReport;
    try {
      output = (await w.sh.run(drain(node), { timeoutMs: 300_000 })).output;
      await eventually(
        `the pods evicted from ${node} back, Ready, on other nodes`,
        async () => {
          const pods = await Promise.all(evicted.map((p) => w.pod(p).catch(() => undefined)));
          return pods.every((p, i) => p && p.metadata!.uid !== uids[evicted[i]!] && isReady(p))
            ? pods
            : undefined;
        },
        { timeoutMs: 180_000, intervalMs: 500 },
      );
    } finally {
      report = await probe.stop();
      console.log(`availability probe during the drain of ${node}: ${formatReport(report)}`);
      for (const f of report.failures.slice(0, 20))
        console.log(`  failed: ${f.at} ${f.via} ${f.target}: ${f.error}`);
      await w.sh.run(`kubectl uncordon ${node}`);
    }
    return { report, output };
  }

  async function expectRecoveredElsewhere(evicted: string[], from: string) {
    await w.sh.run("kubectl get pods -l app.kubernetes.io/name=coordinator -o wide");
    const after = await placement();
    for (const p of evicted) {
      expect(after[p], `${p} left ${from}`).not.toBe(from);
      expect(recovered(await w.pod(p))).toMatchObject({ status: "True", reason: Reason.RecoveredFromPeer });
    }
    for (const p of PODS) {
      const { state: got } = await verify(w.sh, await w.podAddress(p), { expectKeyFile: keyFile });
      expect(sameKey(got!.publicKey, state.publicKey), p).toBe(true);
    }
  }

  function expectAvailable(report: ProbeReport) {
    expect(report.failures).toEqual([]);
    expect(report.minReadyEndpoints).toBeGreaterThanOrEqual(1);
    expect(report.requests.service).toBeGreaterThan(0);
    expect(report.requests.endpoint).toBeGreaterThan(0);
  }

  it("the three Coordinators run on three different nodes", async () => {
    await w.sh.run("kubectl get nodes -o wide");
    await w.sh.run("kubectl get pods -l app.kubernetes.io/name=coordinator -o wide");
    expect(new Set(Object.values(await placement())).size).toBe(3);
  });

  it("draining the node of coordinator-1: it recovers on another node, the Coordinator stays available", async () => {
    const node = (await placement())["coordinator-1"]!;
    const { report, output } = await drainUnderProbe(node);
    expect(output).toContain(`node/${node} drained`);
    await expectRecoveredElsewhere(["coordinator-1"], node);
    expectAvailable(report);
  });

  it("draining a node that holds two: the PodDisruptionBudget lets one go at a time", async () => {
    // The first drain had its node cordoned: its Coordinator joined one of the two others.
    let where = await placement();
    const node = Object.values(where).find((n) => PODS.filter((p) => where[p] === n).length === 2);
    expect(node, `a node with two Coordinators: ${JSON.stringify(where)}`).toBeDefined();
    const evicted = PODS.filter((p) => where[p] === node);
    const { report, output } = await drainUnderProbe(node!);
    expect(output).toContain(`node/${node} drained`);
    // The second eviction waited for the first pod to recover: the PDB refused it meanwhile.
    expect(output).toMatch(/Cannot evict pod as it would violate the pod's disruption budget/);
    await expectRecoveredElsewhere(evicted, node!);
    expectAvailable(report);
    where = await placement();
    expect(Object.values(where)).not.toContain(node);
  });
});
