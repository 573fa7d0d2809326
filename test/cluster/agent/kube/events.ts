// Kubernetes Events about pods, as the kubelet records them (source component "kubelet",
// the node as host, the container as fieldPath), so that `kubectl describe pod` tells the
// story: Pulled, Created, Started, Killing, BackOff, Unhealthy, FailedMount. A repeated
// event within ten minutes bumps the count of the first, as the event correlator does.
import { randomBytes } from "node:crypto";
import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { Pod } from "./wire.ts";
import { rfc3339 } from "./wire.ts";

const AGGREGATE_WINDOW_MS = 10 * 60 * 1000;

export interface EventTarget {
  pod: Pod;
  /** spec.containers{name} or spec.initContainers{name}; unset for the pod itself. */
  fieldPath?: string;
}

export class EventRecorder {
  private readonly api: CoreV1Api;
  private readonly node: string;
  private readonly log: Logger;
  private readonly seen = new Map<string, { name: string; namespace: string; count: number; at: number }>();

  constructor(kc: KubeConfig, node: string, log: Logger) {
    this.api = kc.makeApiClient(CoreV1Api);
    this.node = node;
    this.log = log;
  }

  /** Records an event; never throws (an event is never worth failing a sync for). */
  record(target: EventTarget, type: "Normal" | "Warning", reason: string, message: string): void {
    void this.write(target, type, reason, message).catch((err: unknown) =>
      this.log.debug({ err: String(err), reason }, "could not record an event"),
    );
  }

  private async write(target: EventTarget, type: string, reason: string, message: string): Promise<void> {
    const { pod } = target;
    const namespace = pod.metadata?.namespace ?? "default";
    const key = [pod.metadata?.uid, target.fieldPath ?? "", reason, message].join("\0");
    const now = Date.now();
    const previous = this.seen.get(key);
    if (previous && now - previous.at < AGGREGATE_WINDOW_MS) {
      previous.count += 1;
      previous.at = now;
      await this.api.patchNamespacedEvent(
        {
          name: previous.name,
          namespace: previous.namespace,
          body: { count: previous.count, lastTimestamp: rfc3339(new Date(now)) },
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
      return;
    }
    const name = `${pod.metadata?.name}.${randomBytes(8).toString("hex")}`;
    this.seen.set(key, { name, namespace, count: 1, at: now });
    const at = new Date(now);
    await this.api.createNamespacedEvent({
      namespace,
      body: {
        metadata: { name, namespace },
        involvedObject: {
          apiVersion: "v1",
          kind: "Pod",
          name: pod.metadata?.name,
          namespace,
          uid: pod.metadata?.uid,
          resourceVersion: pod.metadata?.resourceVersion,
          ...(target.fieldPath ? { fieldPath: target.fieldPath } : {}),
        },
        reason,
        message,
        type,
        source: { component: "kubelet", host: this.node },
        reportingComponent: "kubelet",
        reportingInstance: this.node,
        count: 1,
        firstTimestamp: at,
        lastTimestamp: at,
      },
    });
  }

  /** Forgets the aggregation state of a pod that is gone. */
  forget(podUID: string): void {
    for (const key of [...this.seen.keys()]) if (key.startsWith(`${podUID}\0`)) this.seen.delete(key);
  }
}
