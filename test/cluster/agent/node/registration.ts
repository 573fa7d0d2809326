// The Node and its heartbeat, as the kubelet keeps them: the Node object with capacity,
// allocatable, addresses, node info and the four standard conditions; a Lease in
// kube-node-lease renewed every 10 s (the node-lifecycle controller's health signal);
// and a status update every minute.
import { readFileSync } from "node:fs";
import { availableParallelism, release, totalmem } from "node:os";
import { statfsSync } from "node:fs";
import {
  CoordinationV1Api,
  CoreV1Api,
  PatchStrategy,
  VersionApi,
  setHeaderOptions,
  type KubeConfig,
  type V1NodeCondition,
  type V1NodeStatus,
} from "@kubernetes/client-node";
import type { Logger } from "pino";
import { apiErrorCode } from "../kube/errors.ts";

export interface NodeConfig {
  name: string;
  /** The node's InternalIP (the bridge address, where pods and the apiserver meet). */
  address: string;
  podCIDR: string;
  maxPods: number;
  /** Where ephemeral storage lives (the agent's state dir). */
  stateDir: string;
  runtimeVersion: string;
}

const LEASE_NAMESPACE = "kube-node-lease";
const LEASE_DURATION_SECONDS = 40;
const LEASE_RENEW_MS = 10_000;
const STATUS_REPORT_MS = 60_000;
// The kubelet's default hard eviction threshold, which allocatable memory leaves aside.
const EVICTION_MEMORY_BYTES = 100 * 1024 * 1024;

const readText = (path: string) => {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return "";
  }
};

function osImage(): string {
  const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readText("/etc/os-release"));
  return m?.[1] ?? "Linux";
}

const goArch = (arch: string) =>
  ({ x64: "amd64", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x" })[arch] ?? arch;

/** capacity and allocatable, in the units the kubelet reports (memory in Ki). */
export function resources(cfg: NodeConfig): {
  capacity: Record<string, string>;
  allocatable: Record<string, string>;
} {
  const fs = statfsSync(cfg.stateDir);
  const storage = fs.blocks * fs.bsize;
  const memory = totalmem();
  const ki = (bytes: number) => `${Math.floor(bytes / 1024)}Ki`;
  const common = {
    cpu: String(availableParallelism()),
    pods: String(cfg.maxPods),
    "hugepages-1Gi": "0",
    "hugepages-2Mi": "0",
  };
  return {
    capacity: { ...common, memory: ki(memory), "ephemeral-storage": ki(storage) },
    // The kubelet's defaults: memory minus the 100Mi eviction threshold, storage minus 10%.
    allocatable: {
      ...common,
      memory: ki(memory - EVICTION_MEMORY_BYTES),
      "ephemeral-storage": String(Math.floor(storage * 0.9)),
    },
  };
}

function conditions(now: Date, previous: V1NodeCondition[] | undefined): V1NodeCondition[] {
  const make = (type: string, status: string, reason: string, message: string): V1NodeCondition => {
    const old = previous?.find((c) => c.type === type);
    return {
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: now,
      lastTransitionTime:
        old && old.status === status && old.lastTransitionTime ? old.lastTransitionTime : now,
    };
  };
  return [
    make("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    make("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    make("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    make("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
  ];
}

export class NodeRegistration {
  private readonly cfg: NodeConfig;
  private readonly kc: KubeConfig;
  private readonly core: CoreV1Api;
  private readonly coordination: CoordinationV1Api;
  private readonly log: Logger;
  private timers: NodeJS.Timeout[] = [];
  private kubeletVersion = "";
  private nodeUID = "";

  constructor(kc: KubeConfig, cfg: NodeConfig, log: Logger) {
    this.kc = kc;
    this.cfg = cfg;
    this.core = kc.makeApiClient(CoreV1Api);
    this.coordination = kc.makeApiClient(CoordinationV1Api);
    this.log = log;
  }

  private status(previous?: V1NodeCondition[]): V1NodeStatus {
    const { capacity, allocatable } = resources(this.cfg);
    const machineID = readText("/etc/machine-id");
    return {
      capacity,
      allocatable,
      conditions: conditions(new Date(), previous),
      addresses: [
        { type: "InternalIP", address: this.cfg.address },
        { type: "Hostname", address: this.cfg.name },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        machineID,
        systemUUID: readText("/sys/class/dmi/id/product_uuid") || machineID,
        bootID: readText("/proc/sys/kernel/random/boot_id"),
        kernelVersion: release(),
        osImage: osImage(),
        containerRuntimeVersion: this.cfg.runtimeVersion,
        kubeletVersion: this.kubeletVersion,
        kubeProxyVersion: "",
        operatingSystem: "linux",
        architecture: goArch(process.arch),
      },
    };
  }

  /** Registers the Node (or takes over an existing one) and reports it Ready. */
  async register(): Promise<void> {
    // The kubelet reports its own version; the agent stands in for the apiserver's release.
    this.kubeletVersion = (await this.kc.makeApiClient(VersionApi).getCode()).gitVersion;
    const name = this.cfg.name;
    const labels = {
      "beta.kubernetes.io/arch": goArch(process.arch),
      "beta.kubernetes.io/os": "linux",
      "kubernetes.io/arch": goArch(process.arch),
      "kubernetes.io/hostname": name,
      "kubernetes.io/os": "linux",
    };
    let existing = await this.core.readNode({ name }).catch(() => undefined);
    if (!existing) {
      existing = await this.core.createNode({
        body: {
          metadata: {
            name,
            labels,
            annotations: { "volumes.kubernetes.io/controller-managed-attach-detach": "true" },
          },
          spec: { podCIDR: this.cfg.podCIDR, podCIDRs: [this.cfg.podCIDR] },
          status: this.status(),
        },
      });
      this.log.info({ node: name }, "registered the node");
    }
    this.nodeUID = existing.metadata?.uid ?? "";
    await this.updateStatus(existing.status?.conditions);
    await this.renewLease();
  }

  private async updateStatus(previous?: V1NodeCondition[]): Promise<void> {
    await this.core.patchNodeStatus(
      { name: this.cfg.name, body: { status: this.status(previous) } },
      setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
    );
  }

  private async renewLease(): Promise<void> {
    const name = this.cfg.name;
    // MicroTime wants exactly six fractional digits.
    const renewTime = new Date().toISOString().replace(/Z$/, "000Z");
    const patch = { spec: { holderIdentity: name, leaseDurationSeconds: LEASE_DURATION_SECONDS, renewTime } };
    const merge = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
    try {
      await this.coordination.patchNamespacedLease({ name, namespace: LEASE_NAMESPACE, body: patch }, merge);
    } catch (err) {
      if (apiErrorCode(err) !== 404) throw err;
      await this.coordination.createNamespacedLease({
        namespace: LEASE_NAMESPACE,
        body: {
          metadata: {
            name,
            namespace: LEASE_NAMESPACE,
            ownerReferences: [{ apiVersion: "v1", kind: "Node", name, uid: this.nodeUID }],
          },
          spec: { holderIdentity: name, leaseDurationSeconds: LEASE_DURATION_SECONDS },
        },
      });
      await this.coordination.patchNamespacedLease({ name, namespace: LEASE_NAMESPACE, body: patch }, merge);
    }
  }

  /** Keeps the lease and the node status fresh until stop(). */
  startHeartbeat(): void {
    const every = (ms: number, what: string, fn: () => Promise<void>) =>
      this.timers.push(
        setInterval(
          () => void fn().catch((err: unknown) => this.log.warn({ err: String(err) }, `${what} failed`)),
          ms,
        ),
      );
    every(LEASE_RENEW_MS, "lease renewal", () => this.renewLease());
    every(STATUS_REPORT_MS, "node status update", async () => {
      const node = await this.core.readNode({ name: this.cfg.name });
      await this.updateStatus(node.status?.conditions);
    });
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }
}
