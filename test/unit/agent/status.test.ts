// The status computation against the kubelet's rules (pkg/kubelet/status/generate.go,
// pkg/kubelet/kubelet_pods.go getPhase and convertToAPIContainerStatuses, Kubernetes 1.35).
import { describe, expect, it } from "vitest";
import type { Container, Pod, PodCondition, PodStatus } from "../../cluster/agent/kube/wire.ts";
import { generatePodStatus, type StatusInput } from "../../cluster/agent/pod/status.ts";
import type { ContainerRecord, ProbeState, WaitingReason } from "../../cluster/agent/pod/types.ts";

const T0 = new Date("2026-01-01T00:00:00Z");
const at = (s: number) => new Date(T0.getTime() + s * 1000);

function pod(
  spec: Partial<NonNullable<Pod["spec"]>>,
  extra: { conditions?: PodCondition[]; deleted?: boolean } = {},
): Pod {
  return {
    metadata: {
      name: "p",
      namespace: "ns",
      uid: "uid-1",
      generation: 1,
      ...(extra.deleted ? { deletionTimestamp: "2026-01-01T00:01:00Z" } : {}),
    },
    spec: { containers: [], ...spec },
    status: { phase: "Pending", qosClass: "BestEffort", conditions: extra.conditions ?? [] },
  };
}

const c = (name: string, more: Partial<Container> = {}): Container => ({ name, image: "busybox", ...more });
const sidecar = (name: string, more: Partial<Container> = {}): Container =>
  c(name, { restartPolicy: "Always", ...more });

let seq = 0;
function run(
  name: string,
  state: "running" | "exited",
  more: Partial<ContainerRecord> = {},
): ContainerRecord {
  seq += 1;
  return {
    id: `cha://${name}-${seq}`,
    name,
    image: "docker.io/library/busybox:latest",
    imageID: "docker.io/library/busybox@sha256:00",
    restartCount: 0,
    createdAt: at(seq),
    state,
    startedAt: at(seq),
    ...(state === "exited" ? { finishedAt: at(seq + 1), exitCode: 0, reason: "Completed" } : {}),
    ...more,
  };
}

interface Case {
  pod: Pod;
  records?: ContainerRecord[];
  probes?: Record<string, Partial<ProbeState>>;
  waiting?: Record<string, WaitingReason>;
  old?: PodStatus;
  podIsTerminal?: boolean;
  sandboxReady?: boolean;
}

function status(k: Case): PodStatus {
  const input: StatusInput = {
    pod: k.pod,
    oldStatus: k.old ?? k.pod.status ?? {},
    runtime: { sandboxReady: k.sandboxReady ?? true, ips: ["10.244.0.5"], records: k.records ?? [] },
    probe: (id) => {
      const r = (k.records ?? []).find((x) => x.id === id);
      const p = r ? k.probes?.[r.name] : undefined;
      return p ? { started: false, ready: undefined, ...p } : undefined;
    },
    waiting: new Map(Object.entries(k.waiting ?? {})),
    podIsTerminal: k.podIsTerminal ?? false,
    hostIP: "10.244.0.1",
    now: at(100),
  };
  return generatePodStatus(input);
}

const cond = (s: PodStatus, type: string) => {
  const found = s.conditions?.find((x) => x.type === type);
  if (!found) throw new Error(`no ${type} condition`);
  const { type: _t, lastTransitionTime: _l, observedGeneration: _o, ...rest } = found;
  return rest;
};

describe("Ready and readiness gates", () => {
  const gated = (conditions: PodCondition[] = []) =>
    pod(
      {
        containers: [c("app")],
        readinessGates: [{ conditionType: "coordinator-ha.io/recovered" }],
      },
      { conditions },
    );

  it("is False with ReadinessGatesNotReady while the gate's condition does not exist", () => {
    const s = status({ pod: gated(), records: [run("app", "running")] });
    expect(cond(s, "ContainersReady")).toEqual({ status: "True" });
    expect(cond(s, "Ready")).toEqual({
      status: "False",
      reason: "ReadinessGatesNotReady",
      message: 'corresponding condition of pod readiness gate "coordinator-ha.io/recovered" does not exist.',
    });
  });

  it("is False while the gate's condition is False, with the kubelet's message", () => {
    const s = status({
      pod: gated([
        { type: "coordinator-ha.io/recovered", status: "False", lastTransitionTime: "2026-01-01T00:00:00Z" },
      ]),
      records: [run("app", "running")],
    });
    expect(cond(s, "Ready")).toEqual({
      status: "False",
      reason: "ReadinessGatesNotReady",
      message: 'the status of pod readiness gate "coordinator-ha.io/recovered" is not "True", but False',
    });
  });

  it("turns True once the gate's condition is True", () => {
    const s = status({
      pod: gated([
        { type: "coordinator-ha.io/recovered", status: "True", lastTransitionTime: "2026-01-01T00:00:00Z" },
      ]),
      records: [run("app", "running")],
    });
    expect(cond(s, "Ready")).toEqual({ status: "True" });
  });

  it("joins the messages of several gates with a comma", () => {
    const p = pod(
      { containers: [c("app")], readinessGates: [{ conditionType: "a/x" }, { conditionType: "b/y" }] },
      { conditions: [{ type: "b/y", status: "Unknown" }] },
    );
    const s = status({ pod: p, records: [run("app", "running")] });
    expect(cond(s, "Ready").message).toBe(
      'corresponding condition of pod readiness gate "a/x" does not exist., ' +
        'the status of pod readiness gate "b/y" is not "True", but Unknown',
    );
  });

  it("reports unready containers before gates: gates only matter once the containers are ready", () => {
    const withProbe = gated();
    withProbe.spec!.containers[0]!.readinessProbe = { tcpSocket: { port: 80 } };
    const s = status({ pod: withProbe, records: [run("app", "running")], probes: { app: { ready: false } } });
    expect(cond(s, "Ready")).toEqual({
      status: "False",
      reason: "ContainersNotReady",
      message: "containers with unready status: [app]",
    });
  });

  it("never writes a condition it does not own", () => {
    const s = status({
      pod: gated([{ type: "coordinator-ha.io/recovered", status: "True" }]),
      records: [run("app", "running")],
    });
    expect(s.conditions!.map((x) => x.type).sort()).toEqual([
      "ContainersReady",
      "Initialized",
      "PodReadyToStartContainers",
      "PodScheduled",
      "Ready",
    ]);
    expect(s.conditions!.every((x) => x.observedGeneration === 1)).toBe(true);
  });
});

describe("containers and phase", () => {
  it("reports a pod whose containers have not started as Pending/ContainerCreating", () => {
    const s = status({ pod: pod({ containers: [c("b"), c("a")] }), sandboxReady: false });
    expect(s.phase).toBe("Pending");
    expect(s.containerStatuses!.map((x) => x.name)).toEqual(["a", "b"]);
    expect(s.containerStatuses![0]).toMatchObject({
      image: "busybox",
      imageID: "",
      ready: false,
      started: false,
      restartCount: 0,
      state: { waiting: { reason: "ContainerCreating" } },
    });
    expect(cond(s, "PodReadyToStartContainers")).toEqual({ status: "False" });
    expect(cond(s, "ContainersReady")).toEqual({
      status: "False",
      reason: "ContainersNotReady",
      message: "containers with unready status: [b a]", // spec order, as the kubelet lists them
    });
    expect(cond(s, "Initialized")).toEqual({ status: "True" });
  });

  it("waits on PodInitializing while an init container runs", () => {
    const p = pod({ initContainers: [c("init")], containers: [c("app")] });
    const s = status({ pod: p, records: [run("init", "running")] });
    expect(s.phase).toBe("Pending");
    expect(s.containerStatuses![0]!.state).toEqual({ waiting: { reason: "PodInitializing" } });
    expect(cond(s, "Initialized")).toEqual({
      status: "False",
      reason: "ContainersNotInitialized",
      message: "containers with incomplete status: [init]",
    });
    expect(s.initContainerStatuses![0]).toMatchObject({ ready: false, started: true });
  });

  it("marks a completed init container ready and the pod initialized", () => {
    const p = pod({ initContainers: [c("init")], containers: [c("app")] });
    const s = status({ pod: p, records: [run("init", "exited"), run("app", "running")] });
    expect(s.phase).toBe("Running");
    expect(s.initContainerStatuses![0]).toMatchObject({
      ready: true,
      started: false,
      state: { terminated: { exitCode: 0, reason: "Completed" } },
    });
    expect(cond(s, "Initialized")).toEqual({ status: "True" });
    expect(cond(s, "Ready")).toEqual({ status: "True" });
  });

  it("counts a sidecar as initialized once its startup probe passed, and as a container for readiness", () => {
    const p = pod({
      initContainers: [sidecar("side", { startupProbe: { tcpSocket: { port: 1 } } })],
      containers: [c("app")],
    });
    const notStarted = status({
      pod: p,
      records: [run("side", "running")],
      probes: { side: { started: false } },
    });
    expect(notStarted.phase).toBe("Pending");
    expect(cond(notStarted, "Initialized").message).toBe("containers with incomplete status: [side]");
    expect(cond(notStarted, "ContainersReady").message).toBe("containers with unready status: [side app]");

    const started = status({
      pod: p,
      records: [run("side", "running")],
      probes: { side: { started: true } },
    });
    expect(cond(started, "Initialized")).toEqual({ status: "True" });
    expect(started.initContainerStatuses![0]).toMatchObject({ started: true, ready: true });
  });

  it("shows CrashLoopBackOff with the last termination, and keeps the pod Running", () => {
    const p = pod({ containers: [c("app")] });
    const s = status({
      pod: p,
      records: [
        run("app", "exited", { exitCode: 1, reason: "Error" }),
        run("app", "exited", { exitCode: 2, reason: "Error", restartCount: 1 }),
      ],
      waiting: {
        app: {
          reason: "CrashLoopBackOff",
          message: "back-off 10s restarting failed container=app pod=p_ns(uid-1)",
        },
      },
    });
    expect(s.phase).toBe("Running");
    const app = s.containerStatuses![0]!;
    expect(app.restartCount).toBe(1);
    expect(app.state).toEqual({
      waiting: {
        reason: "CrashLoopBackOff",
        message: "back-off 10s restarting failed container=app pod=p_ns(uid-1)",
      },
    });
    expect(app.lastState?.terminated).toMatchObject({ exitCode: 2, reason: "Error" });
  });

  it.each([
    ["Never", 0, "Succeeded"],
    ["Never", 1, "Failed"],
    ["OnFailure", 0, "Succeeded"],
    ["OnFailure", 1, "Running"],
    ["Always", 0, "Running"],
  ])("restartPolicy %s, exit code %i: phase %s", (policy, code, phase) => {
    const p = pod({ restartPolicy: policy, containers: [c("app")] });
    const s = status({
      pod: p,
      records: [run("app", "exited", { exitCode: code, reason: code ? "Error" : "Completed" })],
    });
    expect(s.phase).toBe(phase);
  });

  it("fails the pod when an init container fails under restartPolicy Never", () => {
    const p = pod({ restartPolicy: "Never", initContainers: [c("init")], containers: [c("app")] });
    const s = status({ pod: p, records: [run("init", "exited", { exitCode: 3, reason: "Error" })] });
    expect(s.phase).toBe("Failed");
    expect(cond(s, "Ready")).toEqual({ status: "False", reason: "PodFailed" });
    expect(cond(s, "ContainersReady")).toEqual({ status: "False", reason: "PodFailed" });
  });

  it("reports a deleted pod whose containers stopped with SIGTERM as Failed, and one that exited 0 as Succeeded", () => {
    const p = pod({ containers: [c("app")] }, { deleted: true });
    const sigterm = status({
      pod: p,
      podIsTerminal: true,
      sandboxReady: false,
      records: [run("app", "exited", { exitCode: 143, reason: "Error" })],
    });
    expect(sigterm.phase).toBe("Failed");
    expect(cond(sigterm, "PodReadyToStartContainers")).toEqual({ status: "False" });
    const clean = status({ pod: p, podIsTerminal: true, records: [run("app", "exited")] });
    expect(clean.phase).toBe("Succeeded");
    expect(cond(clean, "Ready")).toEqual({ status: "False", reason: "PodCompleted" });
    expect(cond(clean, "Initialized")).toEqual({ status: "True", reason: "PodCompleted" });
  });

  it("does not report a terminal phase while a container may still run", () => {
    const p = pod({ restartPolicy: "Never", containers: [c("a"), c("b")] });
    const old: PodStatus = { phase: "Running" };
    const s = status({ pod: p, old, records: [run("a", "exited"), run("b", "running")] });
    expect(s.phase).toBe("Running");
  });

  it("infers a termination for a container that ran but that the runtime lost", () => {
    const p = pod({ containers: [c("app")] });
    const old: PodStatus = {
      phase: "Running",
      containerStatuses: [
        {
          name: "app",
          image: "busybox",
          imageID: "x",
          ready: true,
          restartCount: 2,
          state: { running: { startedAt: "2026-01-01T00:00:00Z" } },
        },
      ],
    };
    const s = status({ pod: p, old });
    expect(s.containerStatuses![0]!.restartCount).toBe(3);
    expect(s.containerStatuses![0]!.lastState?.terminated).toMatchObject({
      reason: "ContainerStatusUnknown",
      exitCode: 137,
    });
    expect(s.phase).toBe("Running");
  });

  it("reports ErrImagePull for an unmapped image", () => {
    const p = pod({ containers: [c("app", { image: "example.com/nope:1" })] });
    const s = status({ pod: p, waiting: { app: { reason: "ErrImagePull", message: "no mapping" } } });
    expect(s.containerStatuses![0]!.state).toEqual({
      waiting: { reason: "ErrImagePull", message: "no mapping" },
    });
    expect(s.phase).toBe("Pending");
  });

  it("reports running containers with ids, volume mounts, resources and the root user", () => {
    const p = pod({
      containers: [
        c("app", {
          volumeMounts: [
            { name: "data", mountPath: "/data" },
            { name: "token", mountPath: "/var/run/secrets/x", readOnly: true },
          ],
          resources: { requests: { cpu: "100m" } },
        }),
      ],
    });
    const r = run("app", "running");
    const s = status({ pod: p, records: [r] });
    expect(s.containerStatuses![0]).toMatchObject({
      containerID: r.id,
      imageID: r.imageID,
      image: r.image,
      started: true,
      ready: true,
      state: { running: { startedAt: r.startedAt!.toISOString().replace(".000", "") } },
      volumeMounts: [
        { name: "data", mountPath: "/data" },
        { name: "token", mountPath: "/var/run/secrets/x", readOnly: true, recursiveReadOnly: "Disabled" },
      ],
      resources: { requests: { cpu: "100m" } },
      allocatedResources: { cpu: "100m" },
      user: { linux: { uid: 0, gid: 0, supplementalGroups: [0] } },
    });
    expect(s).toMatchObject({
      hostIP: "10.244.0.1",
      hostIPs: [{ ip: "10.244.0.1" }],
      podIP: "10.244.0.5",
      podIPs: [{ ip: "10.244.0.5" }],
      qosClass: "BestEffort",
      observedGeneration: 1,
    });
  });
});

describe("transition times", () => {
  it("keeps lastTransitionTime while a condition's status is unchanged, and moves it on a change", () => {
    const p = pod({ containers: [c("app")] });
    const first = status({ pod: p, records: [] });
    const readyAt = (s: PodStatus) => s.conditions!.find((x) => x.type === "Ready")!.lastTransitionTime;
    const old: PodStatus = {
      ...first,
      conditions: first.conditions!.map((x) => ({ ...x, lastTransitionTime: "2025-12-31T00:00:00Z" })),
      startTime: "2025-12-31T00:00:00Z",
    };
    const same = status({ pod: p, old, records: [] });
    expect(readyAt(same)).toBe("2025-12-31T00:00:00Z");
    expect(same.startTime).toBe("2025-12-31T00:00:00Z");
    const changed = status({ pod: p, old, records: [run("app", "running")] });
    expect(readyAt(changed)).toBe("2026-01-01T00:01:40Z");
  });
});
