// `coordinator-ha status` without I/O: a StatefulSet, its pods and its StateHead in, one row
// per pod and a verdict on the set out. The set is healthy when every replica exists, is
// Ready, has its gate True, and holds the committed head; anything else names the pods and
// why, so that the summary line answers "what is wrong" and the exit code "is it".
import type { V1Pod } from "@kubernetes/client-node";
import { isAncestor } from "../handler/head/rules.ts";
import type { HeadSpec, Member } from "../handler/head/state-head.ts";
import { isGated, isReady, owningStatefulSet } from "../handler/pod.ts";
import { RECOVERED_CONDITION } from "../names.ts";

export interface StatefulSetFacts {
  namespace: string;
  name: string;
  uid: string;
  replicas: number;
}

export interface PodRow {
  pod: string;
  node: string;
  ready: boolean;
  /** The recovered condition's status; "" when the pod has none yet. */
  gate: "True" | "False" | "Unknown" | "";
  reason: string;
  message: string;
  /** The digest the pod confirmed it holds (its StateHead member record), if any. */
  digest: string | null;
  /** The peer it recovered from; null when its own app wrote the state, or unknown. */
  source: string | null;
  /** The gate's last transition (RFC 3339), or the pod's creation when it has no gate yet. */
  since: string;
  /** How the pod stands against the head. */
  state: PodState;
}

export type PodState = "head" | "stale" | "conflict" | "waiting" | "not-ready" | "ungated";

export interface SetStatus {
  namespace: string;
  statefulSet: string;
  replicas: number;
  head: { committed: string | null; proposal: string | null; by: string | null };
  pods: PodRow[];
  healthy: boolean;
  /** One line: counts, and the pods that keep the set from being healthy, with why. */
  summary: string;
}

/** The confirmation record of a pod: its member entry in the StateHead, if it is this pod's. */
export function recordOf(head: HeadSpec | undefined, pod: V1Pod): Member | undefined {
  const member = head?.members[pod.metadata?.name ?? ""];
  return member && member.uid === pod.metadata?.uid ? member : undefined;
}

export function setStatus(sts: StatefulSetFacts, allPods: V1Pod[], head: HeadSpec | undefined): SetStatus {
  const pods = allPods
    .filter((p) => owningStatefulSet(p)?.uid === sts.uid)
    .sort((a, b) => ordinal(a) - ordinal(b));
  const committed = head?.committed?.digest ?? null;
  const rows = pods.map((pod) => podRow(pod, head, committed));

  const counts = new Map<PodState, string[]>();
  for (const row of rows) counts.set(row.state, [...(counts.get(row.state) ?? []), row.pod]);
  const healthy = rows.length === sts.replicas && rows.every((r) => r.state === "head");

  const parts = [`${rows.filter((r) => r.ready).length}/${sts.replicas} Ready`];
  parts.push(
    committed ? `${counts.get("head")?.length ?? 0} hold the head ${prefix(committed)}` : "no committed head",
  );
  const problems: [PodState, string][] = [
    ["stale", "stale (an older state)"],
    ["conflict", "in conflict (a state outside the history)"],
    ["waiting", "waiting for state"],
    ["not-ready", "not Ready"],
    ["ungated", "without the readiness gate"],
  ];
  for (const [state, what] of problems) {
    const names = counts.get(state);
    if (names) parts.push(`${names.length} ${what}: ${names.map((n) => withReason(n, rows)).join(", ")}`);
  }
  if (rows.length < sts.replicas)
    parts.push(`${sts.replicas - rows.length} of ${sts.replicas} replicas have no pod`);
  if (head?.proposal) parts.push(`update ${prefix(head.proposal.digest)} by ${head.proposal.by} in flight`);

  return {
    namespace: sts.namespace,
    statefulSet: sts.name,
    replicas: sts.replicas,
    head: { committed, proposal: head?.proposal?.digest ?? null, by: head?.committed?.by ?? null },
    pods: rows,
    healthy,
    summary: `${sts.name}: ${parts.join("; ")}${healthy ? "" : " (unhealthy)"}`,
  };
}

function podRow(pod: V1Pod, head: HeadSpec | undefined, committed: string | null): PodRow {
  const condition = pod.status?.conditions?.find((c) => c.type === RECOVERED_CONDITION);
  const record = recordOf(head, pod);
  const ready = isReady(pod);
  const gate = (condition?.status ?? "") as PodRow["gate"];
  return {
    pod: pod.metadata?.name ?? "",
    node: pod.spec?.nodeName ?? "",
    ready,
    gate,
    reason: condition?.reason ?? "",
    message: condition?.message ?? "",
    digest: record?.digest ?? null,
    source: record?.source ?? null,
    since: toIso(condition?.lastTransitionTime ?? pod.metadata?.creationTimestamp),
    state: stateOf(pod, gate, ready, record, head, committed),
  };
}

function stateOf(
  pod: V1Pod,
  gate: PodRow["gate"],
  ready: boolean,
  record: Member | undefined,
  head: HeadSpec | undefined,
  committed: string | null,
): PodState {
  if (!isGated(pod)) return "ungated";
  if (record && committed && record.digest !== committed) {
    return head && isAncestor(head, record.digest) ? "stale" : "conflict";
  }
  if (gate !== "True") return "waiting";
  if (!ready) return "not-ready";
  return "head";
}

function withReason(name: string, rows: PodRow[]): string {
  const row = rows.find((r) => r.pod === name)!;
  return row.reason ? `${name} (${row.reason})` : name;
}

/** The StatefulSet ordinal of a pod (coordinator-2 -> 2); unknown names go last. */
function ordinal(pod: V1Pod): number {
  const match = /-(\d+)$/.exec(pod.metadata?.name ?? "");
  return match ? Number(match[1]) : Number.MAX_SAFE_INTEGER;
}

/** "sha256:5f0c2b0d": enough of a digest to tell states apart in a table. */
export function prefix(digest: string | null): string {
  return digest ? digest.slice(0, "sha256:".length + 8) : "-";
}

function toIso(time: Date | string | undefined): string {
  if (time === undefined) return "";
  return (typeof time === "string" ? new Date(time) : time).toISOString().replace(/\.\d+Z$/, "Z");
}
