// Fault: the peer that serves a transfer fails in the middle of it, on the real node stack.
// coordinator-2 is deleted and recovers; the handler names its peers by name, so it asks
// coordinator-0 first. coordinator-0's peer API answers are slowed to a trickle (tc in its
// network namespace, its other traffic untouched), so the transfer takes seconds; once
// coordinator-0 has sent part of the answer, the fault hits it:
//   - its recovery sidecar SIGKILLed (the process that serves the transfer; the kernel resets
//     the connection): coordinator-2's sidecar falls back to coordinator-1 at once;
//   - its network cut (the host side of its veth down): the transfer stalls without an error,
//     coordinator-2's sidecar gives up after its 15 s deadline and falls back to coordinator-1.
// Nothing of the broken transfer reaches coordinator-2's state directory: it is empty while the
// transfer breaks and holds exactly the head, without a temporary file, after. The probe runs
// throughout and the invariants are checked after. The sidecar kill fails no request (the app
// keeps serving); the network cut fails the requests sent to coordinator-0 until the kubelet's
// readiness probe takes it out of the endpoints, and only those.
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { COORDINATOR_API_PORT, EventReason, Reason } from "../../../src/names.ts";
import { RESERVED_PREFIX } from "../../../src/state/paths.ts";
import { installWorkflow, type Workflow } from "../e2e/harness.ts";
import { eventually } from "../kube.ts";
import { isReady, recovered, set } from "../workflow/coordinator.ts";
import { formatReport, startProbe, type ProbeReport } from "../workflow/probe.ts";
import { checkSettled, sampleInvariants, formatSamples } from "./invariants.ts";
import {
  hostVeth,
  peerConnections,
  setLink,
  sidecarPid,
  stateTree,
  throttlePeerAnswers,
  unthrottle,
} from "./pod-faults.ts";

const PODS = ["coordinator-0", "coordinator-1", "coordinator-2"];
/**
 * A manifest of 192 KiB: a JWE of about 260 KiB, more than the kernel takes into a new
 * connection's send buffer, so that coordinator-0's process still holds part of its answer
 * while it goes out (a process killed after handing the kernel its whole answer does not
 * break the transfer: the kernel sends it).
 */
const MANIFEST_BYTES = 192 * 1024;
/** About 7 s for the whole answer: long enough to hit, well inside the caller's 15 s deadline. */
const PEER_RATE = "320kbit";
/** How long after its answer started the fault hits the serving peer. */
const FAULT_AFTER_MS = 1500;

describe("fault: the peer serving a transfer fails mid-transfer", () => {
  let w: Workflow;
  let publicKey: string;

  const diagnose = async () => {
    const run = (line: string) => w.sh.run(line, { check: false, timeoutMs: 30_000 });
    await run("kubectl get pods -o wide");
    await run("kubectl get statehead coordinator -o yaml");
    await run(`kubectl -n ${w.system} logs deployment/${w.release}-coordinator-ha-handler --tail=60`);
    for (const pod of PODS) await run(`kubectl logs ${pod} -c coordinator-ha-recovery --tail=30`);
  };
  beforeEach(({ onTestFailed }) => onTestFailed(diagnose));

  beforeAll(async () => {
    w = await installWorkflow("fault-transfer");
    const policy = "x".repeat(MANIFEST_BYTES);
    const first = await set(
      w.sh,
      await w.serviceAddress("coordinator"),
      w.files.write("manifest.json", JSON.stringify({ policy })),
    );
    publicKey = first.state!.publicKey;
    await w.sh.run("kubectl scale statefulset/coordinator --replicas 3");
    await w.sh.run(
      "kubectl wait statefulset/coordinator --for=jsonpath='{.status.readyReplicas}=3' --timeout=4m",
      { timeoutMs: 260_000 },
    );
  }, 420_000);
  afterAll(async () => {
    await w?.cleanup();
  });

  /**
   * Deletes coordinator-2 and waits until coordinator-0 has been answering the new coordinator-2
   * for FAULT_AFTER_MS; then `fault`, and coordinator-2 Ready again. Returns what
   * it saw.
   */
  async function breakTransfer(fault: (serving: { pid: number; ip: string; node: string }) => Promise<void>) {
    const pid0 = sidecarPid(w.namespace, "coordinator-0");
    expect(pid0, "coordinator-0's sidecar process").toBeDefined();
    const pod0 = await w.pod("coordinator-0");
    await throttlePeerAnswers(pid0!, PEER_RATE);
    console.log(
      `coordinator-0's sidecar: pid ${pid0}, peer connections ${JSON.stringify(await peerConnections(pid0!))}`,
    );
    const probe = await startProbe({
      kc: w.kc,
      namespace: w.namespace,
      service: "coordinator-ready",
      serviceAddress: await w.serviceAddress("coordinator-ready"),
      publicKey,
      // Each answer carries the 192 KiB manifest: fewer requests, to leave the 2 cores some room.
      pauseMs: 50,
    });
    const sampler = sampleInvariants(w.kc, w.namespace, "coordinator");
    let report: ProbeReport | undefined;
    try {
      const old = (await w.pod("coordinator-2")).metadata!.uid;
      await w.sh.run("kubectl delete pod coordinator-2 --wait=false");
      // The answer going out: a connection with a send queue, still open (coordinator-0 still
      // holds part of its answer) FAULT_AFTER_MS later.
      let first: { at: number; sendQ: number } | undefined;
      const connection = await eventually(
        "coordinator-0 in the middle of its answer to the new coordinator-2",
        async () => {
          const sending = (await peerConnections(pid0!)).find((c) => c.state === "open" && c.sendQ > 0);
          if (!sending) {
            first = undefined;
            return undefined;
          }
          first ??= { at: Date.now(), sendQ: sending.sendQ };
          return Date.now() - first.at >= FAULT_AFTER_MS ? sending : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 50 },
      );
      const pod2 = await w.pod("coordinator-2");
      expect(pod2.metadata!.uid).not.toBe(old);
      const pid2 = sidecarPid(w.namespace, "coordinator-2");
      // What coordinator-2's directory holds while the transfer is under way: nothing.
      const during = pid2 ? await stateTree(pid2) : undefined;
      const faultAt = Date.now();
      await fault({ pid: pid0!, ip: pod0.status!.podIP!, node: pod0.spec!.nodeName! });
      console.log(
        `fault at ${new Date(faultAt).toISOString()}: coordinator-0's answer had ${first!.sendQ} bytes queued ` +
          `${FAULT_AFTER_MS} ms before, ${connection.sendQ} still (caller ${connection.peer}); coordinator-2's state directory: ` +
          `${JSON.stringify(during)}`,
      );
      expect(during).toEqual([]);
      const ready2 = await eventually(
        "coordinator-2 Ready",
        async () => {
          const p = await w.pod("coordinator-2");
          return isReady(p) ? p : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 200 },
      );
      const readyAt = Date.now();
      console.log(`coordinator-2 Ready ${((readyAt - faultAt) / 1000).toFixed(1)} s after the fault`);
      return { faultAt, readyAt, pod2: ready2 };
    } finally {
      // A killed sidecar is restarted by the kubelet; the throttle lives in the pod's namespace.
      const now = await eventually(
        "coordinator-0's sidecar",
        async () => sidecarPid(w.namespace, "coordinator-0"),
        {
          timeoutMs: 60_000,
        },
      ).catch(() => undefined);
      if (now) await unthrottle(now);
      report = await probe.stop();
      const sampled = await sampler.stop();
      console.log(`${formatReport(report)}; ${formatSamples(sampled)}`);
      for (const f of report.failures.slice(0, 10))
        console.log(`  failed: ${f.at} ${f.via} ${f.target}: ${f.error}`);
      lastRun = { report, violations: sampled.violations };
    }
  }
  let lastRun: { report: ProbeReport; violations: unknown[] } | undefined;

  /** coordinator-2 holds the head from coordinator-1, whole, and every pod is settled. */
  async function expectRecoveredFromTheOther(pod2: Awaited<ReturnType<typeof w.pod>>) {
    const gate = recovered(pod2);
    expect(gate).toMatchObject({ status: "True", reason: Reason.RecoveredFromPeer });
    expect(gate?.message).toContain("coordinator-1");
    const logs = await w.sh.run("kubectl logs coordinator-2 -c coordinator-ha-recovery");
    expect(logs.output).toMatch(/"peer":"coordinator-0".*"msg":"peer failed; trying the next one"/);
    // What an operator sees in `kubectl describe pod coordinator-2`: a Warning naming the peer
    // that failed, beside the Normal RecoveredFromPeer.
    const warning = await eventually("the PeerTransferFailed Warning on coordinator-2", async () => {
      const events = await w.sh.run(
        "kubectl get events --field-selector " +
          `involvedObject.name=coordinator-2,involvedObject.uid=${pod2.metadata!.uid},reason=${EventReason.PeerTransferFailed} -o json`,
      );
      const items = (JSON.parse(events.stdout) as { items: { type: string; message: string }[] }).items;
      return items[0];
    });
    console.log(`coordinator-2's Warning: ${warning.message}`);
    expect(warning.type).toBe("Warning");
    expect(warning.message).toMatch(
      /^Peer coordinator-0 failed to deliver state sha256:[0-9a-f]{64}: .+; recovered from peer coordinator-1$/,
    );
    const pid2 = sidecarPid(w.namespace, "coordinator-2")!;
    const tree = await stateTree(pid2);
    console.log(`coordinator-2's state directory after: ${JSON.stringify(tree)}`);
    expect(tree.filter((p) => p.includes(`${RESERVED_PREFIX}-tmp-`))).toEqual([]);
    await eventually(
      "every pod Ready on the committed head",
      async () =>
        (await checkSettled(w.sh, w.kc, w.namespace, "coordinator", PODS, publicKey)).length
          ? undefined
          : true,
      { timeoutMs: 120_000, intervalMs: 2000 },
    );
    expect(lastRun!.violations).toEqual([]);
  }

  it("its sidecar SIGKILLed: the recovering sidecar falls back to the next peer at once, no request fails", async () => {
    const { pod2 } = await breakTransfer(async ({ pid }) => {
      process.kill(pid, "SIGKILL");
    });
    await expectRecoveredFromTheOther(pod2);
    expect(lastRun!.report.failures).toEqual([]);
    expect(lastRun!.report.minReadyEndpoints).toBeGreaterThanOrEqual(1);
  }, 300_000);

  it("its network cut: the stalled transfer is given up after the deadline, only requests to the cut pod fail", async () => {
    let cut: { netns: string; link: string } | undefined;
    let ip0 = "";
    let leftAt: number | undefined;
    try {
      const { pod2, faultAt } = await breakTransfer(async ({ pid, ip, node }) => {
        ip0 = ip;
        cut = await hostVeth(pid, node);
        await setLink(cut, "down");
        console.log(`cut coordinator-0 (${ip}): ${cut.netns}/${cut.link} down`);
        void eventually(
          "coordinator-0 not Ready",
          async () => (isReady(await w.pod("coordinator-0")) ? undefined : Date.now()),
          { timeoutMs: 120_000, intervalMs: 200 },
        ).then((at) => (leftAt = at));
      });
      expect(Date.now() - faultAt).toBeGreaterThan(0);
      // The stalled transfer costs the caller's deadline before the fallback.
      expect(recovered(pod2)?.message).toContain("coordinator-1");
      await eventually("coordinator-0 seen not Ready", async () => leftAt, { timeoutMs: 60_000 });
      console.log(`coordinator-0 not Ready ${((leftAt! - faultAt) / 1000).toFixed(1)} s after the cut`);
      // Every failed request went to the cut pod (at its address, or through the ClusterIP that
      // still sent it there), and none after the readiness probe took it out plus one timeout.
      for (const f of lastRun!.report.failures) {
        if (f.via === "endpoint") expect(f.target).toBe(`${ip0}:${COORDINATOR_API_PORT}`);
        expect(Date.parse(f.at)).toBeLessThanOrEqual(leftAt! + 5_000);
      }
      expect(lastRun!.report.minReadyEndpoints).toBeGreaterThanOrEqual(1);
    } finally {
      if (cut) await setLink(cut, "up");
    }
    await sleep(1000);
    await expectRecoveredFromTheOther(await w.pod("coordinator-2"));
  }, 300_000);
});
