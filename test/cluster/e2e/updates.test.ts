// Updates of the state, end to end with the real helm, kubectl, handler and CLI on the local
// cluster: the user sets a manifest that lists a workload owner key, scales to 3, and updates
// through coordinator-1 (not the first pod) while clients call the `coordinator-ready` Service;
// every replica shows the new history, no request fails, and the staleness window (how long
// after the acknowledgement a client still got the old state) is measured and printed. Then a
// rollout keeps the new state, a committing pod killed right after its acknowledgement loses
// nothing, and one killed before the quorum leaves its user without an acknowledgement and the
// others Ready on the previous state.
import { generateKeyPairSync } from "node:crypto";
import { request } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ownerKeyDigest } from "../../../src/coordinator/owner-key.ts";
import { Reason } from "../../../src/names.ts";
import { eventually } from "../kube.ts";
import { isReady, parseState, recovered, set, verify } from "../workflow/coordinator.ts";
import { formatReport, startProbe } from "../workflow/probe.ts";
import { installWorkflow, type Workflow } from "./harness.ts";

const PODS = ["coordinator-0", "coordinator-1", "coordinator-2"];
const owner = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
const manifest = (policy: string) =>
  JSON.stringify({ policy, workloadOwnerKeyDigests: [ownerKeyDigest(owner)] });

/** One GET of the Coordinator's state digest, on a fresh connection like a new client. */
function digestAt(address: string): Promise<string> {
  const [host, port] = address.split(":");
  return new Promise((resolve, reject) => {
    const req = request(
      { host, port: Number(port), path: "/v1/manifest", agent: false, timeout: 3000 },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => {
          const digest = (JSON.parse(text) as { digest?: string }).digest;
          if (res.statusCode === 200 && digest) resolve(digest);
          else reject(new Error(`HTTP ${res.statusCode}`));
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

describe("updates of the state", () => {
  let w: Workflow;
  let keyFile: string;
  let publicKey: string;
  let current: string;

  const update = (address: string, policy: string, extra = "") =>
    w.sh.run(
      `coordinator-ha set -c ${address} -m ${w.files.write(`${policy}.json`, manifest(policy))} --workload-owner-key ${keyFile}${extra}`,
      { check: false, timeoutMs: 120_000 },
    );

  /** Every replica's `verify` shows `digest` and a history of `length` transitions. */
  const everyReplicaOn = (digest: string, length: number) =>
    eventually(
      `every replica on ${digest}`,
      async () => {
        for (const pod of PODS) {
          const { result, state } = await verify(w.sh, await w.podAddress(pod), { check: false });
          if (state?.digest !== digest || !result.stdout.includes(`history: ${length} transitions`))
            return undefined;
        }
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );

  /** What an operator would look at, printed when something failed. */
  const diagnose = async () => {
    const run = (line: string) => w.sh.run(line, { check: false, timeoutMs: 30_000 });
    await run("kubectl get pods -o wide");
    await run("kubectl get statehead -o yaml");
    for (const pod of PODS) {
      await run(`kubectl get pod ${pod} -o jsonpath='{.status.conditions}'`);
      await run(`kubectl logs ${pod} -c coordinator-ha-recovery --tail=60`);
    }
    await run(`kubectl -n ${w.system} logs deployment/${w.release}-coordinator-ha-handler --tail=80`);
  };

  beforeEach(({ onTestFailed }) => onTestFailed(diagnose));

  beforeAll(async () => {
    w = await installWorkflow("e2e-update");
    try {
      await initialize();
    } catch (err) {
      await diagnose();
      throw err;
    }
  }, 400_000);

  async function initialize() {
    keyFile = w.files.write("workload-owner.pem", owner.export({ format: "pem", type: "sec1" }).toString());
    const first = await set(
      w.sh,
      await w.serviceAddress("coordinator"),
      w.files.write("v1.json", manifest("v1")),
    );
    publicKey = first.state!.publicKey;
    current = first.state!.digest;
    await w.sh.run("kubectl scale statefulset/coordinator --replicas 3");
    await w.sh.run(
      "kubectl wait statefulset/coordinator --for=jsonpath='{.status.readyReplicas}=3' --timeout=3m",
      {
        timeoutMs: 200_000,
      },
    );
  }
  afterAll(async () => {
    await w?.cleanup();
  });

  it("an update through coordinator-1 reaches every replica; the ready Service never fails; the staleness window is measured", async () => {
    const service = await w.serviceAddress("coordinator-ready");
    const probe = await startProbe({
      kc: w.kc,
      namespace: w.namespace,
      service: "coordinator-ready",
      serviceAddress: service,
      publicKey,
    });
    // A client that records which state each answer carried, and when.
    const seen: { at: number; digest: string }[] = [];
    let running = true;
    const client = (async () => {
      while (running) {
        const digest = await digestAt(service).catch(() => "failed");
        seen.push({ at: Date.now(), digest });
        await sleep(5);
      }
    })();
    await sleep(2000);

    const result = await update(await w.podAddress("coordinator-1"), "v2");
    const ackAt = Date.now();
    expect(result.code, result.output).toBe(0);
    expect(result.stdout).toMatch(/Manifest updated at .* \(committed; it replaced state sha256:/);
    const next = parseState(result.stdout);
    expect(next.publicKey).toBe(publicKey);
    expect(next.digest).not.toBe(current);

    await everyReplicaOn(next.digest, 2);
    const allOnMs = Date.now() - ackAt;
    // The gates follow the swaps: each sidecar confirms the state it swapped in at once.
    const gatesTrue = await eventually(
      "every replica's gate True on the new state",
      async () => {
        for (const pod of PODS) {
          if (recovered(await w.pod(pod))?.status !== "True") return undefined;
        }
        return Date.now() - ackAt;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    console.log(`every replica's gate True ${gatesTrue} ms after the acknowledgement`);
    await sleep(3000);
    running = false;
    await client;
    const report = await probe.stop();
    console.log(formatReport(report));

    const old = seen.filter((s) => s.digest === current && s.at > ackAt);
    const windowMs = old.length > 0 ? old.at(-1)!.at - ackAt : 0;
    const failed = seen.filter((s) => s.digest === "failed").length;
    console.log(
      `update through coordinator-1: every replica's verify on the new state ${allOnMs} ms after the acknowledgement; ` +
        `client through coordinator-ready: ${seen.length} requests, ${failed} failed, ${old.length} answered the old state ` +
        `after the acknowledgement; staleness window ${windowMs} ms`,
    );
    expect(failed).toBe(0);
    expect(report.failures).toEqual([]);
    expect(seen.at(-1)?.digest).toBe(next.digest);
    current = next.digest;
  });

  it("two concurrent updates through two pods: exactly one is acknowledged, the other refused with its reason; all converge on the winner", async () => {
    const [a, b] = await Promise.all([
      update(await w.podAddress("coordinator-0"), "v2-a"),
      update(await w.podAddress("coordinator-2"), "v2-b"),
    ]);
    expect([a.code, b.code].sort()).toEqual([0, 1]);
    const [won, lost] = a.code === 0 ? [a, b] : [b, a];
    expect(lost.stderr).toMatch(/refused the update|did not commit the update/);
    const next = parseState(won.stdout).digest;
    await everyReplicaOn(next, 3);
    current = next;
  });

  it("kubectl rollout restart keeps the new state everywhere", async () => {
    await w.sh.run("kubectl rollout restart statefulset/coordinator");
    await w.sh.run("kubectl rollout status statefulset/coordinator -w --timeout=5m", { timeoutMs: 320_000 });
    await everyReplicaOn(current, 3);
  });

  it("the committing pod killed right after its acknowledgement: the update survives", async () => {
    const result = await update(await w.podAddress("coordinator-1"), "v3");
    expect(result.code, result.output).toBe(0);
    await w.sh.run("kubectl delete pod coordinator-1 --grace-period=0 --force --wait=false", {
      check: false,
    });
    const next = parseState(result.stdout).digest;
    await sleep(2000);
    await w.sh.run(
      "kubectl wait statefulset/coordinator --for=jsonpath='{.status.readyReplicas}=3' --timeout=3m",
      {
        timeoutMs: 200_000,
      },
    );
    await everyReplicaOn(next, 4);
    current = next;
  });

  it("the committing pod killed before the quorum: its user gets no acknowledgement, the others stay Ready on the previous state", async () => {
    // A quorum of 4 of 3 pods: the update stays a proposal until its proposer dies.
    await w.sh.run("kubectl annotate statefulset/coordinator coordinator-ha.io/quorum=4 --overwrite");
    const pending = update(await w.podAddress("coordinator-2"), "v4", " --timeout 15");
    await eventually(
      "the update proposed by coordinator-2",
      async () => {
        const r = await w.sh.run("kubectl get statehead coordinator -o jsonpath='{.spec.proposal.by}'", {
          check: false,
        });
        return r.stdout.trim() === "coordinator-2" ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    await w.sh.run("kubectl delete pod coordinator-2 --grace-period=0 --force --wait=false", {
      check: false,
    });
    const result = await pending;
    expect(result.code).not.toBe(0);
    expect(result.output).not.toMatch(/Manifest updated/);
    await w.sh.run("kubectl annotate statefulset/coordinator coordinator-ha.io/quorum-");

    for (const pod of ["coordinator-0", "coordinator-1"]) {
      expect(isReady(await w.pod(pod))).toBe(true);
      expect((await verify(w.sh, await w.podAddress(pod))).state?.digest).toBe(current);
    }
    await w.sh.run(
      "kubectl wait statefulset/coordinator --for=jsonpath='{.status.readyReplicas}=3' --timeout=3m",
      {
        timeoutMs: 200_000,
      },
    );
    await everyReplicaOn(current, 4);
    expect(recovered(await w.pod("coordinator-2"))?.reason).toMatch(
      new RegExp(`${Reason.RecoveredFromPeer}|${Reason.Updated}`),
    );
  });
});
