// The pod status, computed as the kubelet of Kubernetes 1.35 computes it. A pure function
// of the pod, the previous status and the runtime's records, so that every rule can be
// table-tested against what the kubelet would report. The sources it mirrors:
//   pkg/kubelet/kubelet_pods.go     generateAPIPodStatus, convertToAPIContainerStatuses, getPhase
//   pkg/kubelet/status/generate.go  the Initialized, ContainersReady and Ready conditions
//   pkg/kubelet/status/status_manager.go  lastTransitionTime, startTime, mergePodStatus
//   pkg/kubelet/prober/prober_manager.go  UpdatePodStatus (started, ready)
// Feature gates as 1.35 ships them: PodReadyToStartContainersCondition, ContainerRestartRules,
// InPlacePodVerticalScaling, RecursiveReadOnlyMounts, SupplementalGroupsPolicy and
// PodObservedGenerationTracking on; ChangeContainerStatusOnKubeletRestart and
// RestartAllContainersOnContainerExits off.
import type { Container, ContainerStatus, Pod, PodCondition, PodStatus } from "../kube/wire.ts";
import { rfc3339 } from "../kube/wire.ts";
import { containerShouldRestart, isRestartableInitContainer, shouldContainerBeRestarted } from "./policy.ts";
import type { ContainerRecord, ProbeState, RuntimePod, WaitingReason } from "./types.ts";

/** Condition types the kubelet owns; every other condition belongs to someone else. */
export const KUBELET_CONDITIONS = [
  "PodReadyToStartContainers",
  "Initialized",
  "Ready",
  "ContainersReady",
  "PodScheduled",
] as const;

export function isKubeletCondition(type: string): boolean {
  return (KUBELET_CONDITIONS as readonly string[]).includes(type);
}

export interface StatusInput {
  /** The pod as the apiserver has it now (spec, metadata, and others' conditions). */
  pod: Pod;
  /** The last status the agent computed for this pod, or else the apiserver's. */
  oldStatus: PodStatus;
  runtime: RuntimePod;
  /** Probe results of a container run; undefined when no prober knows the run. */
  probe: (containerId: string) => ProbeState | undefined;
  /** Why a container that should run is not running (the reason cache). */
  waiting: ReadonlyMap<string, WaitingReason>;
  /** The pod is being torn down (deleted, or terminal): its containers will not restart. */
  podIsTerminal: boolean;
  hostIP: string;
  now: Date;
}

// A Go []string printed with %s, as the kubelet's messages print container lists.
const goList = (names: string[]): string => `[${names.join(" ")}]`;

const ZERO_TIME = "1970-01-01T00:00:00Z";
const time = (d: Date | undefined): string => (d ? rfc3339(d) : ZERO_TIME);

function defaultVolumeMounts(c: Container): ContainerStatus["volumeMounts"] {
  if (!c.volumeMounts?.length) return undefined;
  return c.volumeMounts.map((m) => ({
    name: m.name,
    mountPath: m.mountPath,
    ...(m.readOnly ? { readOnly: true, recursiveReadOnly: "Disabled" } : {}),
  }));
}

function convertRecord(
  record: ContainerRecord,
  spec: Container,
  old: ContainerStatus | undefined,
  defaultMounts: ContainerStatus["volumeMounts"],
): ContainerStatus {
  const status: ContainerStatus = {
    name: record.name,
    restartCount: record.restartCount,
    image: record.image,
    imageID: record.imageID,
    containerID: record.id,
    ready: false,
    state: {},
  };
  // The kubelet carries volumeMounts over from the previous status (the CRI does not know
  // volume names); the spec gives the same list when there is no previous status yet.
  const mounts = old?.volumeMounts ?? defaultMounts;
  if (mounts) status.volumeMounts = mounts;
  if (record.state === "running") {
    status.state = { running: { startedAt: time(record.startedAt) } };
    // ChangeContainerStatusOnKubeletRestart is off: a running container keeps its started flag
    // until the prober says otherwise.
    if (old?.started !== undefined) status.started = old.started;
  } else {
    status.state = {
      terminated: {
        exitCode: record.exitCode ?? 0,
        ...(record.reason ? { reason: record.reason } : {}),
        ...(record.message ? { message: record.message } : {}),
        startedAt: time(record.startedAt),
        finishedAt: time(record.finishedAt),
        containerID: record.id,
      },
    };
  }
  // InPlacePodVerticalScaling: without resource figures from the runtime, the kubelet reports
  // the allocated (spec) resources.
  status.resources = structuredClone(spec.resources ?? {});
  if (spec.resources?.requests) status.allocatedResources = structuredClone(spec.resources.requests);
  // SupplementalGroupsPolicy: the runtime reports the process identity; the agent runs every
  // process as root.
  status.user = { linux: { uid: 0, gid: 0, supplementalGroups: [0] } };
  return status;
}

/** convertToAPIContainerStatuses for one list (init or regular containers). */
function convertContainerStatuses(
  input: StatusInput,
  previous: readonly ContainerStatus[] | undefined,
  containers: readonly Container[],
  isInit: boolean,
): ContainerStatus[] {
  const { pod, runtime } = input;
  const hasInitContainers = (pod.spec?.initContainers?.length ?? 0) > 0;
  const oldStatuses = new Map((previous ?? []).map((s) => [s.name, s]));
  const defaultReason = hasInitContainers ? "PodInitializing" : "ContainerCreating";
  const statuses = new Map<string, ContainerStatus>();

  for (const c of containers) {
    let status: ContainerStatus = {
      name: c.name,
      image: c.image ?? "",
      imageID: "",
      ready: false,
      restartCount: 0,
      state: { waiting: { reason: defaultReason } },
    };
    const mounts = defaultVolumeMounts(c);
    if (mounts) status.volumeMounts = mounts;
    const old = oldStatuses.get(c.name);
    if (old) {
      if (old.state?.terminated) {
        status = structuredClone(old);
      } else {
        status.restartCount = old.restartCount;
        if (old.lastState) status.lastState = structuredClone(old.lastState);
      }
    }
    statuses.set(c.name, status);
  }

  // A container the runtime no longer knows, but that the previous status showed running,
  // did terminate: say so, instead of falling back to a waiting state that would push the
  // pod back to Pending.
  for (const c of containers) {
    if (runtime.records.some((r) => r.name === c.name)) continue;
    const old = oldStatuses.get(c.name);
    if (!old || old.state?.terminated || !old.state?.running) continue;
    const status = statuses.get(c.name)!;
    if (status.state?.waiting?.reason !== defaultReason) continue;
    if (status.lastState?.terminated) continue;
    status.lastState = {
      terminated: {
        reason: "ContainerStatusUnknown",
        message:
          "The container could not be located when the pod was deleted.  The container used to be Running",
        exitCode: 137,
      },
    };
    if (!pod.metadata?.deletionTimestamp) status.restartCount += 1;
  }

  // The newest run fills the state, the one before it the lastState.
  const byNewest = [...runtime.records].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  const seen = new Map<string, number>();
  for (const record of byNewest) {
    const spec = containers.find((c) => c.name === record.name);
    if (!spec) continue;
    const count = seen.get(record.name) ?? 0;
    if (count >= 2) continue;
    const status = convertRecord(record, spec, oldStatuses.get(record.name), defaultVolumeMounts(spec));
    if (count === 0) statuses.set(record.name, status);
    else statuses.get(record.name)!.lastState = status.state;
    seen.set(record.name, count + 1);
  }

  // A container that should be (re)started but is not gets the reason it is waiting.
  for (const c of containers) {
    if (isInit) {
      const latest = byNewest.find((r) => r.name === c.name);
      if (latest?.state === "exited" && latest.exitCode === 0) continue;
    }
    if (!shouldContainerBeRestarted(c, pod, runtime.records)) continue;
    const reason = input.waiting.get(c.name);
    if (!reason) continue;
    const status = statuses.get(c.name)!;
    if (status.state?.terminated) status.lastState = status.state;
    status.state = { waiting: { reason: reason.reason, message: reason.message } };
  }

  const list = containers.map((c) => statuses.get(c.name)!);
  // Init containers keep the spec order; the others are sorted by name.
  return isInit ? list : list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** getPhase, with ContainerRestartRules on. */
export function getPhase(
  pod: Pod,
  statuses: readonly ContainerStatus[],
  podIsTerminal: boolean,
  podHasInitialized: boolean,
): string {
  const find = (name: string) => statuses.find((s) => s.name === name);
  let pendingRestartableInit = 0;
  let pendingRegularInit = 0;
  let failedInitNotRestartable = 0;

  for (const c of pod.spec?.initContainers ?? []) {
    if (isRestartableInitContainer(c)) continue;
    const s = find(c.name);
    if (!s) {
      pendingRegularInit++;
    } else if (s.state?.running) {
      pendingRegularInit++;
    } else if (s.state?.terminated) {
      const code = s.state.terminated.exitCode;
      if (code !== 0 && !containerShouldRestart(c, pod, code)) failedInitNotRestartable++;
    } else if (s.state?.waiting) {
      const last = s.lastState?.terminated;
      if (last) {
        if (last.exitCode !== 0 && !containerShouldRestart(c, pod, last.exitCode)) failedInitNotRestartable++;
      } else {
        pendingRegularInit++;
      }
    } else {
      pendingRegularInit++;
    }
  }

  let unknown = 0;
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let stoppedNotRestartable = 0;
  let succeeded = 0;

  for (const c of pod.spec?.initContainers ?? []) {
    if (!isRestartableInitContainer(c)) continue;
    const s = find(c.name);
    if (!s) {
      unknown++;
    } else if (s.state?.running) {
      if (!s.started) pendingRestartableInit++;
      running++;
    } else if (s.state?.terminated) {
      // A stopped sidecar does not count towards the phase.
    } else if (s.state?.waiting) {
      if (!s.lastState?.terminated) {
        pendingRestartableInit++;
        waiting++;
      }
    } else {
      pendingRestartableInit++;
      unknown++;
    }
  }

  for (const c of pod.spec?.containers ?? []) {
    const s = find(c.name);
    if (!s) {
      unknown++;
    } else if (s.state?.running) {
      running++;
    } else if (s.state?.terminated) {
      stopped++;
      const code = s.state.terminated.exitCode;
      if (!containerShouldRestart(c, pod, code)) stoppedNotRestartable++;
      if (code === 0) succeeded++;
    } else if (s.state?.waiting) {
      const last = s.lastState?.terminated;
      if (last) {
        stopped++;
        if (!containerShouldRestart(c, pod, last.exitCode)) stoppedNotRestartable++;
      } else {
        waiting++;
      }
    } else {
      unknown++;
    }
  }

  if (failedInitNotRestartable > 0) return "Failed";
  if (pendingRegularInit > 0 || (pendingRestartableInit > 0 && !podHasInitialized) || waiting > 0) {
    return "Pending";
  }
  if (running > 0 && unknown === 0) return "Running";
  if (running === 0 && stopped > 0 && unknown === 0) {
    if (podIsTerminal) return stopped === succeeded ? "Succeeded" : "Failed";
    if (stopped !== stoppedNotRestartable) return "Running";
    return stopped === succeeded ? "Succeeded" : "Failed";
  }
  return "Pending";
}

type Cond = Omit<PodCondition, "lastTransitionTime">;

function containersReadyCondition(pod: Pod, statuses: readonly ContainerStatus[], phase: string): Cond {
  const unknown: string[] = [];
  const unready: string[] = [];
  const check = (name: string) => {
    const s = statuses.find((x) => x.name === name);
    if (!s) unknown.push(name);
    else if (!s.ready) unready.push(name);
  };
  for (const c of pod.spec?.initContainers ?? []) if (isRestartableInitContainer(c)) check(c.name);
  for (const c of pod.spec?.containers ?? []) check(c.name);

  if ((phase === "Succeeded" && unknown.length === 0) || phase === "Failed") {
    return {
      type: "ContainersReady",
      status: "False",
      reason: phase === "Failed" ? "PodFailed" : "PodCompleted",
    };
  }
  const messages: string[] = [];
  if (unknown.length) messages.push(`containers with unknown status: ${goList(unknown)}`);
  if (unready.length) messages.push(`containers with unready status: ${goList(unready)}`);
  if (messages.length) {
    return {
      type: "ContainersReady",
      status: "False",
      reason: "ContainersNotReady",
      message: messages.join(", "),
    };
  }
  return { type: "ContainersReady", status: "True" };
}

function readyCondition(pod: Pod, conditions: readonly Cond[], containersReady: Cond): Cond {
  if (containersReady.status !== "True") {
    return { ...containersReady, type: "Ready" };
  }
  const messages: string[] = [];
  for (const gate of pod.spec?.readinessGates ?? []) {
    const c = conditions.find((x) => x.type === gate.conditionType);
    if (!c) {
      messages.push(`corresponding condition of pod readiness gate "${gate.conditionType}" does not exist.`);
    } else if (c.status !== "True") {
      messages.push(
        `the status of pod readiness gate "${gate.conditionType}" is not "True", but ${c.status}`,
      );
    }
  }
  if (messages.length) {
    return { type: "Ready", status: "False", reason: "ReadinessGatesNotReady", message: messages.join(", ") };
  }
  return { type: "Ready", status: "True" };
}

function initializedCondition(pod: Pod, statuses: readonly ContainerStatus[], phase: string): Cond {
  const unknown: string[] = [];
  const incomplete: string[] = [];
  for (const c of pod.spec?.initContainers ?? []) {
    const s = statuses.find((x) => x.name === c.name);
    if (!s) {
      unknown.push(c.name);
      continue;
    }
    const initialized = isRestartableInitContainer(c) ? s.started === true : s.ready;
    if (!initialized) incomplete.push(c.name);
  }
  if (phase === "Succeeded" && unknown.length === 0) {
    return { type: "Initialized", status: "True", reason: "PodCompleted" };
  }
  // A regular container that ran means the pod was initialized, even while a sidecar restarts.
  const regular = new Set((pod.spec?.containers ?? []).map((c) => c.name));
  if (statuses.some((s) => regular.has(s.name) && (s.state?.running || s.state?.terminated))) {
    return { type: "Initialized", status: "True" };
  }
  const messages: string[] = [];
  if (unknown.length) messages.push(`containers with unknown status: ${goList(unknown)}`);
  if (incomplete.length) messages.push(`containers with incomplete status: ${goList(incomplete)}`);
  if (messages.length) {
    return {
      type: "Initialized",
      status: "False",
      reason: "ContainersNotInitialized",
      message: messages.join(", "),
    };
  }
  return { type: "Initialized", status: "True" };
}

/** prober_manager.UpdatePodStatus: the started and ready flags of each container. */
function applyProbes(pod: Pod, statuses: ContainerStatus[], isInit: boolean, input: StatusInput): void {
  for (const s of statuses) {
    const spec = (isInit ? pod.spec?.initContainers : pod.spec?.containers)?.find((c) => c.name === s.name);
    const probe = s.containerID ? input.probe(s.containerID) : undefined;
    const running = !!s.state?.running;
    const started = running && (spec?.startupProbe ? probe?.started === true : true);
    s.started = started;
    if (isInit && spec && !isRestartableInitContainer(spec)) {
      if (s.state?.terminated?.exitCode === 0) s.ready = true;
      continue;
    }
    if (!started) continue;
    s.ready = running && (spec?.readinessProbe ? probe?.ready === true : true);
  }
}

function withTransitionTime(cond: Cond, old: PodStatus, now: Date): PodCondition {
  const previous = old.conditions?.find((c) => c.type === cond.type);
  const lastTransitionTime =
    previous && previous.status === cond.status && previous.lastTransitionTime
      ? previous.lastTransitionTime
      : rfc3339(now);
  return { ...cond, lastTransitionTime };
}

/**
 * The kubelet-owned part of the pod status: everything the agent writes. Conditions it does
 * not own are read (for readiness gates) but never part of the result.
 */
export function generatePodStatus(input: StatusInput): PodStatus {
  const { pod, oldStatus, runtime, now } = input;
  const generation = pod.metadata?.generation;

  const containerStatuses = convertContainerStatuses(
    input,
    oldStatus.containerStatuses,
    pod.spec?.containers ?? [],
    false,
  );
  const initContainerStatuses = convertContainerStatuses(
    input,
    oldStatus.initContainerStatuses,
    pod.spec?.initContainers ?? [],
    true,
  );

  const regular = new Set((pod.spec?.containers ?? []).map((c) => c.name));
  const podHasInitialized = runtime.records.some((r) => regular.has(r.name));
  let phase = getPhase(
    pod,
    [...containerStatuses, ...initContainerStatuses],
    input.podIsTerminal,
    podHasInitialized,
  );
  let reason = oldStatus.reason;
  let message = oldStatus.message;

  // Terminal phases are sticky, in the agent's own record and in the apiserver's.
  if (phase !== "Failed" && phase !== "Succeeded") {
    if (oldStatus.phase === "Failed" || oldStatus.phase === "Succeeded") phase = oldStatus.phase;
    else if (pod.status?.phase === "Failed" || pod.status?.phase === "Succeeded") phase = pod.status.phase;
  }
  if (phase !== oldStatus.phase) {
    reason = undefined;
    message = undefined;
  } else {
    reason ||= pod.status?.reason;
    message ||= pod.status?.message;
  }
  // mergePodStatus: a pod that could still have running containers never turns terminal.
  const couldHaveRunningContainers = runtime.records.some((r) => r.state === "running");
  const wasTerminal = oldStatus.phase === "Failed" || oldStatus.phase === "Succeeded";
  if (!wasTerminal && (phase === "Failed" || phase === "Succeeded") && couldHaveRunningContainers) {
    phase = oldStatus.phase ?? "Pending";
    reason = oldStatus.reason;
    message = oldStatus.message;
  }

  applyProbes(pod, containerStatuses, false, input);
  applyProbes(pod, initContainerStatuses, true, input);

  const all = [...initContainerStatuses, ...containerStatuses];
  const others = (pod.status?.conditions ?? []).filter((c) => !isKubeletCondition(c.type));
  const containersReady = containersReadyCondition(pod, all, phase);
  const initialized = initializedCondition(pod, all, phase);
  let ready = readyCondition(pod, others, containersReady);
  let readyContainers = containersReady;
  // mergePodStatus: a terminal pod never reports Ready or ContainersReady True.
  if (
    (phase === "Failed" || phase === "Succeeded") &&
    (ready.status === "True" || containersReady.status === "True")
  ) {
    const terminalReason = phase === "Failed" ? "PodFailed" : "PodCompleted";
    ready = { type: "Ready", status: "False", reason: terminalReason };
    readyContainers = { type: "ContainersReady", status: "False", reason: terminalReason };
  }
  const owned: Cond[] = [
    { type: "PodReadyToStartContainers", status: runtime.sandboxReady ? "True" : "False" },
    initialized,
    ready,
    readyContainers,
    { type: "PodScheduled", status: "True" },
  ];

  const status: PodStatus = {
    phase,
    conditions: owned.map((c) =>
      withTransitionTime(
        generation !== undefined ? { ...c, observedGeneration: generation } : c,
        oldStatus,
        now,
      ),
    ),
    hostIP: input.hostIP,
    hostIPs: [{ ip: input.hostIP }],
    startTime: oldStatus.startTime ?? pod.status?.startTime ?? rfc3339(now),
    containerStatuses,
    ...(initContainerStatuses.length ? { initContainerStatuses } : {}),
  };
  if (reason) status.reason = reason;
  if (message) status.message = message;
  if (runtime.ips.length) {
    status.podIP = runtime.ips[0];
    status.podIPs = runtime.ips.map((ip) => ({ ip }));
  }
  if (pod.status?.qosClass) status.qosClass = pod.status.qosClass;
  if (generation !== undefined) status.observedGeneration = generation;
  return status;
}
