// What the sidecar does about the StatefulSet's head, decided from one look at the pod: a pure
// function, so that every rule is a row of a table test (test/unit/recovery/update-rules.test.ts).
// The updater (updater.ts) takes the look, asks this, and does what it says.
//
//   U1  a commit of this pod's app is in flight             -> nothing (the commit call acts)
//   U2  another pod proposes a child of the head, not held  -> hold it: stage it from the
//                                                              proposer, tell the handler
//   U3  no committed head, the app holds state               -> nothing: the first state is
//       confirmed (confirmer.ts), and the handler makes the first confirmed state the head. Not a
//       proposal: its quorum would count `spec.replicas`, while OrderedReady starts the second
//       pod only once the first is Ready, so a StatefulSet scaled before its first state is
//       committed could never commit it.
//   U4  the live state is the head                           -> in sync
//   U5  no live state                                        -> nothing (the recovery loop's job)
//   U6  the live state is what this pod last held           -> catch up: swap the head in
//       (the pod fell behind an update through another pod)
//   U7  the app wrote a new state (live != last held) at the head, nobody else proposing
//                                                            -> propose it with the head as parent
//   U8  the app wrote, and another pod's proposal is pending -> wait for it
//   U9  the app wrote a state that cannot be a child of the head (this pod was behind, or the
//       write was refused)                                   -> keep it aside, catch up
import type { Head } from "./head-client.ts";

export interface UpdateLook {
  /** This pod's name. */
  self: string;
  /** Digest of the live state in the directory; undefined: none. */
  live: string | undefined;
  /**
   * The committed state this pod last held live (swapped in, committed, recovered, or found at
   * startup); NO_STATE when the directory was empty at the first look. A live digest other than
   * this one was written by the app. Undefined: not looked yet.
   */
  base: string | undefined;
  head: Head;
  /** Proposals this pod has staged and reported as held. */
  held: ReadonlySet<string>;
  /** Unasked writes already refused and kept aside. */
  refused: ReadonlySet<string>;
  /** A commit of the app's (local commit API) is in flight. */
  committing: boolean;
}

/** `base` of a pod whose directory was empty when the sidecar first looked. */
export const NO_STATE = "";

export type UpdateAction =
  | { rule: "U1" | "U3" | "U4" | "U5" | "U8"; kind: "none" }
  | { rule: "U2"; kind: "hold"; digest: string }
  | { rule: "U7"; kind: "propose"; digest: string; parent: string }
  | { rule: "U6"; kind: "catch-up"; digest: string }
  | { rule: "U9"; kind: "refuse"; digest: string; then: string };

export function decideUpdate(look: UpdateLook): UpdateAction {
  const { head, live } = look;
  if (look.committing) return { rule: "U1", kind: "none" };
  const proposal = head.proposal;
  if (
    proposal &&
    proposal.by !== look.self &&
    !look.held.has(proposal.digest) &&
    proposal.parent === head.committed
  ) {
    return { rule: "U2", kind: "hold", digest: proposal.digest };
  }
  if (head.committed === null) {
    if (live === undefined) return { rule: "U5", kind: "none" };
    return { rule: "U3", kind: "none" };
  }
  if (live === head.committed) return { rule: "U4", kind: "none" };
  if (live === undefined) return { rule: "U5", kind: "none" };
  // Without a record (a sidecar restarted beside its state), the live state counts as held.
  const base = look.base ?? live;
  if (live === base || look.refused.has(live))
    return { rule: "U6", kind: "catch-up", digest: head.committed };
  if (base === head.committed) {
    if (proposal) return { rule: "U8", kind: "none" };
    return { rule: "U7", kind: "propose", digest: live, parent: head.committed };
  }
  return { rule: "U9", kind: "refuse", digest: live, then: head.committed };
}
