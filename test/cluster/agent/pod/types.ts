// What the agent's "container runtime" knows about a pod: the plain records that the
// container runner produces and the status computation consumes. They play the part of the
// CRI's PodStatus in the kubelet (kubecontainer.PodStatus).

/** One run of one container (the kubelet keeps the latest runs of each container). */
export interface ContainerRecord {
  /** `cha://<64 hex>`, unique per run, in the `<runtime>://<id>` form of the kubelet. */
  id: string;
  name: string;
  /** The image as the runtime reports it: normalized, e.g. `docker.io/library/busybox:latest`. */
  image: string;
  /** `<repository>@sha256:<digest of the mapping entry>`. */
  imageID: string;
  /** Attempt number: 0 for the first run, +1 for every restart. */
  restartCount: number;
  createdAt: Date;
  state: "running" | "exited";
  /** Unset for a container that failed to start (the CRI reports the zero time then). */
  startedAt?: Date;
  finishedAt?: Date;
  exitCode?: number;
  /** For an exited container: Completed, Error, StartError. */
  reason?: string;
  message?: string;
}

/** The runtime's view of one pod. */
export interface RuntimePod {
  /** The sandbox (network namespace with its address) exists and is ready. */
  sandboxReady: boolean;
  ips: string[];
  records: ContainerRecord[];
}

/** Why a container that should run is not running (the kubelet's reason cache). */
export interface WaitingReason {
  reason: string;
  message: string;
}

/** Probe-derived state of one container run, keyed by container id. */
export interface ProbeState {
  /** Startup probe succeeded, or there is none. */
  started: boolean;
  /** Readiness probe succeeded (undefined: no result yet, or no readiness probe). */
  ready: boolean | undefined;
}
