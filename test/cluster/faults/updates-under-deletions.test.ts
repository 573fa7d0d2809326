// Fault: the state changes while pods are deleted. A user sends one update after another
// (`coordinator-ha set --workload-owner-key`, through the `coordinator-ready` Service, as a
// workload owner would) while another deletes a random Coordinator pod every few seconds, one
// disruption at a time (as the PodDisruptionBudget allows evictions): the next deletion waits
// until the last victim's successor is Ready, so that it never takes the last Ready pod. An
// update may be refused (its pod died, a proposal was in flight, the parent went stale), and the
// user then sees a non-zero exit and no "Manifest updated"; an acknowledged one is never lost: it
// is in the StateHead's committed history, and every pod ends on the committed head. The probe
// runs throughout (its key check holds across updates: an update keeps the Coordinator's key).
import { generateKeyPairSync } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ownerKeyDigest } from "../../../src/coordinator/owner-key.ts";
import { installWorkflow, type Workflow } from "../e2e/harness.ts";
import { eventually } from "../kube.ts";
import { isReady, parseState } from "../workflow/coordinator.ts";
import { formatReport, startProbe } from "../workflow/probe.ts";
import { setOwnedAndScaleToThree } from "./owned-start.ts";
import {
  checkSettled,
  committedHead,
  committedHistory,
  sampleInvariants,
  formatSamples,
} from "./invariants.ts";

const PODS = ["coordinator-0", "coordinator-1", "coordinator-2"];
/** At least this many updates, and more until MIN_DELETIONS pods were deleted meanwhile. */
const UPDATES = 8;
const MIN_DELETIONS = 3;
const MAX_UPDATES = 30;
/** The shortest time between two deletions. */
const DELETE_EVERY_MS = 6000;
/** How long a victim's successor may take to be Ready before the test gives up. */
const SUCCESSOR_READY_MS = 120_000;
const owner = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
const manifest = (policy: string) =>
  JSON.stringify({ policy, workloadOwnerKeyDigests: [ownerKeyDigest(owner)] });

describe("fault: concurrent updates while pods are deleted", () => {
  let w: Workflow;
  let publicKey: string;
  let keyFile: string;

  const diagnose = async () => {
    const run = (line: string) => w.sh.run(line, { check: false, timeoutMs: 30_000 });
    await run("kubectl get pods -o wide");
    await run("kubectl get statehead coordinator -o yaml");
    await run(`kubectl -n ${w.system} logs deployment/${w.release}-coordinator-ha-handler --tail=80`);
  };
  beforeEach(({ onTestFailed }) => onTestFailed(diagnose));

  beforeAll(async () => {
    w = await installWorkflow("fault-updates");
    ({ keyFile, publicKey } = await setOwnedAndScaleToThree(w, owner, manifest("v0")));
  }, 500_000);
  afterAll(async () => {
    await w?.cleanup();
  });

  it("every acknowledged update is committed, refused ones say so, every pod on the head after", async () => {
    const service = await w.serviceAddress("coordinator-ready");
    const probe = await startProbe({
      kc: w.kc,
      namespace: w.namespace,
      service: "coordinator-ready",
      serviceAddress: service,
      publicKey,
    });
    const sampler = sampleInvariants(w.kc, w.namespace, "coordinator");

    let deleting = true;
    const deletions: string[] = [];
    // Every pod Ready (the last victim's successor among them, under its own uid).
    const allReady = async (gone?: { name: string; uid: string }) => {
      const pods = await Promise.all(PODS.map((p) => w.pod(p).catch(() => undefined)));
      return pods.every(
        (p) =>
          p &&
          isReady(p) &&
          !p.metadata!.deletionTimestamp &&
          !(p.metadata!.name === gone?.name && p.metadata!.uid === gone?.uid),
      );
    };
    const deleter = (async () => {
      let last: { name: string; uid: string } | undefined;
      let lastAt: number | undefined;
      while (deleting) {
        await sleep(Math.max(0, (lastAt ?? Date.now()) + DELETE_EVERY_MS - Date.now()));
        const waitFrom = Date.now();
        while (deleting && !(await allReady(last))) {
          if (Date.now() - waitFrom > SUCCESSOR_READY_MS)
            throw new Error(
              `${last?.name}'s successor was not Ready ${SUCCESSOR_READY_MS / 1000} s after its deletion`,
            );
          await sleep(200);
        }
        if (!deleting) break;
        const victim = PODS[Math.floor(Math.random() * PODS.length)]!;
        last = { name: victim, uid: (await w.pod(victim)).metadata!.uid! };
        lastAt = Date.now();
        deletions.push(victim);
        await w.sh.run(`kubectl delete pod ${victim} --wait=false`, { check: false });
      }
    })();
    // Its failure is reported where it is awaited, after the updates.
    deleter.catch(() => undefined);

    const acknowledged: string[] = [];
    const attempted: { policy: string; code: number; digest?: string; why?: string }[] = [];
    let i = 0;
    while (++i <= UPDATES || (deletions.length < MIN_DELETIONS && i <= MAX_UPDATES)) {
      const policy = `v${i}`;
      const result = await w.sh.run(
        `coordinator-ha set -c ${service} -m ${w.files.write(`${policy}.json`, manifest(policy))} ` +
          `--workload-owner-key ${keyFile} --timeout 30`,
        { check: false, timeoutMs: 120_000 },
      );
      if (result.code === 0) {
        expect(result.stdout).toMatch(/Manifest updated/);
        const digest = parseState(result.stdout).digest;
        acknowledged.push(digest);
        attempted.push({ policy, code: 0, digest });
      } else {
        expect(result.output).not.toMatch(/Manifest updated/);
        attempted.push({ policy, code: result.code, why: result.output.trim().split("\n").at(-1) });
      }
      await sleep(1000);
    }
    deleting = false;
    await deleter;
    await w.sh.run(
      "kubectl wait statefulset/coordinator --for=jsonpath='{.status.readyReplicas}=3' --timeout=4m",
      {
        timeoutMs: 260_000,
      },
    );
    await sleep(2000);
    const report = await probe.stop();
    const sampled = await sampler.stop();
    for (const f of report.failures.slice(0, 10))
      console.log(`  failed: ${f.at} ${f.via} ${f.target}: ${f.error}`);
    console.log(
      `${attempted.length} updates, ${acknowledged.length} acknowledged, while ${deletions.length} pods were deleted ` +
        `(${deletions.join(" ")}); ${formatReport(report)}; ${formatSamples(sampled)}\n` +
        attempted.map((a) => `  ${a.policy}: exit ${a.code} ${a.digest ?? a.why ?? ""}`).join("\n"),
    );

    // The test means something only if some updates went through and some pods died meanwhile.
    expect(acknowledged.length).toBeGreaterThan(0);
    expect(deletions.length).toBeGreaterThan(0);
    const history = await committedHistory(w.kc, w.namespace, "coordinator");
    for (const digest of acknowledged) expect(history, `acknowledged ${digest} lost`).toContain(digest);
    // Sequential updates: the head is the last acknowledged one, or a later attempt that
    // committed after its client gave up (then it is later in the history).
    const head = await committedHead(w.kc, w.namespace, "coordinator");
    expect(history.indexOf(head!)).toBeGreaterThanOrEqual(history.indexOf(acknowledged.at(-1)!));
    expect(report.failures).toEqual([]);
    expect(sampled.violations).toEqual([]);
    await eventually(
      "every pod Ready on the committed head",
      async () =>
        (await checkSettled(w.sh, w.kc, w.namespace, "coordinator", PODS, publicKey)).length
          ? undefined
          : true,
      { timeoutMs: 120_000, intervalMs: 2000 },
    );
  }, 900_000);
});
