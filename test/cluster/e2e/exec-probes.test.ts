// The sidecar's exec probes (chart value sidecar.probes=exec, webhook flag --sidecar-probes=exec)
// on the real kubelet and runtime, for pods whose network is closed to inbound connections until
// the app runs, as Contrast's pod VMs are: the kubelet runs `coordinator-ha probe` inside the
// sidecar, which asks the sidecar on 127.0.0.1. A recovering pod starts behind the exec startup
// probe, and with every inbound connection to the probe port dropped in the pod's network
// namespace, the pods stay Ready and no sidecar is restarted by its liveness probe (three
// failed HTTP probes, 30 s, would restart it).
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Reason, SIDECAR_NAME, SIDECAR_PROBE_PORT } from "../../../src/names.ts";
import { inPodNetwork, sidecarPid } from "../faults/pod-faults.ts";
import { eventually } from "../kube.ts";
import { isReady, recovered, set } from "../workflow/coordinator.ts";
import { installWorkflow, type Workflow } from "./harness.ts";

const PODS = ["coordinator-0", "coordinator-1"];
/** Longer than the sidecar's liveness probe needs to restart it: 3 failures 10 s apart. */
const CLOSED_FOR_MS = 45_000;

/** Whether a TCP connection to ip:port opens within `ms`. */
function connects(ip: string, port: number, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: ip, port, timeout: ms });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.on("connect", () => done(true));
    socket.on("timeout", () => done(false));
    socket.on("error", () => done(false));
  });
}

describe("the sidecar's exec probes, with the pods closed to inbound connections", () => {
  let w: Workflow;

  beforeAll(async () => {
    w = await installWorkflow("e2e-exec-probes", { chartArgs: "--set sidecar.probes=exec" });
  }, 240_000);
  afterAll(async () => {
    await w?.cleanup();
  });
  beforeEach(({ onTestFailed }) =>
    onTestFailed(async () => {
      for (const pod of PODS) {
        await w.sh.run(`kubectl describe pod ${pod}`, { check: false });
        await w.sh.run(`kubectl logs ${pod} -c ${SIDECAR_NAME} --tail=40`, { check: false });
      }
    }),
  );

  const sidecar = async (pod: string) =>
    (await w.pod(pod)).spec?.initContainers?.find((c) => c.name === SIDECAR_NAME);
  const sidecarRestarts = async (pod: string) =>
    (await w.pod(pod)).status?.initContainerStatuses?.find((c) => c.name === SIDECAR_NAME)?.restartCount;

  it("injects exec startup and liveness probes, and a peer recovers behind them", async () => {
    const injected = await sidecar("coordinator-0");
    for (const probe of [injected?.startupProbe, injected?.livenessProbe]) {
      expect(probe?.exec?.command?.slice(-2)).toEqual(expect.arrayContaining(["probe"]));
      expect(probe?.httpGet).toBeUndefined();
    }
    await set(w.sh, await w.serviceAddress("coordinator"), w.files.write("v1.json", '{"policy":"v1"}'));
    await w.sh.run("kubectl scale statefulset/coordinator --replicas 2");
    await w.sh.run(
      "kubectl wait statefulset/coordinator --for=jsonpath='{.status.readyReplicas}=2' --timeout=2m",
      { timeoutMs: 150_000 },
    );
    expect(recovered(await w.pod("coordinator-1"))).toMatchObject({
      status: "True",
      reason: Reason.RecoveredFromPeer,
    });
    expect((await sidecar("coordinator-1"))?.startupProbe?.exec).toBeDefined();
  });

  it("with inbound connections to the probe port dropped, the pods stay Ready and no sidecar restarts", async () => {
    const before = await Promise.all(PODS.map(sidecarRestarts));
    for (const pod of PODS) {
      const pid = sidecarPid(w.namespace, pod);
      expect(pid, `the sidecar process of ${pod}`).toBeDefined();
      await inPodNetwork(pid!, "iptables", [
        "-I",
        "INPUT",
        // From outside the pod only: the exec probe asks the sidecar over loopback.
        "!",
        "-i",
        "lo",
        "-p",
        "tcp",
        "--dport",
        String(SIDECAR_PROBE_PORT),
        "-j",
        "DROP",
      ]);
    }
    // The drop is real: from the node, the probe port does not answer.
    const ip = (await w.pod("coordinator-1")).status!.podIP!;
    expect(await connects(ip, SIDECAR_PROBE_PORT, 3000)).toBe(false);

    await sleep(CLOSED_FOR_MS);
    for (const [i, pod] of PODS.entries()) {
      const now = await w.pod(pod);
      expect(isReady(now), `${pod} Ready`).toBe(true);
      expect(await sidecarRestarts(pod), `${pod}'s sidecar restarts`).toBe(before[i]);
    }
    // And a pod that starts now recovers behind the exec startup probe as before.
    const old = (await w.pod("coordinator-1")).metadata?.uid;
    await w.sh.run("kubectl delete pod coordinator-1 --wait=false");
    await eventually(
      "a new coordinator-1 recovered",
      async () => {
        const pod = await w.pod("coordinator-1").catch(() => undefined);
        const fresh = pod && pod.metadata?.uid !== old;
        return fresh && isReady(pod) && recovered(pod)?.reason === Reason.RecoveredFromPeer
          ? true
          : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
  });
});
