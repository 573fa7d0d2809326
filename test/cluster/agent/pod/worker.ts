// The life of one pod on the node, as the kubelet's pod worker drives it (SyncPod,
// SyncTerminatingPod, SyncTerminatedPod): create the sandbox and the volumes, start init
// containers, sidecars and containers in the kubelet's order, restart them with back-off,
// probe them, report the status after every change, and tear everything down on deletion
// (preStop, SIGTERM, the grace period, SIGKILL) or completion, before the final delete.
// One sync runs at a time per pod; anything that happens meanwhile asks for another.
import { randomBytes } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { HostTools } from "../config.ts";
import type { EventRecorder } from "../kube/events.ts";
import { apiErrorCode, apiErrorMessage } from "../kube/errors.ts";
import type { Container, Pod, PodStatus, Service } from "../kube/wire.ts";
import { ImagePullError, resolveImage, type ImageMap } from "../images.ts";
import type { Ipam } from "../network/ipam.ts";
import type { HostsTarget } from "../network/service-proxy.ts";
import type { ExecTarget } from "../node/streaming.ts";
import { createSandbox, deleteSandbox, type BridgeConfig, type Sandbox } from "../network/sandbox.ts";
import { computePodActions } from "./actions.ts";
import { Backoff, goDuration } from "./backoff.ts";
import { ContainerConfigError, expand, referencedObjects, resolveEnv } from "./env.ts";
import { isRestartableInitContainer, latestRecord } from "./policy.ts";
import { INITIAL_RESULT, ProbeWorker, type ProbeKind } from "./prober.ts";
import { runHandler, type ProbeResult, type ProbeTarget } from "./probes.ts";
import {
  checkExecutable,
  ContainerProcess,
  DEFAULT_PATH,
  logTail,
  StartError,
  type ContainerExit,
} from "./runner.ts";
import { generatePodStatus } from "./status.ts";
import { statusUnchanged, type StatusWriter } from "./status-writer.ts";
import type { ContainerRecord, WaitingReason } from "./types.ts";
import { PodVolumes, VolumeError, type VolumeSources } from "./volumes.ts";

export interface WorkerEnv {
  log: Logger;
  nodeName: string;
  hostIP: string;
  bridge: BridgeConfig;
  /** Per-pod directories live under <podsDir>/<uid>. */
  podsDir: string;
  logDir: string;
  tools: HostTools;
  ipam: Ipam;
  images: ImageMap;
  volumeSources: VolumeSources;
  services: () => readonly Service[];
  writeHosts: (target: HostsTarget) => Promise<void>;
  forgetHosts: (netns: string) => void;
  events: EventRecorder;
  statusWriter: StatusWriter;
  /** The worker is finished: its pod is gone from the node. */
  onDone: (uid: string) => void;
}

export interface LogRange {
  file: string;
  start: number;
  /** Unset: up to the end of the file. */
  end?: number;
  /** The run is still going: its output may grow. */
  running: boolean;
}

interface RunningContainer {
  record: ContainerRecord;
  proc: ContainerProcess;
  spec: Container;
  env: Record<string, string>;
  workingDir: string;
  probes: ProbeWorker[];
  results: Partial<Record<ProbeKind, ProbeResult>>;
  killing: boolean;
}

// The kubelet's minimum time between SIGTERM and SIGKILL.
const MIN_GRACE_SECONDS = 2;
const VOLUME_REFRESH_MS = 60_000;
const RETRY_MS = 2_000;

const isTerminal = (phase: string | undefined) => phase === "Succeeded" || phase === "Failed";
const podDesc = (pod: Pod) => `${pod.metadata?.name}_${pod.metadata?.namespace}(${pod.metadata?.uid})`;

export class PodWorker {
  private pod: Pod;
  private readonly firstSeenStatus: PodStatus | undefined;
  private readonly uid: string;
  private readonly env: WorkerEnv;
  private readonly log: Logger;
  private removed = false;
  private shuttingDown = false;
  private state: "active" | "terminating" | "done" = "active";
  private sandbox: Sandbox | undefined;
  /** The pod's addresses; kept after the sandbox is gone, for the final status. */
  private ips: string[] = [];
  private volumes: PodVolumes | undefined;
  private volumesReady = false;
  private records: ContainerRecord[] = [];
  private readonly running = new Map<string, RunningContainer>();
  /** Where each run's output begins in its container's log file, by container id. */
  private readonly logOffsets = new Map<string, number>();
  private readonly waiting = new Map<string, WaitingReason>();
  private readonly crashBackoff = new Backoff({ initialMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000 });
  private readonly imageBackoff = new Backoff({ initialMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000 });
  private lastStatus: PodStatus | undefined;
  private lastWritten: PodStatus | undefined;
  private syncing = false;
  private dirty = false;
  private wakeTimer: NodeJS.Timeout | undefined;
  private wakeAt = 0;
  private refreshTimer: NodeJS.Timeout | undefined;
  private readyLogged = false;

  constructor(pod: Pod, env: WorkerEnv) {
    this.pod = pod;
    this.firstSeenStatus = pod.status;
    this.uid = pod.metadata?.uid ?? "";
    this.env = env;
    this.log = env.log.child({ pod: `${pod.metadata?.namespace}/${pod.metadata?.name}`, uid: this.uid });
  }

  /** A new version of the pod from the apiserver (spec, deletion, others' conditions). */
  update(pod: Pod): void {
    this.pod = pod;
    this.requestSync();
  }

  /** The pod is gone from the apiserver (force-deleted, or the final delete went through). */
  remove(): void {
    this.removed = true;
    this.requestSync();
  }

  get done(): boolean {
    return this.state === "done";
  }

  get removedFromApi(): boolean {
    return this.removed;
  }

  /** The sandbox, for the service proxy to keep the hosts file current. */
  hostsTarget(): HostsTarget | undefined {
    return this.sandbox ? { netns: this.sandbox.netns, pod: this.pod, ips: this.ips } : undefined;
  }

  private get podDir(): string {
    return join(this.env.podsDir, this.uid);
  }

  requestSync(): void {
    if (this.state === "done") return;
    if (this.syncing) {
      this.dirty = true;
      return;
    }
    this.syncing = true;
    void (async () => {
      do {
        this.dirty = false;
        try {
          await this.syncOnce();
        } catch (err) {
          const detail =
            apiErrorCode(err) !== undefined
              ? apiErrorMessage(err)
              : err instanceof Error
                ? err.stack
                : String(err);
          this.log.error({ err: detail }, "pod sync failed; retrying");
          this.wakeIn(RETRY_MS);
        }
      } while (this.dirty && this.state !== "done");
      this.syncing = false;
    })();
  }

  /** Asks for a sync in `ms`; an earlier wake-up that is already scheduled stays. */
  private wakeIn(ms: number): void {
    const at = Date.now() + Math.max(ms, 0);
    if (this.wakeTimer && this.wakeAt <= at) return;
    this.cancelWake();
    this.wakeAt = at;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      this.requestSync();
    }, at - Date.now());
  }

  private cancelWake(): void {
    clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
  }

  private fieldPath(name: string): string {
    const init = this.pod.spec?.initContainers?.some((c) => c.name === name);
    return `spec.${init ? "initContainers" : "containers"}{${name}}`;
  }

  private event(type: "Normal" | "Warning", reason: string, message: string, container?: string): void {
    this.env.events.record(
      { pod: this.pod, ...(container ? { fieldPath: this.fieldPath(container) } : {}) },
      type,
      reason,
      message,
    );
  }

  // ---- the sync loop ------------------------------------------------------------------

  private async syncOnce(): Promise<void> {
    if (this.state === "done" || this.shuttingDown) return;
    if (isTerminal(this.pod.status?.phase) && !this.sandbox && this.records.length === 0) {
      // A pod that finished before this agent started: nothing runs; a deleted one still
      // needs its final delete.
      if (this.pod.metadata?.deletionTimestamp && !this.removed) await this.deleteFinally();
      return this.finish();
    }
    if (this.removed || this.pod.metadata?.deletionTimestamp || this.state === "terminating") {
      return this.terminate();
    }

    if (!this.sandbox) {
      // The kubelet reports the pod (Pending, ContainerCreating) before it builds the sandbox.
      await this.writeStatus(false);
      try {
        const ip = this.env.ipam.allocate(this.uid);
        this.sandbox = await createSandbox(this.env.bridge, this.uid, ip);
        this.ips = [ip];
        await this.env.writeHosts({ netns: this.sandbox.netns, pod: this.pod, ips: this.ips });
        this.log.info({ ip, netns: this.sandbox.netns }, "sandbox ready");
      } catch (err) {
        this.event("Warning", "FailedCreatePodSandBox", `Failed to create pod sandbox: ${String(err)}`);
        this.log.error({ err: String(err) }, "sandbox creation failed");
        await this.writeStatus(false);
        return this.wakeIn(RETRY_MS);
      }
    }

    if (!this.volumesReady) {
      try {
        this.volumes ??= new PodVolumes(this.pod, this.podDir, this.env.volumeSources);
        await this.volumes.setUp();
        this.volumesReady = true;
        this.scheduleVolumeRefresh();
      } catch (err) {
        const message = err instanceof VolumeError ? err.message : `MountVolume.SetUp failed: ${String(err)}`;
        this.event("Warning", "FailedMount", message);
        this.log.warn({ err: message }, "volume setup failed; retrying");
        await this.writeStatus(false);
        return this.wakeIn(RETRY_MS);
      }
    }

    const actions = computePodActions(this.pod, this.records, {
      startup: (id) => this.running.get(id)?.results.startup,
      liveness: (id) => this.running.get(id)?.results.liveness,
    });
    for (const k of actions.containersToKill) {
      const rc = this.running.get(k.id);
      if (!rc || rc.killing) continue;
      const probeGrace = k.message.includes("liveness")
        ? rc.spec.livenessProbe?.terminationGracePeriodSeconds
        : rc.spec.startupProbe?.terminationGracePeriodSeconds;
      this.event("Normal", "Killing", k.message, k.name);
      void this.killContainer(rc, probeGrace ?? this.pod.spec?.terminationGracePeriodSeconds ?? 30);
    }
    if (actions.killPod) {
      // Every container is done for good: the pod completes (its sidecars stop).
      this.state = "terminating";
      await this.writeStatus(false);
      return this.terminate();
    }
    const inits = this.pod.spec?.initContainers ?? [];
    for (const idx of actions.initContainersToStart) {
      const c = inits[idx]!;
      if (latestRecord(this.records, c.name)?.state === "running") continue;
      const ok = await this.startContainer(c);
      // A regular init container that did not start stops the sequence; a sidecar does not.
      if (!ok && !isRestartableInitContainer(c)) break;
    }
    for (const idx of actions.containersToStart) {
      const c = this.pod.spec!.containers[idx]!;
      // Still running: its kill is in progress, and its exit will bring another sync.
      if (latestRecord(this.records, c.name)?.state === "running") continue;
      await this.startContainer(c);
    }
    await this.writeStatus(false);
  }

  // ---- containers ---------------------------------------------------------------------

  /** Starts one container; false when it could not start (the reason is in the status). */
  private async startContainer(c: Container): Promise<boolean> {
    const pod = this.pod;
    const latest = latestRecord(this.records, c.name);
    if (latest?.state === "exited") {
      const exitedAt = latest.finishedAt?.getTime() ?? Date.now();
      if (this.crashBackoff.inBackoffSince(c.name, exitedAt)) {
        const delay = this.crashBackoff.get(c.name);
        this.waiting.set(c.name, {
          reason: "CrashLoopBackOff",
          message: `back-off ${goDuration(delay)} restarting failed container=${c.name} pod=${podDesc(pod)}`,
        });
        this.event(
          "Warning",
          "BackOff",
          `Back-off restarting failed container ${c.name} in pod ${podDesc(pod)}`,
          c.name,
        );
        this.wakeIn(exitedAt + delay - Date.now());
        return false;
      }
      this.crashBackoff.next(c.name, exitedAt);
    }

    const imageKey = `${this.uid}_${c.image}`;
    // The "pull": an image without a mapping fails here, before the container's config.
    try {
      resolveImage(this.env.images, c.image ?? "", {});
    } catch (err) {
      if (!(err instanceof ImagePullError)) throw err;
      if (this.imageBackoff.inBackoffSinceUpdate(imageKey)) {
        this.waiting.set(c.name, {
          reason: "ImagePullBackOff",
          message: `Back-off pulling image "${c.image}": ErrImagePull: ${err.message}`,
        });
        this.event("Normal", "BackOff", `Back-off pulling image "${c.image}"`, c.name);
      } else {
        this.imageBackoff.next(imageKey, Date.now());
        this.waiting.set(c.name, { reason: "ErrImagePull", message: err.message });
        this.event("Warning", "Failed", `Failed to pull image "${c.image}": ${err.message}`, c.name);
        this.event("Warning", "Failed", "Error: ErrImagePull", c.name);
      }
      this.wakeIn(this.imageBackoff.get(imageKey));
      return false;
    }
    this.event("Normal", "Pulled", `Container image "${c.image}" already present on machine`, c.name);

    // $(VAR) references in command and args expand with the container's environment.
    let env: Map<string, string>;
    try {
      env = await this.resolveContainerEnv(c);
    } catch (err) {
      if (!(err instanceof ContainerConfigError)) throw err;
      this.waiting.set(c.name, { reason: "CreateContainerConfigError", message: err.message });
      this.event("Warning", "Failed", `Error: ${err.message}`, c.name);
      this.wakeIn(RETRY_MS);
      return false;
    }
    const lookup = (name: string) => env.get(name);
    const command = c.command?.map((s) => expand(s, lookup));
    const args = c.args?.map((s) => expand(s, lookup));

    const image = resolveImage(this.env.images, c.image ?? "", {
      ...(command ? { command } : {}),
      ...(args ? { args } : {}),
    });

    const mounts = this.volumes!.mountsFor(c);
    for (const m of mounts) {
      // The kubelet creates a missing subPath directory inside the volume.
      if (c.volumeMounts?.some((vm) => vm.subPath && vm.mountPath === m.target))
        await mkdir(m.source, { recursive: true });
    }
    const hostname = this.pod.spec?.hostname || this.pod.metadata?.name || "";
    const fullEnv: Record<string, string> = {
      PATH: DEFAULT_PATH,
      HOSTNAME: hostname,
      ...image.env,
      ...Object.fromEntries(env),
    };
    const workingDir = c.workingDir || image.workingDir;
    const record: ContainerRecord = {
      id: `cha://${randomBytes(32).toString("hex")}`,
      name: c.name,
      image: image.image,
      imageID: image.imageID,
      restartCount: this.nextRestartCount(c.name, latest),
      createdAt: new Date(),
      state: "running",
    };
    this.event("Normal", "Created", `Created container: ${c.name}`, c.name);

    if (this.shuttingDown) return false;
    let proc: ContainerProcess;
    try {
      checkExecutable(image.argv, fullEnv, { mounts, workingDir });
      await mkdir(this.env.logDir, { recursive: true });
      proc = new ContainerProcess(
        {
          netns: this.sandbox!.netns,
          hostname,
          argv: image.argv,
          env: fullEnv,
          workingDir,
          mounts,
          logFile: this.logFile(c.name),
        },
        this.env.tools,
      );
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.addRecord({
        ...record,
        state: "exited",
        exitCode: 128,
        reason: "StartError",
        message,
        finishedAt: new Date(),
      });
      this.waiting.set(c.name, {
        reason: "RunContainerError",
        message: `failed to start container "${record.id}": ${message}`,
      });
      this.event("Warning", "Failed", `Error: ${message}`, c.name);
      this.wakeIn(0);
      if (!(err instanceof StartError))
        this.log.error({ err: message, container: c.name }, "container start failed");
      return false;
    }
    record.startedAt = proc.startedAt;
    this.addRecord(record);
    this.logOffsets.set(record.id, proc.logOffset);
    const rc: RunningContainer = {
      record,
      proc,
      spec: c,
      env: fullEnv,
      workingDir,
      probes: [],
      results: {},
      killing: false,
    };
    this.running.set(record.id, rc);
    this.waiting.delete(c.name);
    this.event("Normal", "Started", `Started container ${c.name}`, c.name);
    this.log.info(
      { container: c.name, pid: proc.pid, restartCount: record.restartCount, argv: image.argv },
      "container started",
    );
    void proc.exited.then((exit) => this.onExit(rc, exit));

    if (c.lifecycle?.postStart) {
      const grace = this.pod.spec?.terminationGracePeriodSeconds ?? 30;
      const outcome = await runHandler(c.lifecycle.postStart, this.probeTarget(rc), grace * 1000);
      if (outcome.result === "Failure" && rc.proc.running) {
        this.event("Warning", "FailedPostStartHook", `PostStartHook failed: ${outcome.output}`, c.name);
        void this.killContainer(rc, grace);
        return false;
      }
    }
    this.startProbes(rc);
    return true;
  }

  /**
   * The restart count of the next run: one more than the last run. After a restart of the
   * agent, the last run is the one the apiserver showed when this worker first saw the pod
   * (the kubelet counts the runs in its log directory for the same purpose).
   */
  private nextRestartCount(name: string, latest: ContainerRecord | undefined): number {
    if (latest) return latest.restartCount + 1;
    const all = [
      ...(this.firstSeenStatus?.containerStatuses ?? []),
      ...(this.firstSeenStatus?.initContainerStatuses ?? []),
    ];
    const api = all.find((s) => s.name === name);
    const ran = api && (api.state?.running || api.state?.terminated || api.lastState?.terminated);
    return ran ? api.restartCount + 1 : 0;
  }

  private addRecord(record: ContainerRecord): void {
    this.records.push(record);
    // The runtime keeps the running container and the last dead one of each name.
    const same = this.records
      .filter((r) => r.name === record.name)
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
    for (const old of same.slice(2)) {
      this.records.splice(this.records.indexOf(old), 1);
      this.logOffsets.delete(old.id);
    }
  }

  get namespacedName(): string {
    return `${this.pod.metadata?.namespace}/${this.pod.metadata?.name}`;
  }

  /**
   * Where a container run's output is in the log file (kubectl logs): the current run, or
   * with `previous` the one before. A string is the reason there is none, in the kubelet's words.
   */
  logRange(container: string, previous: boolean): LogRange | string {
    const podName = this.pod.metadata?.name;
    const runs = this.records
      .filter((r) => r.name === container)
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
    const run = runs[previous ? 1 : 0];
    const start = run ? this.logOffsets.get(run.id) : undefined;
    if (!run || start === undefined) {
      if (previous) return `previous terminated container "${container}" in pod "${podName}" not found`;
      const waiting = this.waiting.get(container);
      return `container "${container}" in pod "${podName}" is waiting to start: ${waiting?.reason ?? "ContainerCreating"}`;
    }
    const next = previous ? this.logOffsets.get(runs[0]!.id) : undefined;
    return {
      file: this.logFile(container),
      start,
      ...(next !== undefined ? { end: next } : {}),
      running: run.state === "running",
    };
  }

  /** The pod's address while its sandbox exists (port-forward). */
  podIP(): string | undefined {
    return this.sandbox ? this.ips[0] : undefined;
  }

  /** Where `kubectl exec` runs a command for a container; a string says why it cannot. */
  execTarget(container: string): ExecTarget | string {
    const rc = [...this.running.values()].find((r) => r.spec.name === container);
    if (!rc) return `container "${container}" in pod "${this.pod.metadata?.name}" is not running`;
    return { pid: rc.proc.pid, env: rc.env, workingDir: rc.workingDir, nsenter: this.env.tools.nsenter };
  }

  logFile(container: string): string {
    return join(
      this.env.logDir,
      `${this.pod.metadata?.namespace}_${this.pod.metadata?.name}_${container}.log`,
    );
  }

  private async resolveContainerEnv(c: Container): Promise<Map<string, string>> {
    const refs = referencedObjects(c);
    const ns = this.pod.metadata?.namespace ?? "";
    const configMaps = new Map(
      await Promise.all(
        [...refs.configMaps].map(async (n) => [n, await this.env.volumeSources.getConfigMap(ns, n)] as const),
      ),
    );
    const secrets = new Map(
      await Promise.all(
        [...refs.secrets].map(async (n) => [n, await this.env.volumeSources.getSecret(ns, n)] as const),
      ),
    );
    return resolveEnv(this.pod, c, {
      configMaps,
      secrets,
      services: this.env.services(),
      podIPs: this.ips,
      hostIP: this.env.hostIP,
      allocatable: this.env.volumeSources.allocatable,
    });
  }

  private onExit(rc: RunningContainer, exit: ContainerExit): void {
    rc.proc.killAll();
    for (const p of rc.probes) p.stop();
    this.running.delete(rc.record.id);
    const fallback = rc.spec.terminationMessagePolicy === "FallbackToLogsOnError" && exit.exitCode !== 0;
    const message = fallback ? logTail(this.logFile(rc.spec.name), rc.proc.logOffset) : "";
    Object.assign(rc.record, {
      state: "exited",
      exitCode: exit.exitCode,
      finishedAt: exit.finishedAt,
      reason: exit.exitCode === 0 ? "Completed" : "Error",
      ...(message ? { message } : {}),
    });
    this.log.info({ container: rc.spec.name, exitCode: exit.exitCode }, "container exited");
    this.requestSync();
  }

  /**
   * Stops one container as the kubelet does: the preStop hook within the grace period, then
   * SIGTERM, then SIGKILL when the rest of the grace period (at least 2 s) has passed.
   * `turn` resolves when the container may receive its SIGTERM (termination ordering).
   */
  private async killContainer(
    rc: RunningContainer,
    graceSeconds: number,
    turn?: Promise<void>,
  ): Promise<void> {
    if (rc.killing) return rc.proc.exited.then(() => undefined);
    rc.killing = true;
    const deadline = Date.now() + graceSeconds * 1000;
    const preStop = rc.spec.lifecycle?.preStop;
    if (preStop && graceSeconds > 0 && rc.proc.running) {
      const outcome = await Promise.race([
        runHandler(preStop, this.probeTarget(rc), graceSeconds * 1000),
        rc.proc.exited.then(() => ({ result: "Success" as const, output: "" })),
      ]);
      if (outcome.result === "Failure") {
        this.event("Warning", "FailedPreStopHook", `PreStopHook failed: ${outcome.output}`, rc.spec.name);
      }
    }
    if (turn) await Promise.race([turn, sleep(deadline - Date.now()), rc.proc.exited]);
    const killAt = Math.max(deadline, Date.now() + MIN_GRACE_SECONDS * 1000);
    rc.proc.signal("SIGTERM");
    const exited = await Promise.race([
      rc.proc.exited.then(() => true),
      sleep(killAt - Date.now()).then(() => false),
    ]);
    if (!exited) rc.proc.killAll();
    await rc.proc.exited;
  }

  // ---- probes -------------------------------------------------------------------------

  private probeTarget(rc: RunningContainer): ProbeTarget {
    return {
      podIP: this.ips[0] ?? "",
      container: rc.spec,
      pid: rc.proc.pid,
      env: rc.env,
      nsenter: this.env.tools.nsenter,
    };
  }

  private startProbes(rc: RunningContainer): void {
    const specs: [ProbeKind, Container["readinessProbe"]][] = [
      ["startup", rc.spec.startupProbe],
      ["readiness", rc.spec.readinessProbe],
      ["liveness", rc.spec.livenessProbe],
    ];
    for (const [kind, spec] of specs) {
      if (!spec) continue;
      const initial = INITIAL_RESULT[kind];
      if (initial) rc.results[kind] = initial;
      const worker = new ProbeWorker({
        kind,
        spec,
        startedAt: rc.record.startedAt!,
        probe: (timeoutMs) => runHandler(spec, this.probeTarget(rc), timeoutMs),
        started: () => !rc.spec.startupProbe || rc.results.startup === "Success",
        onResult: (k, result) => {
          if (rc.results[k] === result) return;
          rc.results[k] = result;
          this.log.info({ container: rc.spec.name, probe: k, result }, "probe result changed");
          this.requestSync();
        },
        onFailure: (k, output) => {
          const kindName = k[0]!.toUpperCase() + k.slice(1);
          this.event("Warning", "Unhealthy", `${kindName} probe failed: ${output}`, rc.spec.name);
        },
      });
      rc.probes.push(worker);
      worker.start();
    }
  }

  // ---- status -------------------------------------------------------------------------

  private computeStatus(podIsTerminal: boolean): PodStatus {
    return generatePodStatus({
      pod: this.pod,
      oldStatus: this.lastStatus ?? this.pod.status ?? {},
      runtime: { sandboxReady: !!this.sandbox, ips: this.ips, records: this.records },
      probe: (id) => {
        const rc = this.running.get(id);
        if (!rc) return undefined;
        return {
          started: !rc.spec.startupProbe || rc.results.startup === "Success",
          ready: rc.spec.readinessProbe ? rc.results.readiness === "Success" : undefined,
        };
      },
      waiting: this.waiting,
      podIsTerminal,
      hostIP: this.env.hostIP,
      now: new Date(),
    });
  }

  private async writeStatus(podIsTerminal: boolean): Promise<void> {
    const next = this.computeStatus(podIsTerminal);
    this.lastStatus = next;
    if (this.removed) return;
    if (
      (this.lastWritten && statusUnchanged(this.lastWritten, next)) ||
      statusUnchanged(this.pod.status, next)
    )
      return;
    try {
      await this.env.statusWriter.write(this.pod, next);
      this.lastWritten = next;
    } catch (err) {
      const code = apiErrorCode(err);
      // 404: the pod is gone; 409: the UID precondition failed (the name has a new pod).
      if (code === 404 || code === 409) this.removed = true;
      else throw err;
    }
    this.logReadiness(next);
  }

  private logReadiness(status: PodStatus): void {
    const ready = status.conditions?.find((c) => c.type === "Ready")?.status === "True";
    if (ready && !this.readyLogged) {
      this.readyLogged = true;
      const created = Date.parse(this.pod.metadata?.creationTimestamp ?? "");
      this.log.info({ secondsSinceCreation: (Date.now() - created) / 1000 }, "pod is ready");
    }
  }

  // ---- volumes ------------------------------------------------------------------------

  private scheduleVolumeRefresh(): void {
    clearTimeout(this.refreshTimer);
    const tokenDue = this.env.volumeSources.tokens.nextRefresh(this.uid);
    const delay = Math.min(VOLUME_REFRESH_MS, tokenDue === undefined ? Infinity : tokenDue - Date.now());
    this.refreshTimer = setTimeout(
      () => {
        if (this.state !== "active" || !this.volumes) return;
        this.volumes
          .refresh()
          .catch((err: unknown) => this.log.warn({ err: String(err) }, "volume refresh failed"))
          .finally(() => this.scheduleVolumeRefresh());
      },
      Math.max(delay, 1000),
    );
  }

  // ---- termination --------------------------------------------------------------------

  /** The grace period: the deletion's, else the pod's terminationGracePeriodSeconds. */
  private gracePeriod(): number {
    const deletion = this.pod.metadata?.deletionGracePeriodSeconds;
    if (deletion !== undefined && this.pod.metadata?.deletionTimestamp) return deletion;
    return this.pod.spec?.terminationGracePeriodSeconds ?? 30;
  }

  /**
   * Stops every container with the kubelet's ordering: regular containers and init
   * containers at once; sidecars only after all regular containers stopped, in reverse
   * order, each within what is left of the grace period.
   */
  private async killAll(graceSeconds: number): Promise<void> {
    const running = [...this.running.values()];
    for (const rc of running) for (const p of rc.probes) p.stop();
    const exitOf = (name: string) =>
      running.find((rc) => rc.spec.name === name)?.proc.exited.then(() => undefined);
    const mainExits = (this.pod.spec?.containers ?? []).map((c) => exitOf(c.name) ?? Promise.resolve());
    const inits = this.pod.spec?.initContainers ?? [];
    const turnOf = new Map<string, Promise<void>>();
    let previousSidecar: string | undefined;
    for (const c of [...inits].reverse()) {
      if (!isRestartableInitContainer(c)) continue;
      const prereqs = [...mainExits];
      if (previousSidecar) prereqs.push(exitOf(previousSidecar) ?? Promise.resolve());
      turnOf.set(
        c.name,
        Promise.all(prereqs).then(() => undefined),
      );
      previousSidecar = c.name;
    }
    await Promise.all(
      running.map((rc) => {
        if (!rc.killing) this.event("Normal", "Killing", `Stopping container ${rc.spec.name}`, rc.spec.name);
        return this.killContainer(rc, graceSeconds, turnOf.get(rc.spec.name));
      }),
    );
  }

  private async terminate(): Promise<void> {
    const deleting = this.removed || !!this.pod.metadata?.deletionTimestamp;
    this.state = "terminating";
    this.cancelWake();
    clearTimeout(this.refreshTimer);
    const grace = this.removed ? Math.min(this.gracePeriod(), MIN_GRACE_SECONDS) : this.gracePeriod();
    if (this.running.size) {
      this.log.info({ gracePeriodSeconds: grace, deleting }, "stopping the pod's containers");
      await this.writeStatus(false);
      await this.killAll(grace);
    }
    await this.tearDown();
    await this.writeStatus(true);
    if (deleting && !this.removed) await this.deleteFinally();
    this.finish();
  }

  private async deleteFinally(): Promise<void> {
    try {
      await this.env.statusWriter.deleteFinally(this.pod);
      this.log.info("pod deleted");
    } catch (err) {
      const code = apiErrorCode(err);
      if (code !== 404 && code !== 409) throw err;
    }
  }

  /** Removes the sandbox, the volumes and the pod's directory (the processes are gone). */
  private async tearDown(): Promise<void> {
    if (this.sandbox) {
      this.env.forgetHosts(this.sandbox.netns);
      await deleteSandbox(this.sandbox.netns, this.sandbox.veth);
      this.sandbox = undefined;
    }
    this.env.ipam.release(this.uid);
    await this.volumes?.tearDown();
    this.volumes = undefined;
    this.volumesReady = false;
    this.env.volumeSources.tokens.forget(this.uid);
    await rm(this.podDir, { recursive: true, force: true });
  }

  private finish(): void {
    this.state = "done";
    this.cancelWake();
    clearTimeout(this.refreshTimer);
    this.env.events.forget(this.uid);
    this.env.onDone(this.uid);
  }

  /** Agent shutdown: stop the containers (the pods stay in the apiserver) and clean up. */
  async shutdown(maxGraceSeconds: number): Promise<void> {
    this.shuttingDown = true;
    this.cancelWake();
    clearTimeout(this.refreshTimer);
    // Let a sync in progress finish, so that nothing starts after the teardown.
    while (this.syncing) await sleep(50);
    if (this.state === "done") return;
    this.state = "terminating";
    await this.killAll(Math.min(this.gracePeriod(), maxGraceSeconds));
    await this.tearDown();
    this.finish();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(ms, 0)));
}
