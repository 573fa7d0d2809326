// Every decision about a StatefulSet's head, as pure functions: the head as read (live, just
// before a compare-and-swap), the request and what is known of the StatefulSet's pods in, the
// decision and the next head out. Nothing here reads a clock or the cluster; the store
// (store.ts) retries a decision whose write lost a race on the newly read head.
//
// The rules, in the order they apply (docs/recovery.md, "The head", has them as tables):
//
// propose(pod, digest, parent)
//   P1 a proposal whose proposer is gone, or past its expiry  -> cleared first (abandoned)
//   P2 digest is the committed head                           -> already committed (200)
//   P3 the same pod proposed the same digest and parent       -> the pending proposal (202)
//   P4 a proposal of another pod is pending                   -> update_in_progress (409)
//   P5 parent is the committed head (null for the first)      -> accepted; the proposer holds
//                                                                it; committed at once if
//                                                                that is a quorum (202/200).
//                                                                The first state's quorum is
//                                                                its proposer: with
//                                                                OrderedReady, no other pod
//                                                                exists before it is Ready.
//   P6 parent is an ancestor of the head                      -> stale_parent (409)
//   P7 anything else (a sibling of the head)                  -> conflict (409)
// hold(pod, digest)
//   H1 digest is the committed head                           -> committed (200)
//   H2 no pending proposal of that digest                     -> no_proposal (409)
//   H3 the live holders reach the quorum                      -> committed (200)
//   H4 otherwise                                              -> held, not yet committed (200)
// L  (before propose and confirm) no pod that exists holds the committed head: every
//    instance is gone, and the state with them (it lives only in the pods' memory)
//                                                             -> the head is lost: a first
//                                                                state may start again
// confirm(pod, digest, source)
//   C1 digest is the committed head                           -> recorded
//   C2 digest is an ancestor of the head                      -> stale_state (409)
//   C3 a head exists, digest is the pending proposal           -> update_in_progress (409)
//      (not yet committed), else not in its history           -> conflicting_state (409)
//   C4 no head, an update is pending                          -> update_in_progress (409)
//   C5 no head, a live member recorded another digest         -> conflicting_state (409)
//   C6 no head                                                -> recorded, and the head
//                                                                becomes this digest
import type { Commit, HeadSpec, Member, Proposal } from "./state-head.ts";
import { HISTORY_LIMIT, short } from "./state-head.ts";

/** A pod of the StatefulSet as it is now. */
export interface PodNow {
  uid: string;
  terminating: boolean;
}

export interface HeadContext {
  now: Date;
  /** The StatefulSet's pods by name (the caller's own from a live read). */
  pods: Record<string, PodNow>;
  /** Holders needed to commit: quorumOf(...). */
  quorum: number;
  /** How long a proposal may wait for its quorum. */
  proposalTtlMs: number;
}

export const DEFAULT_PROPOSAL_TTL_MS = 60_000;
/** A member whose pod is not in the cache (yet) is pruned only after this long. */
export const PRUNE_GRACE_MS = 60_000;
/** The StatefulSet annotation that overrides the quorum. */
export const QUORUM_ANNOTATION = "coordinator-ha.io/quorum";

/** Holders needed to commit: the annotation if a positive integer, else a majority of replicas. */
export function quorumOf(replicas: number | undefined, annotation: string | undefined): number {
  if (annotation !== undefined && /^[1-9]\d{0,5}$/.test(annotation.trim())) return Number(annotation.trim());
  // The apiserver defaults spec.replicas to 1.
  return Math.max(1, Math.floor((replicas ?? 1) / 2) + 1);
}

export function isLive(ctx: Pick<HeadContext, "pods">, name: string, uid: string): boolean {
  const pod = ctx.pods[name];
  return pod !== undefined && pod.uid === uid && !pod.terminating;
}

/** The member record of `name`, only if it belongs to the pod of that uid. */
export function memberOf(
  head: HeadSpec | undefined,
  name: string,
  uid: string | undefined,
): Member | undefined {
  const member = head?.members[name];
  return member && member.uid === uid ? member : undefined;
}

export function liveHolders(
  holders: Record<string, string>,
  ctx: Pick<HeadContext, "pods">,
): Record<string, string> {
  return Object.fromEntries(Object.entries(holders).filter(([name, uid]) => isLive(ctx, name, uid)));
}

/** An ancestor of the head: committed before it, and so behind it. */
export function isAncestor(head: HeadSpec, digest: string): boolean {
  return head.committed !== null && digest !== head.committed.digest && head.history.includes(digest);
}

export type AbandonReason = "proposer_gone" | "expired";

export function abandonReason(proposal: Proposal, ctx: HeadContext): AbandonReason | undefined {
  if (!isLive(ctx, proposal.by, proposal.byUid)) return "proposer_gone";
  if (ctx.now.getTime() >= Date.parse(proposal.expiresAt)) return "expired";
  return undefined;
}

export interface Abandoned {
  proposal: Proposal;
  reason: AbandonReason;
}

/** The head without a proposal that can no longer be committed, and that proposal. */
export function clearAbandoned(head: HeadSpec, ctx: HeadContext): { head: HeadSpec; abandoned?: Abandoned } {
  if (!head.proposal) return { head };
  const reason = abandonReason(head.proposal, ctx);
  if (!reason) return { head };
  return { head: { ...head, proposal: null }, abandoned: { proposal: head.proposal, reason } };
}

/** Drops member records of pods that are gone: replaced (another uid), or unseen for a while. */
export function pruneMembers(head: HeadSpec, ctx: HeadContext): HeadSpec {
  const members: Record<string, Member> = {};
  for (const [name, member] of Object.entries(head.members)) {
    const pod = ctx.pods[name];
    const gone = pod ? pod.uid !== member.uid : ctx.now.getTime() - Date.parse(member.at) > PRUNE_GRACE_MS;
    if (!gone) members[name] = member;
  }
  return { ...head, members };
}

/**
 * Does a pod that exists now (terminating or not: a terminating pod still holds and serves its
 * state) hold the committed head, as a member that confirmed it or as a holder that staged it?
 */
export function headIsHeld(head: HeadSpec, ctx: Pick<HeadContext, "pods">): boolean {
  const committed = head.committed;
  if (!committed) return false;
  const exists = (name: string, uid: string) => ctx.pods[name]?.uid === uid;
  return (
    Object.entries(head.members).some(([name, m]) => m.digest === committed.digest && exists(name, m.uid)) ||
    Object.entries(committed.holders).some(([name, uid]) => exists(name, uid))
  );
}

/**
 * Rule L: a committed head that no existing pod holds is lost with the last instance, as the
 * operator guide has it ("with every instance gone, the user must set again"): the head
 * forgets it, so that the user's new first state is not refused as a second history. A new
 * history starts; the old one cannot come back, because nothing holds it.
 */
export function forgetLostHead(
  head: HeadSpec,
  ctx: Pick<HeadContext, "pods">,
  requesterHolds: string | null,
): HeadSpec {
  // The requester holds the digest it confirms, and the parent it proposes a child of.
  if (!head.committed || head.proposal || requesterHolds === head.committed.digest) return head;
  if (headIsHeld(head, ctx)) return head;
  return { ...head, committed: null, history: [] };
}

function commit(head: HeadSpec, proposal: Proposal, holders: Record<string, string>, now: Date): HeadSpec {
  const committed: Commit = {
    digest: proposal.digest,
    parent: proposal.parent,
    by: proposal.by,
    at: now.toISOString(),
    holders,
  };
  return {
    ...head,
    committed,
    history: [...head.history, proposal.digest].slice(-HISTORY_LIMIT),
    proposal: null,
  };
}

/** "sha256:aaaa… (head sha256:bbbb…, held by coordinator-0)" */
export function describeHead(head: HeadSpec): string {
  if (!head.committed) return "there is no committed state yet";
  const holder = podHolding(head, head.committed.digest);
  return `the head is ${short(head.committed.digest)}${holder ? `, held by pod ${holder}` : ""}`;
}

/** A pod that recorded `digest` (the first by name), if any. */
export function podHolding(head: HeadSpec, digest: string): string | undefined {
  return Object.keys(head.members)
    .sort()
    .find((name) => head.members[name]?.digest === digest);
}

// --- propose -------------------------------------------------------------------------------

export interface ProposeRequest {
  pod: string;
  uid: string;
  digest: string;
  parent: string | null;
  certSha256: string;
}

export type ProposeRefusal = "update_in_progress" | "stale_parent" | "conflict";

export type ProposeDecision = (
  | { kind: "accepted"; rule: "P5"; committed: boolean }
  | { kind: "pending"; rule: "P3" }
  | { kind: "committed"; rule: "P2" }
  | { kind: "refused"; rule: "P4" | "P6" | "P7"; reason: ProposeRefusal; message: string }
) & { /** The head to write; undefined: nothing changes. */ next?: HeadSpec; abandoned?: Abandoned };

export function decidePropose(read: HeadSpec, req: ProposeRequest, ctx: HeadContext): ProposeDecision {
  const cleared = clearAbandoned(read, ctx);
  const { abandoned } = cleared;
  const head = forgetLostHead(cleared.head, ctx, req.parent);
  const base = { ...(abandoned ? { abandoned, next: head } : {}) };
  const current = head.committed?.digest ?? null;

  if (current !== null && req.digest === current) return { ...base, kind: "committed", rule: "P2" };
  const pending = head.proposal;
  if (pending && pending.by === req.pod && pending.byUid === req.uid && pending.digest === req.digest) {
    if (pending.parent === req.parent) return { ...base, kind: "pending", rule: "P3" };
  }
  if (pending && !(pending.by === req.pod && pending.byUid === req.uid)) {
    return {
      ...base,
      kind: "refused",
      rule: "P4",
      reason: "update_in_progress",
      message:
        `pod ${pending.by} is committing ${short(pending.digest)} (until ${pending.expiresAt}); ` +
        "wait for it to be committed or abandoned, then update from the new head",
    };
  }
  if (req.parent === current) {
    const at = ctx.now;
    const proposal: Proposal = {
      digest: req.digest,
      parent: req.parent,
      by: req.pod,
      byUid: req.uid,
      certSha256: req.certSha256,
      at: at.toISOString(),
      expiresAt: new Date(at.getTime() + ctx.proposalTtlMs).toISOString(),
      holders: { [req.pod]: req.uid },
    };
    const holders = liveHolders(proposal.holders, ctx);
    const reached = Object.keys(holders).length >= (req.parent === null ? 1 : ctx.quorum);
    const next = reached ? commit(head, proposal, holders, at) : { ...head, proposal };
    return { ...base, kind: "accepted", rule: "P5", committed: reached, next: pruneMembers(next, ctx) };
  }
  const rule = req.parent !== null && isAncestor(head, req.parent) ? "P6" : "P7";
  return {
    ...base,
    kind: "refused",
    rule,
    reason: rule === "P6" ? "stale_parent" : "conflict",
    message:
      rule === "P6"
        ? `parent ${short(req.parent)} is behind the head: ${describeHead(head)}; fetch the head and update from it`
        : `parent ${short(req.parent)} is not the head (${describeHead(head)}): ${short(req.digest)} would ` +
          "start a second history; fetch the head and update from it",
  };
}

// --- hold ----------------------------------------------------------------------------------

export interface HoldRequest {
  pod: string;
  uid: string;
  digest: string;
}

export type HoldDecision = (
  | { kind: "committed"; rule: "H1" | "H3" }
  | { kind: "held"; rule: "H4" }
  | { kind: "refused"; rule: "H2"; reason: "no_proposal"; message: string }
) & { next?: HeadSpec; abandoned?: Abandoned };

export function decideHold(read: HeadSpec, req: HoldRequest, ctx: HeadContext): HoldDecision {
  const { head, abandoned } = clearAbandoned(read, ctx);
  const base = { ...(abandoned ? { abandoned, next: head } : {}) };
  if (head.committed?.digest === req.digest) return { ...base, kind: "committed", rule: "H1" };
  const proposal = head.proposal;
  if (!proposal || proposal.digest !== req.digest) {
    return {
      ...base,
      kind: "refused",
      rule: "H2",
      reason: "no_proposal",
      message:
        `no update of ${short(req.digest)} is pending` +
        (proposal ? ` (pod ${proposal.by} proposes ${short(proposal.digest)})` : "") +
        `; ${describeHead(head)}`,
    };
  }
  const holders = liveHolders({ ...proposal.holders, [req.pod]: req.uid }, ctx);
  if (Object.keys(holders).length >= ctx.quorum) {
    return {
      ...base,
      kind: "committed",
      rule: "H3",
      next: pruneMembers(commit(head, proposal, holders, ctx.now), ctx),
    };
  }
  if (proposal.holders[req.pod] === req.uid) return { ...base, kind: "held", rule: "H4" };
  return { ...base, kind: "held", rule: "H4", next: { ...head, proposal: { ...proposal, holders } } };
}

// --- abandon (the watch) -------------------------------------------------------------------

/** The head with an abandoned proposal cleared, or undefined when there is none to clear. */
export function decideAbandon(
  read: HeadSpec,
  ctx: HeadContext,
): { next: HeadSpec; abandoned: Abandoned } | undefined {
  const { head, abandoned } = clearAbandoned(read, ctx);
  return abandoned ? { next: head, abandoned } : undefined;
}

// --- confirm -------------------------------------------------------------------------------

export interface ConfirmRequest {
  pod: string;
  uid: string;
  digest: string;
  source: string | null;
  certSha256: string;
  restarts: Record<string, number>;
}

export type ConfirmedAs = "Initialized" | "RecoveredFromPeer" | "Updated";
export type ConfirmRefusal = "stale_state" | "conflicting_state" | "update_in_progress";

export type HeadConfirmDecision = (
  | { kind: "recorded"; rule: "C1" | "C6"; as: ConfirmedAs; previous?: Member }
  | { kind: "refused"; rule: "C2" | "C3" | "C4" | "C5"; reason: ConfirmRefusal; message: string }
) & { next?: HeadSpec; abandoned?: Abandoned };

export function decideConfirm(read: HeadSpec, req: ConfirmRequest, ctx: HeadContext): HeadConfirmDecision {
  const cleared = clearAbandoned(read, ctx);
  const { abandoned } = cleared;
  const head = forgetLostHead(cleared.head, ctx, req.digest);
  const base = { ...(abandoned ? { abandoned, next: head } : {}) };
  const refused = (
    rule: "C2" | "C3" | "C4" | "C5",
    reason: ConfirmRefusal,
    message: string,
  ): HeadConfirmDecision => ({ ...base, kind: "refused", rule, reason, message });

  const previous = memberOf(head, req.pod, req.uid);
  const member: Member = {
    uid: req.uid,
    digest: req.digest,
    certSha256: req.certSha256,
    source: req.source,
    restarts: req.restarts,
    at: ctx.now.toISOString(),
  };
  const record = (rule: "C1" | "C6", from: HeadSpec, as: ConfirmedAs): HeadConfirmDecision => {
    // A repeated confirmation (the sidecar repeats it while its app is ready) writes nothing.
    const same = rule === "C1" && previous !== undefined && sameRecord(previous, member);
    const next = same
      ? base.next
      : pruneMembers({ ...from, members: { ...from.members, [req.pod]: member } }, ctx);
    return {
      ...base,
      kind: "recorded",
      rule,
      as,
      ...(previous ? { previous } : {}),
      ...(next ? { next } : {}),
    };
  };

  if (head.committed) {
    if (req.digest === head.committed.digest) {
      const swapped = previous !== undefined && previous.digest !== req.digest;
      const as: ConfirmedAs = swapped
        ? "Updated"
        : req.source !== null
          ? "RecoveredFromPeer"
          : head.committed.parent === null
            ? "Initialized"
            : "Updated";
      return record("C1", head, as);
    }
    if (isAncestor(head, req.digest)) {
      return refused(
        "C2",
        "stale_state",
        `state ${short(req.digest)} is behind the head: ${describeHead(head)}; fetch the head from that pod`,
      );
    }
    if (head.proposal?.digest === req.digest) {
      return refused(
        "C3",
        "update_in_progress",
        `state ${short(req.digest)} is proposed by pod ${head.proposal.by} but not committed yet; ` +
          "confirm it once a quorum holds it",
      );
    }
    return refused(
      "C3",
      "conflicting_state",
      `state ${short(req.digest)} is not in StatefulSet ${head.statefulSet.name}'s history ` +
        `(${describeHead(head)}): refusing a second, different state (split brain)`,
    );
  }
  if (head.proposal) {
    return refused(
      "C4",
      "update_in_progress",
      `pod ${head.proposal.by} is committing the first state ${short(head.proposal.digest)}; ` +
        "wait for it, then recover from it",
    );
  }
  for (const [name, other] of Object.entries(head.members).sort(([a], [b]) => a.localeCompare(b))) {
    if (name !== req.pod && other.digest !== req.digest && isLive(ctx, name, other.uid)) {
      return refused(
        "C5",
        "conflicting_state",
        `pod ${name} of StatefulSet ${head.statefulSet.name} holds state ${short(other.digest)}; ` +
          `refusing a second, different state ${short(req.digest)} (split brain)`,
      );
    }
  }
  const committed: Commit = {
    digest: req.digest,
    parent: null,
    by: req.pod,
    at: ctx.now.toISOString(),
    holders: { [req.pod]: req.uid },
  };
  const first: HeadSpec = { ...head, committed, history: [req.digest] };
  return record("C6", first, req.source === null ? "Initialized" : "RecoveredFromPeer");
}

function sameRecord(a: Member, b: Member): boolean {
  return (
    a.uid === b.uid &&
    a.digest === b.digest &&
    a.certSha256 === b.certSha256 &&
    a.source === b.source &&
    JSON.stringify(sortedEntries(a.restarts)) === JSON.stringify(sortedEntries(b.restarts))
  );
}

function sortedEntries(counts: Record<string, number>): [string, number][] {
  return Object.entries(counts).sort(([a], [b]) => a.localeCompare(b));
}
