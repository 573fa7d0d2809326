// Sync decisions against the kubelet's computePodActions / computeInitContainerActions.
import { describe, expect, it } from "vitest";
import type { Container, Pod } from "../../cluster/agent/kube/wire.ts";
import { computePodActions } from "../../cluster/agent/pod/actions.ts";
import type { ProbeResult } from "../../cluster/agent/pod/probes.ts";
import type { ContainerRecord } from "../../cluster/agent/pod/types.ts";

let seq = 0;
const rec = (name: string, state: "running" | "exited", exitCode = 0): ContainerRecord => {
  seq += 1;
  return {
    id: `${name}-${seq}`,
    name,
    image: "i",
    imageID: "i",
    restartCount: 0,
    createdAt: new Date(seq * 1000),
    state,
    ...(state === "exited" ? { exitCode } : {}),
  };
};
const c = (name: string, more: Partial<Container> = {}): Container => ({ name, image: "busybox", ...more });
const pod = (spec: Partial<NonNullable<Pod["spec"]>>): Pod => ({
  metadata: { name: "p" },
  spec: { containers: [], ...spec },
});
const probes = (startup: Record<string, ProbeResult> = {}, liveness: Record<string, ProbeResult> = {}) => ({
  startup: (id: string) => startup[id.split("-")[0]!],
  liveness: (id: string) => liveness[id.split("-")[0]!],
});

describe("init containers and sidecars", () => {
  const p = pod({
    initContainers: [
      c("init"),
      c("side", { restartPolicy: "Always", startupProbe: { tcpSocket: { port: 1 } } }),
      c("side2", { restartPolicy: "Always" }),
    ],
    containers: [c("app")],
  });

  it("starts the first init container first", () => {
    expect(computePodActions(p, [], probes())).toMatchObject({
      initContainersToStart: [0],
      containersToStart: [],
    });
  });

  it("starts the sidecar once the init container completed", () => {
    expect(computePodActions(p, [rec("init", "exited")], probes())).toMatchObject({
      initContainersToStart: [1],
      containersToStart: [],
    });
  });

  it("holds the next container until the sidecar's startup probe succeeds", () => {
    const records = [rec("init", "exited"), rec("side", "running")];
    expect(computePodActions(p, records, probes())).toMatchObject({
      initContainersToStart: [],
      containersToStart: [],
    });
    expect(computePodActions(p, records, probes({ side: "Success" }))).toMatchObject({
      initContainersToStart: [2],
    });
  });

  it("lets a sidecar without a startup probe release the app as soon as it runs", () => {
    const records = [rec("init", "exited"), rec("side", "running"), rec("side2", "running")];
    expect(computePodActions(p, records, probes({ side: "Success" }))).toMatchObject({
      initContainersToStart: [],
      containersToStart: [0],
    });
  });

  it("restarts a sidecar that exited, without re-running the completed init container", () => {
    const records = [
      rec("init", "exited"),
      rec("side", "exited", 1),
      rec("side2", "running"),
      rec("app", "running"),
    ];
    expect(computePodActions(p, records, probes({ side: "Success" }))).toMatchObject({
      initContainersToStart: [1],
      containersToStart: [],
    });
  });

  it("kills and restarts a sidecar whose startup probe failed", () => {
    const records = [rec("init", "exited"), rec("side", "running")];
    const a = computePodActions(p, records, probes({ side: "Failure" }));
    expect(a.containersToKill).toEqual([
      { id: records[1]!.id, name: "side", message: "Init container side failed startup probe" },
    ]);
    expect(a.initContainersToStart).toEqual([1]);
  });

  it("retries a failed init container, or fails the pod under restartPolicy Never", () => {
    expect(computePodActions(p, [rec("init", "exited", 1)], probes())).toMatchObject({
      initContainersToStart: [0],
      killPod: false,
    });
    const never = { ...p, spec: { ...p.spec!, restartPolicy: "Never" } };
    expect(computePodActions(never, [rec("init", "exited", 1)], probes())).toMatchObject({
      initContainersToStart: [],
      killPod: true,
    });
  });
});

describe("regular containers", () => {
  it("kills a container that failed its liveness probe, and restarts it", () => {
    const p = pod({ containers: [c("app"), c("other")] });
    const records = [rec("app", "running"), rec("other", "running")];
    const a = computePodActions(p, records, probes({}, { app: "Failure" }));
    expect(a.containersToKill).toEqual([
      { id: records[0]!.id, name: "app", message: "Container app failed liveness probe, will be restarted" },
    ]);
    expect(a.containersToStart).toEqual([0]);
  });

  it("restarts exited containers according to the restart policy", () => {
    const onFailure = pod({ restartPolicy: "OnFailure", containers: [c("ok"), c("bad"), c("run")] });
    const a = computePodActions(
      onFailure,
      [rec("ok", "exited", 0), rec("bad", "exited", 2), rec("run", "running")],
      probes(),
    );
    expect(a.containersToStart).toEqual([1]);
  });

  it("stops the pod once every container is done for good", () => {
    const p = pod({
      restartPolicy: "Never",
      initContainers: [c("side", { restartPolicy: "Always" })],
      containers: [c("job")],
    });
    const a = computePodActions(p, [rec("side", "running"), rec("job", "exited", 0)], probes());
    expect(a.killPod).toBe(true);
  });
});
