// Every rule of the head (src/handler/head/rules.ts), one table per decision, one row per
// rule and per case that the issue names: a child of the head, an ancestor, a sibling,
// concurrent proposals, an idempotent repeat, a proposer gone before the quorum, the quorum
// counted over live pods during a rollout.
import { describe, expect, it } from "vitest";
import {
  decideAbandon,
  decideConfirm,
  decideHold,
  decidePropose,
  quorumOf,
  type HeadContext,
  type PodNow,
} from "../../../src/handler/head/rules.ts";
import {
  emptyHead,
  type HeadSpec,
  type Member,
  type Proposal,
} from "../../../src/handler/head/state-head.ts";

const d = (c: string) => `sha256:${c.repeat(64)}`;
const A = d("a"); // first state
const B = d("b"); // child of A: the head
const C = d("c"); // a proposal, child of B
const X = d("e"); // a sibling: never in the history
const CERT = "8c".repeat(32);
const NOW = new Date("2026-12-05T12:00:00.000Z");
const uid = (n: number) => `uid-${n}`;
const pod = (n: number, terminating = false): [string, PodNow] => [
  `coordinator-${n}`,
  { uid: uid(n), terminating },
];

function ctx(over: Partial<HeadContext> = {}): HeadContext {
  return {
    now: NOW,
    pods: Object.fromEntries([pod(0), pod(1), pod(2)]),
    quorum: 2,
    proposalTtlMs: 60_000,
    ...over,
  };
}

function member(n: number, digest: string, over: Partial<Member> = {}): [string, Member] {
  return [
    `coordinator-${n}`,
    {
      uid: uid(n),
      digest,
      certSha256: CERT,
      source: null,
      restarts: { app: 0 },
      at: NOW.toISOString(),
      ...over,
    },
  ];
}

function proposal(by: number, digest: string, parent: string | null, over: Partial<Proposal> = {}): Proposal {
  return {
    digest,
    parent,
    by: `coordinator-${by}`,
    byUid: uid(by),
    certSha256: CERT,
    at: "2026-12-05T11:59:50.000Z",
    expiresAt: "2026-12-05T12:00:50.000Z",
    holders: { [`coordinator-${by}`]: uid(by) },
    ...over,
  };
}

/** Head B (A -> B), every pod holding it, no proposal. */
function headAtB(over: Partial<HeadSpec> = {}): HeadSpec {
  return {
    ...emptyHead({ name: "coordinator", uid: "sts-uid" }),
    committed: { digest: B, parent: A, by: "coordinator-1", at: "2026-12-05T11:00:00.000Z", holders: {} },
    history: [A, B],
    members: Object.fromEntries([member(0, B), member(1, B), member(2, B)]),
    ...over,
  };
}

describe("quorumOf", () => {
  it.each([
    // replicas, annotation, quorum
    [3, undefined, 2],
    [1, undefined, 1],
    [2, undefined, 2],
    [5, undefined, 3],
    [0, undefined, 1],
    [undefined, undefined, 1],
    [5, "1", 1],
    [3, "3", 3],
    [3, "0", 2],
    [3, "-1", 2],
    [3, "two", 2],
    [3, "1.5", 2],
  ] as const)("replicas %s, annotation %s -> %s", (replicas, annotation, quorum) => {
    expect(quorumOf(replicas, annotation)).toBe(quorum);
  });
});

describe("propose", () => {
  const rows: {
    rule: string;
    why: string;
    head: HeadSpec;
    req: { pod: number; digest: string; parent: string | null };
    c?: Partial<HeadContext>;
    want: Record<string, unknown>;
  }[] = [
    {
      rule: "P5",
      why: "a child of the head is accepted, the proposer holds it",
      head: headAtB(),
      req: { pod: 1, digest: C, parent: B },
      want: { kind: "accepted", committed: false, proposal: { digest: C, parent: B, by: "coordinator-1" } },
    },
    {
      rule: "L, P5",
      why: "every instance gone: a new first state (parent null) starts a new history",
      head: headAtB({
        members: Object.fromEntries([member(0, B, { uid: "old-0" }), member(1, B, { uid: "old-1" })]),
      }),
      req: { pod: 0, digest: X, parent: null },
      want: { kind: "accepted", committed: true, head: X, history: [X], proposal: null },
    },
    {
      rule: "L, P7",
      why: "a pod that exists holds the head: a new first state is a second history",
      head: headAtB({ members: Object.fromEntries([member(1, B)]) }),
      req: { pod: 0, digest: X, parent: null },
      want: { kind: "refused", reason: "conflict" },
    },
    {
      rule: "P5",
      why: "the first state (parent null) of an empty head: its proposer alone commits it (OrderedReady)",
      head: emptyHead({ name: "coordinator", uid: "sts-uid" }),
      req: { pod: 0, digest: A, parent: null },
      c: { quorum: 3 },
      want: { kind: "accepted", committed: true, head: A, history: [A], proposal: null },
    },
    {
      rule: "P5",
      why: "with a quorum of 1 the proposer alone commits at once",
      head: headAtB(),
      req: { pod: 1, digest: C, parent: B },
      c: { quorum: 1 },
      want: { kind: "accepted", committed: true, head: C, history: [A, B, C], proposal: null },
    },
    {
      rule: "P5",
      why: "the proposer replaces its own pending proposal",
      head: headAtB({ proposal: proposal(1, X, B) }),
      req: { pod: 1, digest: C, parent: B },
      want: { kind: "accepted", proposal: { digest: C } },
    },
    {
      rule: "P2",
      why: "the committed head again: already committed",
      head: headAtB(),
      req: { pod: 2, digest: B, parent: A },
      want: { kind: "committed", write: false },
    },
    {
      rule: "P3",
      why: "the same proposal again by the same pod: idempotent",
      head: headAtB({ proposal: proposal(1, C, B) }),
      req: { pod: 1, digest: C, parent: B },
      want: { kind: "pending", write: false },
    },
    {
      rule: "P4",
      why: "concurrent proposals: another pod's proposal is pending",
      head: headAtB({ proposal: proposal(1, C, B) }),
      req: { pod: 2, digest: X, parent: B },
      want: {
        kind: "refused",
        reason: "update_in_progress",
        message: /coordinator-1 is committing sha256:cccc/,
      },
    },
    {
      rule: "P4",
      why: "concurrent proposals of the same digest by two pods: the second waits too",
      head: headAtB({ proposal: proposal(1, C, B) }),
      req: { pod: 2, digest: C, parent: B },
      want: { kind: "refused", reason: "update_in_progress" },
    },
    {
      rule: "P6",
      why: "parent is an ancestor of the head",
      head: headAtB(),
      req: { pod: 2, digest: C, parent: A },
      want: { kind: "refused", reason: "stale_parent", message: /behind the head: the head is sha256:bbbb/ },
    },
    {
      rule: "P7",
      why: "parent is a sibling of the head (never committed)",
      head: headAtB(),
      req: { pod: 2, digest: C, parent: X },
      want: { kind: "refused", reason: "conflict", message: /second history/ },
    },
    {
      rule: "P7",
      why: "parent null once a head exists: a second first state",
      head: headAtB(),
      req: { pod: 2, digest: X, parent: null },
      want: { kind: "refused", reason: "conflict" },
    },
    {
      rule: "P1+P5",
      why: "a proposal whose proposer is gone is abandoned, the new one accepted",
      head: headAtB({ proposal: proposal(1, X, B) }),
      req: { pod: 2, digest: C, parent: B },
      c: { pods: Object.fromEntries([pod(0), pod(2)]) },
      want: { kind: "accepted", abandoned: "proposer_gone", proposal: { digest: C, by: "coordinator-2" } },
    },
    {
      rule: "P1+P5",
      why: "a proposal past its expiry is abandoned",
      head: headAtB({ proposal: proposal(1, X, B, { expiresAt: "2026-12-05T11:59:59.000Z" }) }),
      req: { pod: 2, digest: C, parent: B },
      want: { kind: "accepted", abandoned: "expired" },
    },
    {
      rule: "P1+P4",
      why: "a proposal of a terminating proposer is abandoned; one of a live pod is not",
      head: headAtB({ proposal: proposal(1, X, B) }),
      req: { pod: 2, digest: C, parent: B },
      c: { pods: Object.fromEntries([pod(0), pod(1), pod(2)]) },
      want: { kind: "refused", reason: "update_in_progress" },
    },
    {
      rule: "P1+P2",
      why: "a replaced proposer (another uid) is gone; its abandonment is written even on a 200",
      head: headAtB({ proposal: proposal(1, X, B) }),
      req: { pod: 2, digest: B, parent: A },
      c: {
        pods: Object.fromEntries([pod(0), ["coordinator-1", { uid: "new", terminating: false }], pod(2)]),
      },
      want: { kind: "committed", abandoned: "proposer_gone", proposal: null },
    },
  ];
  it.each(rows)("$rule: $why", ({ head, req, c, want }) => {
    const decision = decidePropose(
      head,
      {
        pod: `coordinator-${req.pod}`,
        uid: uid(req.pod),
        digest: req.digest,
        parent: req.parent,
        certSha256: CERT,
      },
      ctx(c),
    );
    expect(decision.kind).toBe(want["kind"]);
    if ("reason" in want) expect(decision).toMatchObject({ reason: want["reason"] });
    if (want["message"] instanceof RegExp && decision.kind === "refused")
      expect(decision.message).toMatch(want["message"]);
    if ("committed" in want && decision.kind === "accepted")
      expect(decision.committed).toBe(want["committed"]);
    if (want["write"] === false) expect(decision.next).toBeUndefined();
    if ("abandoned" in want) expect(decision.abandoned?.reason).toBe(want["abandoned"]);
    if ("proposal" in want) {
      if (want["proposal"] === null) expect(decision.next?.proposal).toBeNull();
      else expect(decision.next?.proposal).toMatchObject(want["proposal"] as object);
    }
    if ("head" in want) expect(decision.next?.committed?.digest).toBe(want["head"]);
    if ("history" in want) expect(decision.next?.history).toEqual(want["history"]);
    // The committed head never moves except by a commit (P5 at quorum).
    if (!(decision.kind === "accepted" && decision.committed) && decision.next) {
      expect(decision.next.committed).toEqual(head.committed);
    }
  });

  it("a new proposal expires proposalTtlMs after it was made", () => {
    const decision = decidePropose(
      headAtB(),
      { pod: "coordinator-1", uid: uid(1), digest: C, parent: B, certSha256: CERT },
      ctx({ proposalTtlMs: 5_000 }),
    );
    expect(decision.next?.proposal).toMatchObject({
      at: NOW.toISOString(),
      expiresAt: "2026-12-05T12:00:05.000Z",
    });
  });
});

describe("hold", () => {
  const rows: {
    rule: string;
    why: string;
    head: HeadSpec;
    pod: number;
    digest: string;
    c?: Partial<HeadContext>;
    want: { kind: string; head?: string; holders?: string[]; write?: boolean; reason?: string };
  }[] = [
    {
      rule: "H3",
      why: "the second holder of three replicas reaches the quorum: committed",
      head: headAtB({ proposal: proposal(1, C, B) }),
      pod: 2,
      digest: C,
      want: { kind: "committed", head: C, holders: ["coordinator-1", "coordinator-2"] },
    },
    {
      rule: "H4",
      why: "below the quorum (3 of 3 needed): held",
      head: headAtB({ proposal: proposal(1, C, B) }),
      pod: 2,
      digest: C,
      c: { quorum: 3 },
      want: { kind: "held", head: B, holders: ["coordinator-1", "coordinator-2"] },
    },
    {
      rule: "H4",
      why: "the same hold again: nothing to write",
      head: headAtB({
        proposal: proposal(1, C, B, { holders: { "coordinator-1": uid(1), "coordinator-2": uid(2) } }),
      }),
      pod: 2,
      digest: C,
      c: { quorum: 3 },
      want: { kind: "held", write: false },
    },
    {
      rule: "H4",
      why: "rollout: a holder that was replaced (other uid) does not count",
      head: headAtB({
        proposal: proposal(1, C, B, { holders: { "coordinator-1": uid(1), "coordinator-0": "old" } }),
      }),
      pod: 2,
      digest: C,
      c: { quorum: 3 },
      want: { kind: "held", holders: ["coordinator-1", "coordinator-2"] },
    },
    {
      rule: "H4",
      why: "rollout: a terminating holder does not count",
      head: headAtB({
        proposal: proposal(1, C, B, { holders: { "coordinator-1": uid(1), "coordinator-0": uid(0) } }),
      }),
      pod: 2,
      digest: C,
      c: { quorum: 3, pods: Object.fromEntries([pod(0, true), pod(1), pod(2)]) },
      want: { kind: "held", holders: ["coordinator-1", "coordinator-2"] },
    },
    {
      rule: "H3",
      why: "rollout: with the old holder gone, a new pod's hold completes the quorum",
      head: headAtB({
        proposal: proposal(1, C, B, { holders: { "coordinator-1": uid(1), "coordinator-0": "old" } }),
      }),
      pod: 0,
      digest: C,
      want: { kind: "committed", head: C, holders: ["coordinator-0", "coordinator-1"] },
    },
    {
      rule: "H1",
      why: "a hold of the committed head: committed, nothing to write",
      head: headAtB(),
      pod: 2,
      digest: B,
      want: { kind: "committed", write: false },
    },
    {
      rule: "H2",
      why: "no proposal pending",
      head: headAtB(),
      pod: 2,
      digest: C,
      want: { kind: "refused", reason: "no_proposal" },
    },
    {
      rule: "H2",
      why: "another digest is proposed",
      head: headAtB({ proposal: proposal(1, C, B) }),
      pod: 2,
      digest: X,
      want: { kind: "refused", reason: "no_proposal" },
    },
    {
      rule: "P1+H2",
      why: "the proposer died before the quorum: abandoned, the hold refused, the head unchanged",
      head: headAtB({ proposal: proposal(1, C, B) }),
      pod: 2,
      digest: C,
      c: { pods: Object.fromEntries([pod(0), pod(2)]) },
      want: { kind: "refused", reason: "no_proposal", head: B },
    },
  ];
  it.each(rows)("$rule: $why", ({ head, pod: n, digest, c, want }) => {
    const decision = decideHold(head, { pod: `coordinator-${n}`, uid: uid(n), digest }, ctx(c));
    expect(decision.kind).toBe(want.kind);
    if (want.reason) expect(decision).toMatchObject({ reason: want.reason });
    if (want.write === false) expect(decision.next).toBeUndefined();
    if (want.head) expect((decision.next ?? head).committed?.digest).toBe(want.head);
    if (want.holders) {
      const next = decision.next!;
      const holders = next.proposal?.holders ?? next.committed?.holders;
      expect(Object.keys(holders ?? {}).sort()).toEqual(want.holders);
    }
    if (decision.kind === "committed" && decision.next) {
      expect(decision.next.proposal).toBeNull();
      expect(decision.next.history.at(-1)).toBe(digest);
      expect(decision.next.committed).toMatchObject({
        parent: B,
        by: "coordinator-1",
        at: NOW.toISOString(),
      });
    }
  });
});

describe("abandon", () => {
  it.each([
    ["the proposer was deleted", Object.fromEntries([pod(0), pod(2)]), undefined, "proposer_gone"],
    [
      "the proposer is terminating",
      Object.fromEntries([pod(0), pod(1, true), pod(2)]),
      undefined,
      "proposer_gone",
    ],
    [
      "the proposer was replaced",
      { ...Object.fromEntries([pod(0), pod(2)]), "coordinator-1": { uid: "x", terminating: false } },
      undefined,
      "proposer_gone",
    ],
    ["the proposal expired", undefined, "2026-12-05T12:00:00.000Z", "expired"],
    ["a live, unexpired proposal stays", undefined, undefined, undefined],
  ] as const)("%s", (_why, pods, expiresAt, reason) => {
    const head = headAtB({ proposal: proposal(1, C, B, expiresAt ? { expiresAt } : {}) });
    const decision = decideAbandon(head, ctx(pods ? { pods } : {}));
    expect(decision?.abandoned.reason).toBe(reason);
    if (decision) {
      // The committed head is untouched: nobody is stale behind a state nobody holds.
      expect(decision.next).toEqual({ ...head, proposal: null });
    }
  });

  it("nothing to abandon without a proposal", () => {
    expect(decideAbandon(headAtB(), ctx())).toBeUndefined();
  });
});

describe("confirm", () => {
  const empty = emptyHead({ name: "coordinator", uid: "sts-uid" });
  const rows: {
    rule: string;
    why: string;
    head: HeadSpec;
    pod: number;
    digest: string;
    source: string | null;
    c?: Partial<HeadContext>;
    want: { kind: string; as?: string; reason?: string; write?: boolean; head?: string; message?: RegExp };
  }[] = [
    {
      rule: "C1",
      why: "the committed head from a peer",
      head: headAtB({ members: Object.fromEntries([member(0, B)]) }),
      pod: 2,
      digest: B,
      source: "coordinator-0",
      want: { kind: "recorded", as: "RecoveredFromPeer", head: B },
    },
    {
      rule: "C1",
      why: "the committing pod confirms its update",
      head: headAtB({ members: Object.fromEntries([member(1, A)]) }),
      pod: 1,
      digest: B,
      source: null,
      want: { kind: "recorded", as: "Updated" },
    },
    {
      rule: "C1",
      why: "a stale pod swapped the head in from a peer",
      head: headAtB({ members: Object.fromEntries([member(0, B), member(2, A)]) }),
      pod: 2,
      digest: B,
      source: "coordinator-0",
      want: { kind: "recorded", as: "Updated" },
    },
    {
      rule: "C1",
      why: "the first state again by the pod that initialized it",
      head: {
        ...empty,
        committed: { digest: A, parent: null, by: "coordinator-0", at: NOW.toISOString(), holders: {} },
        history: [A],
      },
      pod: 0,
      digest: A,
      source: null,
      want: { kind: "recorded", as: "Initialized" },
    },
    {
      rule: "C1",
      why: "a repeated confirmation writes nothing",
      head: headAtB(),
      pod: 2,
      digest: B,
      source: null,
      want: { kind: "recorded", write: false },
    },
    {
      rule: "C2",
      why: "an ancestor of the head",
      head: headAtB({ members: Object.fromEntries([member(0, B)]) }),
      pod: 2,
      digest: A,
      source: null,
      want: {
        kind: "refused",
        reason: "stale_state",
        message: /sha256:aaaa.* is behind the head: the head is sha256:bbbb.*, held by pod coordinator-0/,
      },
    },
    {
      rule: "C3",
      why: "a sibling of the head",
      head: headAtB(),
      pod: 2,
      digest: X,
      source: null,
      want: { kind: "refused", reason: "conflicting_state", message: /split brain/ },
    },
    {
      rule: "C3",
      why: "the pending proposal, before its quorum: not yet",
      head: headAtB({ proposal: proposal(1, C, B) }),
      pod: 1,
      digest: C,
      source: null,
      want: { kind: "refused", reason: "update_in_progress", message: /not committed yet/ },
    },
    {
      rule: "C4",
      why: "no head yet, a first state is being committed",
      head: { ...empty, proposal: proposal(0, A, null) },
      pod: 2,
      digest: X,
      source: null,
      want: { kind: "refused", reason: "update_in_progress" },
    },
    {
      rule: "C5",
      why: "no head, a live member holds another state (finding 2: the second of two first states)",
      head: { ...empty, members: Object.fromEntries([member(0, A)]) },
      pod: 1,
      digest: X,
      source: null,
      want: { kind: "refused", reason: "conflicting_state" },
    },
    {
      rule: "C6",
      why: "no head: the first state becomes the head",
      head: empty,
      pod: 0,
      digest: A,
      source: null,
      want: { kind: "recorded", as: "Initialized", head: A },
    },
    {
      rule: "L, C6",
      why: "every instance gone (no pod that exists holds the head): the user's new first state is the head",
      head: headAtB({
        committed: {
          digest: B,
          parent: A,
          by: "coordinator-1",
          at: "2026-12-05T11:00:00.000Z",
          holders: { "coordinator-2": "old-2" },
        },
        members: Object.fromEntries([member(0, B, { uid: "old-0" }), member(1, B, { uid: "old-1" })]),
      }),
      pod: 0,
      digest: X,
      source: null,
      want: { kind: "recorded", as: "Initialized", head: X },
    },
    {
      rule: "L, C3",
      why: "a terminating pod still holds the head: a new first state is a second history",
      head: headAtB({ members: Object.fromEntries([member(2, B)]) }),
      pod: 0,
      digest: X,
      source: null,
      c: { pods: Object.fromEntries([pod(0), pod(2, true)]) },
      want: { kind: "refused", reason: "conflicting_state" },
    },
    {
      rule: "L, C3",
      why: "a pod that staged the head as a holder still holds it",
      head: headAtB({
        committed: {
          digest: B,
          parent: A,
          by: "coordinator-1",
          at: "2026-12-05T11:00:00.000Z",
          holders: { "coordinator-2": uid(2) },
        },
        members: {},
      }),
      pod: 0,
      digest: X,
      source: null,
      want: { kind: "refused", reason: "conflicting_state" },
    },
    {
      rule: "C6",
      why: "no head, a member of a deleted pod does not count",
      head: { ...empty, members: Object.fromEntries([member(1, X, { uid: "gone" })]) },
      pod: 0,
      digest: A,
      source: null,
      want: { kind: "recorded", head: A },
    },
  ];
  it.each(rows)("$rule: $why", ({ head, pod: n, digest, source, c, want }) => {
    const decision = decideConfirm(
      head,
      { pod: `coordinator-${n}`, uid: uid(n), digest, source, certSha256: CERT, restarts: { app: 0 } },
      ctx(c),
    );
    expect(decision.kind).toBe(want.kind);
    if (want.as) expect(decision).toMatchObject({ as: want.as });
    if (want.reason) expect(decision).toMatchObject({ reason: want.reason });
    if (want.message && decision.kind === "refused") expect(decision.message).toMatch(want.message);
    if (want.write === false) expect(decision.next).toBeUndefined();
    if (decision.kind === "refused") expect(decision.next).toBeUndefined();
    if (want.head) expect(decision.next?.committed?.digest).toBe(want.head);
    if (decision.kind === "recorded" && decision.next) {
      expect(decision.next.members[`coordinator-${n}`]).toMatchObject({ uid: uid(n), digest, source });
    }
  });

  it("two first states through two replicas: whichever writes second is refused on the winner's head", () => {
    const c = ctx();
    const first = decideConfirm(
      emptyHead({ name: "coordinator", uid: "sts-uid" }),
      { pod: "coordinator-0", uid: uid(0), digest: A, source: null, certSha256: CERT, restarts: {} },
      c,
    );
    // The loser's CAS fails; it reads the winner's head and decides again.
    const second = decideConfirm(
      first.next!,
      { pod: "coordinator-1", uid: uid(1), digest: X, source: null, certSha256: CERT, restarts: {} },
      c,
    );
    expect(second).toMatchObject({ kind: "refused", reason: "conflicting_state" });
  });

  it("prunes the member records of replaced pods on write", () => {
    const head = headAtB({ members: Object.fromEntries([member(0, B, { uid: "old" }), member(1, B)]) });
    const decision = decideConfirm(
      head,
      {
        pod: "coordinator-2",
        uid: uid(2),
        digest: B,
        source: "coordinator-1",
        certSha256: CERT,
        restarts: {},
      },
      ctx(),
    );
    expect(Object.keys(decision.next!.members).sort()).toEqual(["coordinator-1", "coordinator-2"]);
  });
});
