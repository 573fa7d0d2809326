// A restarted app container loses and regains the gate. The app's state lives in the pod's
// memory emptyDir, which outlives a container restart, but the handler cannot know that the
// restarted app has read it again: when an app container's restartCount grows past the one
// recorded with the confirmation, it sets the gate back to False (AppRestarted) and the pod
// leaves the ready endpoints, until the recovery sidecar, which re-confirms while the app is
// ready, confirms again. Here the app container of coordinator-1 is killed for real, with
// SIGKILL from the host, and a pod watch records what the apiserver saw.
import { readdirSync, readFileSync } from "node:fs";
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Member } from "../../../src/handler/head/state-head.ts";
import { Reason } from "../../../src/names.ts";
import { isReady, recovered, sameKey, set, verify, type CoordinatorState } from "../workflow/coordinator.ts";
import { listWatch } from "../workflow/list-watch.ts";
import { installWorkflow, type Workflow } from "./harness.ts";

const POD = "coordinator-1";
/** The app container of the reference chart. */
const APP = "coordinator";
/** How long the kill may take to show and heal: a restart, probes, a re-confirmation (20 s, and up to one idle look, 8 s). */
const HEAL_MS = 90_000;

const appStatus = (pod: V1Pod) => pod.status?.containerStatuses?.find((c) => c.name === APP);
const restartsOf = (pod: V1Pod) => appStatus(pod)?.restartCount ?? 0;

/** One line per distinct pod state that the watch delivered. */
function describeState(pod: V1Pod): string {
  const gate = recovered(pod);
  return (
    `restarts=${restartsOf(pod)} app=${appStatus(pod)?.ready ? "ready" : "not-ready"} ` +
    `gate=${gate?.status}/${gate?.reason} Ready=${isReady(pod)}`
  );
}

/**
 * The host process of the pod's app container: the one in the container's cgroup (the kubelet's
 * cgroupfs layout ends each container's cgroup path with its id) that runs `dist/cli.js
 * coordinator`. Every Coordinator on the machine runs that command line; only this one is in
 * this container.
 */
function appProcess(pod: V1Pod): { pid: number; cmdline: string; container: string } {
  const container = appStatus(pod)?.containerID?.replace(/^containerd:\/\//, "");
  if (!container) throw new Error(`${POD}'s ${APP} container has no containerID yet`);
  const inContainer = readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .flatMap((pid) => {
      try {
        if (!readFileSync(`/proc/${pid}/cgroup`, "utf8").includes(container)) return [];
        const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        // Exactly the app: the CLI's script followed by the `coordinator` command.
        const at = args.findIndex((a) => a.endsWith("dist/cli.js"));
        return at >= 0 && args[at + 1] === APP
          ? [{ pid: Number(pid), cmdline: args.join(" ").trim(), container }]
          : [];
      } catch {
        return []; // the process ended meanwhile
      }
    });
  if (inContainer.length !== 1) {
    throw new Error(
      `expected exactly one "dist/cli.js ${APP}" process in container ${container}, found ${inContainer.length}`,
    );
  }
  return inContainer[0]!;
}

describe("a restarted app container loses and regains the gate", () => {
  let w: Workflow;
  let state: CoordinatorState;
  let keyFile: string;

  beforeAll(async () => {
    w = await installWorkflow("e2e-restart");
    const manifest = w.files.write("manifest.json", JSON.stringify({ policy: "e2e-restart" }));
    state = (await set(w.sh, await w.serviceAddress("coordinator"), manifest)).state!;
    keyFile = w.files.write("public-key.pem", state.publicKey);
    await w.sh.run("kubectl scale statefulset/coordinator --replicas 2");
    await w.sh.run(
      "kubectl wait statefulset/coordinator --for=jsonpath='{.status.readyReplicas}=2' --timeout=2m",
      { timeoutMs: 150_000 },
    );
  }, 300_000);
  afterAll(async () => {
    await w?.cleanup();
  });

  it("SIGKILL of coordinator-1's app: restartCount grows, the gate turns False (AppRestarted), then True again", async () => {
    const before = await w.pod(POD);
    expect(isReady(before)).toBe(true);
    expect(recovered(before)).toMatchObject({ status: "True", reason: Reason.RecoveredFromPeer });
    const uid = before.metadata!.uid!;
    const restartsBefore = restartsOf(before);

    // Every version of the pod from now on, in the order the apiserver stored them.
    const states: { at: number; state: string }[] = [];
    const marks: Record<string, number> = {};
    let killedAt = 0;
    let latest = before;
    let healed: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (healed = resolve));
    const mark = (what: string) => (marks[what] ??= Date.now());
    const observe = (pod: V1Pod) => {
      if (pod.metadata?.uid !== uid) {
        states.push({ at: Date.now(), state: `another pod ${POD}, uid ${pod.metadata?.uid}` });
        return;
      }
      latest = pod;
      const line = describeState(pod);
      if (states.at(-1)?.state !== line) states.push({ at: Date.now(), state: line });
      if (!killedAt) return;
      const gate = recovered(pod);
      if (restartsOf(pod) > restartsBefore) mark("restart seen");
      if (!isReady(pod)) mark("Ready False");
      if (gate?.status === "False" && gate.reason === Reason.AppRestarted) {
        mark("gate False (AppRestarted)");
        if (!isReady(pod)) mark("gate False and Ready False");
      }
      if (marks["gate False (AppRestarted)"] && gate?.status === "True") mark("gate True again");
      if (marks["gate True again"] && isReady(pod)) {
        mark("Ready again");
        healed();
      }
    };
    const selector = `statefulset.kubernetes.io/pod-name=${POD}`;
    const stopWatch = await listWatch<V1Pod>(
      w.kc,
      {
        list: () =>
          w.kc
            .makeApiClient(CoreV1Api)
            .listNamespacedPod({ namespace: w.namespace, labelSelector: selector }),
        path: `/api/v1/namespaces/${w.namespace}/pods`,
        labelSelector: selector,
      },
      { reset: (pods) => pods.forEach(observe), event: (_type, pod) => observe(pod) },
    );

    let killed: ReturnType<typeof appProcess>;
    try {
      killed = appProcess(await w.pod(POD));
      console.log(`${POD}'s app: pid ${killed.pid} in container ${killed.container}: ${killed.cmdline}`);
      killedAt = Date.now();
      process.kill(killed.pid, "SIGKILL");

      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `${POD} did not lose and regain the gate within ${HEAL_MS / 1000}s after the kill; ` +
                  `seen: ${JSON.stringify(marks)}; states:\n${states.map((s) => s.state).join("\n")}`,
              ),
            ),
          HEAL_MS,
        );
      });
      await Promise.race([done, timedOut]).finally(() => clearTimeout(timer));
    } finally {
      stopWatch();
    }

    const since = (at: number) => `+${((at - killedAt) / 1000).toFixed(2)}s`;
    console.log(
      `timeline after the SIGKILL:\n` +
        Object.entries(marks)
          .sort(([, a], [, b]) => a - b)
          .map(([what, at]) => `  ${since(at)}  ${what}`)
          .join("\n") +
        `\npod states seen by the watch:\n` +
        states.map((s) => `  ${s.at < killedAt ? "before" : since(s.at)}  ${s.state}`).join("\n"),
    );

    // The container restarted in place: the same pod, one more restart, killed by signal 9.
    expect(latest.metadata!.uid).toBe(uid);
    expect(restartsOf(latest)).toBe(restartsBefore + 1);
    expect(appStatus(latest)?.lastState?.terminated?.exitCode).toBe(128 + 9);
    // It lost the gate, and Ready with it, ...
    expect(Object.keys(marks)).toEqual(
      expect.arrayContaining(["restart seen", "gate False (AppRestarted)", "gate False and Ready False"]),
    );
    // ... and regained both, re-confirmed with the new restart count and the same state.
    const gate = recovered(latest)!;
    expect(gate).toMatchObject({ status: "True", reason: Reason.RecoveredFromPeer });
    expect(isReady(latest)).toBe(true);
    // The confirmation record lives in the StatefulSet's StateHead: the same state, and the
    // restart count of the re-confirmation.
    const head = await w.sh.json<{ spec: { members: Record<string, Member> } }>(
      "kubectl get statehead coordinator -o json",
    );
    expect(head.spec.members[POD]).toMatchObject({
      uid,
      digest: state.digest,
      restarts: { [APP]: restartsBefore + 1 },
    });

    // A new app process runs in the pod, and it holds the same state (the memory emptyDir).
    expect(appProcess(latest).pid).not.toBe(killed.pid);
    await w.sh.run(`kubectl get pod ${POD}`);
    const { state: got } = await verify(w.sh, await w.podAddress(POD), { expectKeyFile: keyFile });
    expect(sameKey(got!.publicKey, state.publicKey)).toBe(true);
    expect(got!.digest).toBe(state.digest);

    // The handler said why the pod turned unready, on the pod.
    type Event = {
      type: string;
      reason: string;
      message: string;
      involvedObject: { uid: string };
      source?: { component?: string };
    };
    await w.sh.run(
      `kubectl get events --field-selector involvedObject.name=${POD},reason=${Reason.AppRestarted}`,
    );
    const events = await w.sh.json<{ items: Event[] }>(
      `kubectl get events --field-selector involvedObject.name=${POD},reason=${Reason.AppRestarted} -o json`,
    );
    expect(events.items.filter((e) => e.involvedObject.uid === uid)).toEqual([
      expect.objectContaining({
        type: "Warning",
        reason: Reason.AppRestarted,
        message: expect.stringContaining(`App container ${APP} restarted after the state was confirmed`),
        source: expect.objectContaining({ component: "coordinator-ha-handler" }),
      }),
    ]);
  }, 180_000);
});
