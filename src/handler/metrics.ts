// The handler's own metrics. Reason labels come from reasons.ts and names.ts, so their
// values are bounded and match the log lines.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { Reason } from "../names.ts";
import type { PatchResult } from "../kube/pods.ts";
import type { PeerAccessRefusal } from "./api.ts";
import { refusalStatus, type RefusalReason } from "./reasons.ts";

export type ConfirmationOutcome = "recorded" | "unchanged" | "refused";
export type PeersOutcome = "answered" | "refused";
/** allowed/denied: a verdict about the pod asked for; refused: the asking pod got no verdict. */
export type PeerAccessOutcome = "allowed" | "denied" | "refused";
export type WriteResult = PatchResult | "error";
/** What became of an update: committed at its quorum, refused, or abandoned before it. */
export type CommitOutcome = "committed" | "refused" | "abandoned";

export interface HandlerMetrics {
  confirmation(outcome: ConfirmationOutcome, reason: RefusalReason | ""): void;
  peersRequest(outcome: PeersOutcome, reason: RefusalReason | ""): void;
  peerAccess(outcome: PeerAccessOutcome, reason: RefusalReason | PeerAccessRefusal | ""): void;
  relist(): void;
  conditionWrite(reason: string, result: WriteResult): void;
  /** `reason`: the refusal or abandonment reason, "" for a commit. */
  commit(outcome: CommitOutcome, reason: string): void;
  /** Seconds from a proposal to its quorum. */
  commitLatency(seconds: number): void;
  /** Seconds a pod's gate spent StateStale or StateConflict before it was True again. */
  staleTime(seconds: number): void;
  /** A write of a StateHead that lost a race (409) and was decided again. */
  headConflict(): void;
  /** POST /v1/proposals, POST /v1/holds, GET /v1/head by outcome; "head": refused by the head's rules. */
  headRequest(call: "proposal" | "hold" | "head", outcome: "answered" | "refused", reason: string): void;
  /** GET /v1/head long-polls held now. */
  longPolls(held: number): void;
  /** A GET /v1/head answered at once because MAX_LONG_POLLS were held. */
  headPollDeferred(): void;
  /** Peers that failed to deliver the state, as a PeerTransferFailed Warning named them. */
  peerTransferFailures(count: number): void;
}

export function handlerMetrics(registry: Registry, cachedPods: () => number): HandlerMetrics {
  const confirmations = new Counter({
    name: "coordinator_ha_handler_confirmations_total",
    help: "POST /v1/recovered by outcome (recorded, unchanged, refused) and refusal reason.",
    labelNames: ["outcome", "reason"] as const,
    registers: [registry],
  });
  const peers = new Counter({
    name: "coordinator_ha_handler_peers_requests_total",
    help: "GET /v1/peers by outcome (answered, refused) and refusal reason.",
    labelNames: ["outcome", "reason"] as const,
    registers: [registry],
  });
  const peerAccess = new Counter({
    name: "coordinator_ha_handler_peer_access_total",
    help: "POST /v1/peer-access by outcome (allowed, denied, refused) and reason.",
    labelNames: ["outcome", "reason"] as const,
    registers: [registry],
  });
  const relists = new Counter({
    name: "coordinator_ha_handler_watch_relists_total",
    help: "Full lists of the selected pods: the first one, and one after every broken or expired watch.",
    registers: [registry],
  });
  const writes = new Counter({
    name: "coordinator_ha_handler_condition_writes_total",
    help: "Patches of the recovered condition by condition reason and result (patched, conflict, gone, error).",
    labelNames: ["reason", "result"] as const,
    registers: [registry],
  });
  const commits = new Counter({
    name: "coordinator_ha_handler_commits_total",
    help: "Updates of a StatefulSet's head by outcome (committed, refused, abandoned) and reason.",
    labelNames: ["outcome", "reason"] as const,
    registers: [registry],
  });
  const commitLatency = new Histogram({
    name: "coordinator_ha_handler_commit_latency_seconds",
    help: "Time from an update's proposal to its quorum (the commit).",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const staleTime = new Histogram({
    name: "coordinator_ha_handler_stale_seconds",
    help: "Time a pod's gate spent StateStale or StateConflict before it held the head again.",
    buckets: [0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
    registers: [registry],
  });
  const headConflicts = new Counter({
    name: "coordinator_ha_handler_head_write_conflicts_total",
    help: "StateHead writes that lost a compare-and-swap race to another writer and were decided again.",
    registers: [registry],
  });
  const headRequests = new Counter({
    name: "coordinator_ha_handler_head_requests_total",
    help: 'POST /v1/proposals, POST /v1/holds and GET /v1/head by call, outcome and reason ("head": refused by the rules of the head).',
    labelNames: ["call", "outcome", "reason"] as const,
    registers: [registry],
  });
  const longPolls = new Gauge({
    name: "coordinator_ha_handler_head_long_polls",
    help: "GET /v1/head long-polls held open now (one per sidecar that follows its StatefulSet's head).",
    registers: [registry],
  });
  const deferredPolls = new Counter({
    name: "coordinator_ha_handler_head_polls_deferred_total",
    help: "GET /v1/head answered at once with pollAfterSeconds, because the replica held its maximum of long-polls.",
    registers: [registry],
  });
  // No label for the pod: one series per pod name would grow without bound.
  const peerTransferFailures = new Counter({
    name: "coordinator_ha_handler_peer_transfer_failures_total",
    help: "Peers that failed to deliver the state to a recovering pod before another one did, as its sidecar reported them (each named in a PeerTransferFailed Warning Event).",
    registers: [registry],
  });
  new Gauge({
    name: "coordinator_ha_handler_cached_pods",
    help: "Selected pods in the handler's watch cache.",
    registers: [registry],
    collect() {
      this.set(cachedPods());
    },
  });

  // Every series exists from the start, so that a rate() over a rare reason is 0, not absent.
  const reasons = Object.keys(refusalStatus) as RefusalReason[];
  for (const outcome of ["recorded", "unchanged"] as const) confirmations.inc({ outcome, reason: "" }, 0);
  for (const reason of reasons) confirmations.inc({ outcome: "refused", reason }, 0);
  peers.inc({ outcome: "answered", reason: "" }, 0);
  for (const reason of reasons) peers.inc({ outcome: "refused", reason }, 0);
  peerAccess.inc({ outcome: "allowed", reason: "" }, 0);
  for (const reason of reasons) peerAccess.inc({ outcome: "refused", reason }, 0);
  for (const reason of Object.values(Reason)) writes.inc({ reason, result: "patched" }, 0);
  commits.inc({ outcome: "committed", reason: "" }, 0);
  for (const reason of ["update_in_progress", "stale_parent", "conflict"])
    commits.inc({ outcome: "refused", reason }, 0);
  for (const reason of ["proposer_gone", "expired"]) commits.inc({ outcome: "abandoned", reason }, 0);

  return {
    confirmation: (outcome, reason) => confirmations.inc({ outcome, reason }),
    peersRequest: (outcome, reason) => peers.inc({ outcome, reason }),
    peerAccess: (outcome, reason) => peerAccess.inc({ outcome, reason }),
    relist: () => relists.inc(),
    conditionWrite: (reason, result) => writes.inc({ reason, result }),
    commit: (outcome, reason) => commits.inc({ outcome, reason }),
    commitLatency: (seconds) => commitLatency.observe(seconds),
    staleTime: (seconds) => staleTime.observe(seconds),
    headConflict: () => headConflicts.inc(),
    headRequest: (call, outcome, reason) => headRequests.inc({ call, outcome, reason }),
    longPolls: (held) => longPolls.set(held),
    headPollDeferred: () => deferredPolls.inc(),
    peerTransferFailures: (count) => peerTransferFailures.inc(count),
  };
}
