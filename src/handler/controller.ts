// The pod-event side of the handler: every change of a selected pod re-evaluates that pod
// and the other pods of its StatefulSet (a peer that turns Ready changes what its siblings
// wait for), through a keyed queue, against the newest cached version of each pod.
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { PodCache, PodCacheListener } from "../kube/pod-cache.ts";
import { createWorkQueue, type WorkQueue } from "../kube/work-queue.ts";
import type { ConditionWriter } from "./condition-writer.ts";
import { owningStatefulSet, podFields } from "./pod.ts";
import { reconcilePod } from "./reconcile.ts";

export interface Controller extends PodCacheListener {
  /** Resolves when every queued pod has been processed (tests). */
  idle(): Promise<void>;
  stop(): void;
}

export interface ControllerOptions {
  /** Read when a key is processed (a getter: the cache and the controller know each other). */
  cache: () => PodCache;
  writer: ConditionWriter;
  logger: Logger;
  retryMs?: number;
}

export function createController(opts: ControllerOptions): Controller {
  const retryMs = opts.retryMs ?? 5_000;

  const process = async (key: string): Promise<void> => {
    const cache = opts.cache();
    const [namespace, name] = key.split("/") as [string, string];
    const pod = cache.get(namespace, name);
    if (!pod) return;
    const change = reconcilePod(pod, cache.inNamespace(namespace));
    if (!change) return;
    try {
      // "conflict" and "gone": the pod changed meanwhile, and that change is queued already.
      await opts.writer.write(pod, change.desired, change.event);
    } catch (err) {
      opts.logger.warn(
        { ...podFields(pod), err: String(err), retryInMs: retryMs },
        "writing the condition failed",
      );
      queue.addAfter(key, retryMs);
    }
  };
  const queue: WorkQueue = createWorkQueue(process);

  const keyOf = (pod: V1Pod) => `${pod.metadata?.namespace}/${pod.metadata?.name}`;
  const addWithSiblings = (pod: V1Pod) => {
    queue.add(keyOf(pod));
    const uid = owningStatefulSet(pod)?.uid;
    if (!uid) return;
    for (const sibling of opts.cache().inNamespace(pod.metadata?.namespace ?? "")) {
      if (owningStatefulSet(sibling)?.uid === uid) queue.add(keyOf(sibling));
    }
  };

  return {
    changed: addWithSiblings,
    deleted: addWithSiblings,
    relisted: () => {
      for (const pod of opts.cache().all()) queue.add(keyOf(pod));
    },
    idle: () => queue.idle(),
    stop: () => queue.stop(),
  };
}
