// The soak (`npm run test:faults`, not part of `npm test`: it takes tens of minutes): 20
// `kubectl rollout restart`s in a row, then 50 deletions of a random Coordinator pod, under the
// availability probe and the invariant sampler. 0 failed requests, never dark (at least one
// ready endpoint at all times), every pod on the committed head after, and the memory of every
// component printed across the run (it must stay flat: a leak shows as a growing row).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { installWorkflow, type Workflow } from "../e2e/harness.ts";
import { eventually } from "../kube.ts";
import { isReady, set } from "../workflow/coordinator.ts";
import { formatReport, startProbe } from "../workflow/probe.ts";
import { checkSettled, sampleInvariants, formatSamples } from "./invariants.ts";
import { formatMemory, sampleMemory, type MemorySample } from "./memory.ts";

const PODS = ["coordinator-0", "coordinator-1", "coordinator-2"];
const ROLLOUTS = Number(process.env.SOAK_ROLLOUTS ?? 20);
const DELETIONS = Number(process.env.SOAK_DELETIONS ?? 50);

describe("soak: rollout restarts, then random pod deletions", () => {
  let w: Workflow;
  let publicKey: string;
  let coordinatorEnv: string;
  const memory: { label: string; sample: MemorySample }[] = [];

  beforeEach(({ onTestFailed }) =>
    onTestFailed(async () => {
      const run = (line: string) => w.sh.run(line, { check: false, timeoutMs: 30_000 });
      await run("kubectl get pods -o wide");
      await run("kubectl get statehead coordinator -o yaml");
      await run(`kubectl -n ${w.system} logs deployment/${w.release}-coordinator-ha-handler --tail=40`);
    }),
  );

  beforeAll(async () => {
    w = await installWorkflow("soak");
    const manifest = w.files.write("manifest.json", JSON.stringify({ policy: "soak" }));
    publicKey = (await set(w.sh, await w.serviceAddress("coordinator"), manifest)).state!.publicKey;
    await w.sh.run("kubectl scale statefulset/coordinator --replicas 3");
    await w.sh.run(
      "kubectl wait statefulset/coordinator --for=jsonpath='{.status.readyReplicas}=3' --timeout=4m",
      {
        timeoutMs: 260_000,
      },
    );
    const ready = await w.serviceAddress("coordinator-ready");
    coordinatorEnv = `COORDINATOR_READY_SERVICE_HOST=${ready.split(":")[0]}`;
  }, 500_000);
  afterAll(async () => {
    if (memory.length > 0) console.log(`memory across the soak:\n${formatMemory(memory)}`);
    await w?.cleanup();
  });

  it(
    `${ROLLOUTS} rollout restarts then ${DELETIONS} random pod deletions: 0 failed requests, never dark, memory flat`,
    async () => {
      const probe = await startProbe({
        kc: w.kc,
        namespace: w.namespace,
        service: "coordinator-ready",
        serviceAddress: await w.serviceAddress("coordinator-ready"),
        publicKey,
        pauseMs: 50,
      });
      const sampler = sampleInvariants(w.kc, w.namespace, "coordinator");
      memory.push({ label: "start", sample: sampleMemory(w.release, coordinatorEnv) });
      const started = Date.now();

      for (let i = 1; i <= ROLLOUTS; i++) {
        await w.sh.run("kubectl rollout restart statefulset/coordinator");
        await w.sh.run("kubectl rollout status statefulset/coordinator -w --timeout=5m", {
          timeoutMs: 320_000,
        });
        if (i % 5 === 0) memory.push({ label: `r${i}`, sample: sampleMemory(w.release, coordinatorEnv) });
      }
      const rolloutsDone = Date.now();
      for (let i = 1; i <= DELETIONS; i++) {
        const victim = PODS[Math.floor(Math.random() * PODS.length)]!;
        const before = (await w.pod(victim)).metadata!.uid;
        await w.sh.run(`kubectl delete pod ${victim} --wait=false`);
        // The next deletion once the victim's successor is Ready: never two pods down at once.
        // (The StatefulSet's readyReplicas still counts the deleted pod for a moment, so waiting
        // for it to say 3 let the first run of this soak delete the next pod at once, until no
        // pod held the state.)
        await eventually(
          `${victim} replaced and Ready (deletion ${i})`,
          async () => {
            const pod = await w.pod(victim).catch(() => undefined);
            return pod && pod.metadata!.uid !== before && isReady(pod) ? true : undefined;
          },
          { timeoutMs: 240_000, intervalMs: 250 },
        );
        if (i % 10 === 0) memory.push({ label: `d${i}`, sample: sampleMemory(w.release, coordinatorEnv) });
      }
      const report = await probe.stop();
      const sampled = await sampler.stop();
      console.log(
        `soak: ${ROLLOUTS} rollouts in ${Math.round((rolloutsDone - started) / 1000)} s, ${DELETIONS} deletions in ` +
          `${Math.round((Date.now() - rolloutsDone) / 1000)} s; ${formatReport(report)}; ${formatSamples(sampled)}`,
      );
      console.log(`memory across the soak:\n${formatMemory(memory)}`);
      expect(report.failures).toEqual([]);
      expect(report.minReadyEndpoints).toBeGreaterThanOrEqual(1);
      expect(sampled.violations).toEqual([]);
      await eventually(
        "every pod Ready on the committed head",
        async () =>
          (await checkSettled(w.sh, w.kc, w.namespace, "coordinator", PODS, publicKey)).length
            ? undefined
            : true,
        { timeoutMs: 120_000, intervalMs: 2000 },
      );
    },
    3 * 60 * 60_000,
  );
});
