// Fault: every handler replica SIGKILLed (no SIGTERM, no graceful shutdown), during a scale-up
// and during confirmations and an update. The handler is the only writer of the gates; with all
// replicas dead no gate can flip, so a new pod waits (not Ready) and the Ready pods keep serving.
// A handler that dies between its check and its gate write must leave no gate True without a
// verified confirmation: the gate write is one compare-and-swap PATCH of the pod status, so it
// lands whole or not at all, and the sidecar confirms again against the restarted handler.
// The availability probe runs throughout, a sampler checks every second that a Ready (or gated)
// pod serves the committed head, and the end state is checked with the real CLI.
import { generateKeyPairSync } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ownerKeyDigest } from "../../../src/coordinator/owner-key.ts";
import { installWorkflow, type Workflow } from "../e2e/harness.ts";
import { eventually } from "../kube.ts";
import { parseState, set } from "../workflow/coordinator.ts";
import { formatReport, startProbe } from "../workflow/probe.ts";
import { checkSettled, committedHistory, sampleInvariants, formatSamples } from "./invariants.ts";
import { cliProcesses, killHandlers, serviceLinkPrefix } from "./processes.ts";

const PODS = ["coordinator-0", "coordinator-1", "coordinator-2"];
const HANDLER_REPLICAS = 2;
const owner = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
const manifest = (policy: string) =>
  JSON.stringify({ policy, workloadOwnerKeyDigests: [ownerKeyDigest(owner)] });

describe("fault: every handler replica SIGKILLed", () => {
  let w: Workflow;
  let publicKey: string;
  let keyFile: string;
  const kills: { at: string; during: string; pids: number[] }[] = [];

  const handlersUp = () =>
    eventually(
      `${HANDLER_REPLICAS} handler processes running again`,
      async () =>
        cliProcesses("handler", serviceLinkPrefix(w.release)).length >= HANDLER_REPLICAS ? true : undefined,
      { timeoutMs: 200_000, intervalMs: 200 },
    );
  const killAll = async (during: string) => {
    const pids = killHandlers(w.release);
    kills.push({ at: new Date().toISOString(), during, pids });
    console.log(`SIGKILL every handler (${during}): pids ${pids.join(", ")}`);
    return pids;
  };
  const podExists = (name: string) =>
    eventually(
      `${name} created`,
      async () => ((await w.pod(name).catch(() => undefined)) ? true : undefined),
      { timeoutMs: 200_000, intervalMs: 100 },
    );
  const allReady = () =>
    w.sh.run("kubectl wait statefulset/coordinator --for=jsonpath='{.status.readyReplicas}=3' --timeout=5m", {
      timeoutMs: 320_000,
    });

  const diagnose = async () => {
    const run = (line: string) => w.sh.run(line, { check: false, timeoutMs: 30_000 });
    await run("kubectl get pods -o wide");
    await run("kubectl get statehead coordinator -o yaml");
    await run(`kubectl -n ${w.system} get pods -o wide`);
    await run(`kubectl -n ${w.system} logs deployment/${w.release}-coordinator-ha-handler --tail=80`);
    for (const pod of PODS) await run(`kubectl logs ${pod} -c coordinator-ha-recovery --tail=40`);
  };
  beforeEach(({ onTestFailed }) => onTestFailed(diagnose));

  beforeAll(async () => {
    w = await installWorkflow("fault-handler");
    keyFile = w.files.write("owner.pem", owner.export({ format: "pem", type: "sec1" }).toString());
    const first = await set(
      w.sh,
      await w.serviceAddress("coordinator"),
      w.files.write("v1.json", manifest("v1")),
    );
    publicKey = first.state!.publicKey;
    // The probe must start with the first pod Ready (its gate flips after `set`, asynchronously).
    await w.sh.run(
      "kubectl wait statefulset/coordinator --for=jsonpath='{.status.readyReplicas}=1' --timeout=2m",
      {
        timeoutMs: 150_000,
      },
    );
    await handlersUp();
  }, 400_000);
  afterAll(async () => {
    console.log(`handler kills: ${JSON.stringify(kills)}`);
    await w?.cleanup();
  });

  const startWatching = async () => ({
    probe: await startProbe({
      kc: w.kc,
      namespace: w.namespace,
      service: "coordinator-ready",
      serviceAddress: await w.serviceAddress("coordinator-ready"),
      publicKey,
    }),
    sampler: sampleInvariants(w.kc, w.namespace, "coordinator"),
  });

  it("during a scale-up from 1 to 3: no request fails, no pod Ready off the head, all 3 Ready after", async () => {
    const { probe, sampler } = await startWatching();
    await w.sh.run("kubectl scale statefulset/coordinator --replicas 3");
    // coordinator-1's sidecar is recovering and about to confirm: kill every handler.
    await podExists("coordinator-1");
    expect((await killAll("scale-up, coordinator-1 recovering")).length).toBe(HANDLER_REPLICAS);
    await handlersUp();
    // OrderedReady: coordinator-2 exists once coordinator-1 is Ready; kill them again as it recovers.
    await podExists("coordinator-2");
    expect((await killAll("scale-up, coordinator-2 recovering")).length).toBe(HANDLER_REPLICAS);
    await allReady();
    await sleep(2000);
    const report = await probe.stop();
    const sampled = await sampler.stop();
    console.log(`${formatReport(report)}; ${formatSamples(sampled)}`);
    for (const f of report.failures.slice(0, 10))
      console.log(`  failed: ${f.at} ${f.via} ${f.target}: ${f.error}`);
    expect(report.failures).toEqual([]);
    expect(report.minReadyEndpoints).toBeGreaterThanOrEqual(1);
    expect(sampled.violations).toEqual([]);
    expect(await checkSettled(w.sh, w.kc, w.namespace, "coordinator", PODS, publicKey)).toEqual([]);
  }, 400_000);

  it("during confirmations and an update: the acknowledged update is in the head, every pod on it after", async () => {
    await handlersUp();
    const { probe, sampler } = await startWatching();
    // A fresh pod confirms from scratch while the two others re-confirm periodically.
    await w.sh.run("kubectl delete pod coordinator-2 --wait=false");
    const update = w.sh.run(
      `coordinator-ha set -c ${await w.podAddress("coordinator-0")} -m ${w.files.write("v2.json", manifest("v2"))} ` +
        `--workload-owner-key ${keyFile}`,
      { check: false, timeoutMs: 200_000 },
    );
    await sleep(300);
    expect((await killAll("confirmations and an update in flight")).length).toBe(HANDLER_REPLICAS);
    const result = await update;
    await handlersUp();
    await allReady();
    await sleep(2000);
    const report = await probe.stop();
    const sampled = await sampler.stop();
    console.log(`${formatReport(report)}; ${formatSamples(sampled)}; update exit ${result.code}`);
    for (const f of report.failures.slice(0, 10))
      console.log(`  failed: ${f.at} ${f.via} ${f.target}: ${f.error}`);
    expect(report.failures).toEqual([]);
    expect(sampled.violations).toEqual([]);
    if (result.code === 0) {
      // Acknowledged: it must be committed, and every pod must end on it (or on a later head).
      const acked = parseState(result.stdout).digest;
      expect(await committedHistory(w.kc, w.namespace, "coordinator")).toContain(acked);
    } else {
      // Not acknowledged: the user was told (exit code, a reason), nothing half-applied.
      expect(result.output).not.toMatch(/Manifest updated/);
    }
    await eventually(
      "every pod Ready on the committed head",
      async () =>
        (await checkSettled(w.sh, w.kc, w.namespace, "coordinator", PODS, publicKey)).length
          ? undefined
          : true,
      { timeoutMs: 120_000, intervalMs: 2000 },
    );
  }, 400_000);
});
