// Follows the pods bound to this node and gives each its worker: a new pod gets one, an
// update is handed to it, a pod gone from the apiserver is torn down.
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { startInformer, type Informer } from "../kube/informer.ts";
import type { Pod } from "../kube/wire.ts";
import type { HostsTarget } from "../network/service-proxy.ts";
import { PodWorker, type WorkerEnv } from "./worker.ts";

export class PodManager {
  private readonly workers = new Map<string, PodWorker>();
  private readonly kc: KubeConfig;
  private readonly nodeName: string;
  private readonly env: Omit<WorkerEnv, "onDone">;
  private readonly log: Logger;
  private informer: Informer<Pod> | undefined;

  constructor(kc: KubeConfig, nodeName: string, env: Omit<WorkerEnv, "onDone">) {
    this.kc = kc;
    this.nodeName = nodeName;
    this.env = env;
    this.log = env.log;
  }

  async start(): Promise<void> {
    const core = this.kc.makeApiClient(CoreV1Api);
    const fieldSelector = `spec.nodeName=${this.nodeName}`;
    this.informer = startInformer<Pod>({
      kc: this.kc,
      path: "/api/v1/pods",
      list: () => core.listPodForAllNamespaces({ fieldSelector }),
      fieldSelector,
      log: this.log,
    });
    this.informer.on((event, pod) => {
      const uid = pod.metadata?.uid;
      if (!uid) return;
      let worker = this.workers.get(uid);
      if (event === "delete") {
        worker?.remove();
        if (worker?.done) this.workers.delete(uid);
        return;
      }
      if (!worker) {
        // A finished worker stays (as a tombstone) until its pod leaves the apiserver, so
        // that a late update of a completed pod never starts it again.
        const created: PodWorker = new PodWorker(pod, {
          ...this.env,
          onDone: (id) => {
            if (created.removedFromApi) this.workers.delete(id);
          },
        });
        worker = created;
        this.workers.set(uid, worker);
      }
      worker.update(pod);
    });
    await this.informer.synced;
  }

  /** UIDs of the pods bound to the node. */
  podUIDs(): Set<string> {
    return new Set(this.workers.keys());
  }

  /** A pod's worker by namespace and name (the one still running, if a name was reused). */
  byName(namespace: string, name: string): PodWorker | undefined {
    const matching = [...this.workers.values()].filter((w) => w.namespacedName === `${namespace}/${name}`);
    return matching.find((w) => !w.done) ?? matching[0];
  }

  /** Running sandboxes, for the service proxy's hosts files. */
  hostsTargets(): HostsTarget[] {
    return [...this.workers.values()].flatMap((w) => w.hostsTarget() ?? []);
  }

  /** Stops every pod's containers and cleans up, without touching the pods in the apiserver. */
  async shutdown(maxGraceSeconds: number): Promise<void> {
    await this.informer?.stop();
    await Promise.all([...this.workers.values()].map((w) => w.shutdown(maxGraceSeconds)));
  }
}
