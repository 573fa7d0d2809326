// The watch side of the handler. Two kinds of keys go through one keyed queue:
// - a pod ("<ns>/<name>"): every change of a selected pod re-evaluates that pod and the other
//   pods of its StatefulSet (a peer that turns Ready changes what its siblings wait for), and
//   its gate follows reconcile.ts against the newest cached pod and StateHead;
// - a head ("head:<ns>/<name>"): a changed StateHead re-evaluates the StatefulSet's pods (a
//   new head makes pods stale), and a proposal whose proposer is gone or which has expired is
//   cleared (rules.ts, decideAbandon) by compare-and-swap, by whichever replica gets there first.
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { PodCache, PodCacheListener } from "../kube/pod-cache.ts";
import type { StateHeadObject } from "../kube/state-heads.ts";
import { createWorkQueue, type WorkQueue } from "../kube/work-queue.ts";
import type { ConditionWriter } from "./condition-writer.ts";
import { podsNow } from "./confirm.ts";
import { decideAbandon, DEFAULT_PROPOSAL_TTL_MS, type Abandoned } from "./head/rules.ts";
import { headSpecOf, type HeadSpec } from "./head/state-head.ts";
import type { HeadStore } from "./head/store.ts";
import type { HandlerMetrics } from "./metrics.ts";
import { owningStatefulSet, podFields } from "./pod.ts";
import { reconcilePod } from "./reconcile.ts";

export interface Controller extends PodCacheListener {
  /** The StateHead watch's listener. */
  heads: PodCacheListener<StateHeadObject>;
  /** Resolves when every queued key has been processed (tests). */
  idle(): Promise<void>;
  stop(): void;
}

export interface ControllerOptions {
  /** Read when a key is processed (getters: the caches and the controller know each other). */
  cache: () => PodCache;
  heads: () => PodCache<StateHeadObject>;
  store: HeadStore;
  writer: ConditionWriter;
  metrics: HandlerMetrics;
  logger: Logger;
  retryMs?: number;
  now?: () => Date;
}

const HEAD_PREFIX = "head:";

export function createController(opts: ControllerOptions): Controller {
  const retryMs = opts.retryMs ?? 5_000;
  const now = opts.now ?? (() => new Date());

  const cachedHead = (namespace: string, name: string): HeadSpec | undefined =>
    headSpecOf(opts.heads().get(namespace, name));

  const processPod = async (key: string, namespace: string, name: string): Promise<void> => {
    const cache = opts.cache();
    const pod = cache.get(namespace, name);
    if (!pod) return;
    // Without the heads, a stale pod would look fine and a waiting one alone: wait for them.
    if (!opts.heads().synced()) {
      queue.addAfter(key, retryMs);
      return;
    }
    const statefulSet = owningStatefulSet(pod);
    const pods = cache.inNamespace(namespace);
    let head = statefulSet ? cachedHead(namespace, statefulSet.name) : undefined;
    let change = reconcilePod(pod, pods, head, now());
    if (change?.recheckAfterMs !== undefined) queue.addAfter(key, change.recheckAfterMs);
    try {
      if (
        statefulSet &&
        change?.desired?.status === "False" &&
        (change.rule === "G4" || change.rule === "G5")
      ) {
        // The cache may lag behind a confirmation that just caught this pod up.
        head = await opts.store.read(namespace, statefulSet);
        change = reconcilePod(pod, pods, head, now());
      }
      if (!change?.desired) return;
      // "conflict" and "gone": the pod changed meanwhile, and that change is queued already.
      await opts.writer.write(pod, change.desired, change.event ? [change.event] : []);
    } catch (err) {
      opts.logger.warn(
        { ...podFields(pod), err: String(err), retryInMs: retryMs },
        "writing the condition failed",
      );
      queue.addAfter(key, retryMs);
    }
  };

  const processHead = async (key: string, namespace: string, name: string): Promise<void> => {
    const head = cachedHead(namespace, name);
    if (head) for (const pod of podsOf(namespace, head.statefulSet.uid)) queue.add(keyOf(pod));
    if (!head?.proposal || !opts.cache().synced()) return;
    const statefulSet = head.statefulSet;
    const ctx = () => ({
      now: now(),
      pods: podsNow(statefulSet, opts.cache().inNamespace(namespace)),
      quorum: Number.MAX_SAFE_INTEGER,
      proposalTtlMs: DEFAULT_PROPOSAL_TTL_MS,
    });
    if (!decideAbandon(head, ctx())) {
      // Look again when it expires.
      queue.addAfter(key, Math.max(0, Date.parse(head.proposal.expiresAt) - now().getTime()) + 100);
      return;
    }
    try {
      const result = await opts.store.decide(
        namespace,
        statefulSet,
        (read): { next?: HeadSpec; abandoned?: Abandoned } => decideAbandon(read, ctx()) ?? {},
      );
      if (result.written && result.abandoned) {
        const { proposal, reason } = result.abandoned;
        opts.metrics.commit("abandoned", reason);
        opts.logger.info(
          {
            namespace,
            statefulSet: statefulSet.name,
            decision: "abandon",
            reason,
            digest: proposal.digest,
            head: read(head),
            proposer: proposal.by,
          },
          "proposal abandoned before its quorum",
        );
      }
    } catch (err) {
      opts.logger.warn(
        { namespace, statefulSet: name, err: String(err), retryInMs: retryMs },
        "abandoning failed",
      );
      queue.addAfter(key, retryMs);
    }
  };

  const process = async (key: string): Promise<void> => {
    const head = key.startsWith(HEAD_PREFIX);
    const [namespace, name] = key.slice(head ? HEAD_PREFIX.length : 0).split("/") as [string, string];
    await (head ? processHead(key, namespace, name) : processPod(key, namespace, name));
  };
  const queue: WorkQueue = createWorkQueue(process);

  const keyOf = (pod: V1Pod) => `${pod.metadata?.namespace}/${pod.metadata?.name}`;
  const podsOf = (namespace: string, statefulSetUid: string) =>
    opts
      .cache()
      .inNamespace(namespace)
      .filter((p) => owningStatefulSet(p)?.uid === statefulSetUid);
  const addWithSiblings = (pod: V1Pod) => {
    queue.add(keyOf(pod));
    const statefulSet = owningStatefulSet(pod);
    if (!statefulSet) return;
    const namespace = pod.metadata?.namespace ?? "";
    for (const sibling of podsOf(namespace, statefulSet.uid)) queue.add(keyOf(sibling));
    // A proposer that went away abandons its proposal.
    queue.add(`${HEAD_PREFIX}${namespace}/${statefulSet.name}`);
  };
  const headKey = (object: StateHeadObject) =>
    `${HEAD_PREFIX}${object.metadata?.namespace}/${object.metadata?.name}`;

  return {
    changed: addWithSiblings,
    deleted: addWithSiblings,
    relisted: () => {
      for (const pod of opts.cache().all()) queue.add(keyOf(pod));
    },
    heads: {
      changed: (object) => queue.add(headKey(object)),
      deleted: (object) => {
        const uid = headSpecOf(object)?.statefulSet.uid;
        if (uid) for (const pod of podsOf(object.metadata?.namespace ?? "", uid)) queue.add(keyOf(pod));
      },
      relisted: () => {
        for (const object of opts.heads().all()) queue.add(headKey(object));
      },
    },
    idle: () => queue.idle(),
    stop: () => queue.stop(),
  };
}

function read(head: HeadSpec): string | null {
  return head.committed?.digest ?? null;
}
