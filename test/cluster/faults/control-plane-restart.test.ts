// Fault: kube-apiserver restarted, then etcd restarted, each during a `kubectl rollout restart`
// of three Coordinators. While the apiserver is down no pod is created and no gate is written;
// the Ready pods keep serving (kube-proxy / the node's NAT keeps the last endpoints), the
// handler's watch fails and relists, and the rollout resumes once the apiserver is back. The
// probe runs throughout and every Ready pod must serve the committed head.
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { installWorkflow, type Workflow } from "../e2e/harness.ts";
import { eventually } from "../kube.ts";
import { set } from "../workflow/coordinator.ts";
import { formatReport, startProbe } from "../workflow/probe.ts";
import { logTail, restartComponent, type Component } from "./control-plane.ts";
import { checkSettled, sampleInvariants, formatSamples } from "./invariants.ts";

const PODS = ["coordinator-0", "coordinator-1", "coordinator-2"];
/** How long the component stays down: longer than a sidecar's confirmation retry. */
const DOWN_MS = 10_000;

describe.each<Component>(["kube-apiserver", "etcd"])("fault: %s restarted during a rollout", (component) => {
  let w: Workflow;
  let publicKey: string;

  const diagnose = async () => {
    const run = (line: string) => w.sh.run(line, { check: false, timeoutMs: 30_000 });
    await run("kubectl get pods -o wide");
    await run("kubectl get statehead coordinator -o yaml");
    await run(`kubectl -n ${w.system} logs deployment/${w.release}-coordinator-ha-handler --tail=80`);
  };
  beforeEach(({ onTestFailed }) => onTestFailed(diagnose));

  beforeAll(async () => {
    w = await installWorkflow("fault-cp");
    const manifest = w.files.write("manifest.json", JSON.stringify({ policy: `fault-${component}` }));
    publicKey = (await set(w.sh, await w.serviceAddress("coordinator"), manifest)).state!.publicKey;
    await w.sh.run("kubectl scale statefulset/coordinator --replicas 3");
    await w.sh.run(
      "kubectl wait statefulset/coordinator --for=jsonpath='{.status.readyReplicas}=3' --timeout=4m",
      {
        timeoutMs: 260_000,
      },
    );
  }, 500_000);
  afterAll(async () => {
    await w?.cleanup();
  });

  it("no request fails, no pod Ready off the head, the rollout completes, every pod Ready after", async () => {
    const probe = await startProbe({
      kc: w.kc,
      namespace: w.namespace,
      service: "coordinator-ready",
      serviceAddress: await w.serviceAddress("coordinator-ready"),
      publicKey,
    });
    const sampler = sampleInvariants(w.kc, w.namespace, "coordinator");
    const before = (await w.pod("coordinator-2")).metadata!.uid;
    await w.sh.run("kubectl rollout restart statefulset/coordinator");
    // The rollout goes from the highest ordinal down: restart as coordinator-2's successor recovers.
    await eventually(
      "coordinator-2 replaced",
      async () => {
        const pod = await w.pod("coordinator-2").catch(() => undefined);
        return pod && pod.metadata!.uid !== before ? true : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 100 },
    );
    const restart = await restartComponent(w.kc, component, DOWN_MS);
    console.log(
      `${component} restarted: the apiserver served from etcd again ${restart.downMs} ms after the stop` +
        (restart.restartedOthers.length
          ? `; restarted meanwhile: ${restart.restartedOthers.join(", ")}`
          : ""),
    );
    try {
      await w.sh.run("kubectl rollout status statefulset/coordinator -w --timeout=5m", {
        timeoutMs: 320_000,
      });
    } catch (err) {
      // What stopped the rollout, from the components that place and start pods.
      await w.sh.run("kubectl get pods -o wide", { check: false });
      for (const name of ["kube-scheduler", "kube-controller-manager"]) {
        console.log(`${name}, last lines:\n${logTail(name)}`);
      }
      throw err;
    } finally {
      const again = await restart.stopSupervising();
      if (again.length > 0) console.log(`started again during the test: ${again.join(", ")}`);
    }
    await sleep(2000);
    const report = await probe.stop();
    const sampled = await sampler.stop();
    console.log(`${formatReport(report)}; ${formatSamples(sampled)}`);
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
  }, 600_000);
});
