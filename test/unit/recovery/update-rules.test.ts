import { describe, expect, it } from "vitest";
import type { Head, HeadProposal } from "../../../src/recovery/head-client.ts";
import { decideUpdate, NO_STATE, type UpdateLook } from "../../../src/recovery/update-rules.ts";

const d = (c: string) => `sha256:${c.repeat(64)}`;
const [A, B, C, X] = [d("a"), d("b"), d("c"), d("e")];
const proposal = (digest: string, parent: string | null, by: string): HeadProposal => ({
  digest,
  parent,
  by,
  ip: "10.0.0.2",
  port: 7443,
  certSha256: "f".repeat(64),
});
const head = (committed: string | null, p: HeadProposal | null = null): Head => ({ committed, proposal: p });

const look = (over: Partial<UpdateLook>): UpdateLook => ({
  self: "coordinator-1",
  live: A,
  base: A,
  head: head(A),
  held: new Set(),
  refused: new Set(),
  committing: false,
  ...over,
});

describe("decideUpdate (the sidecar's rules about the head)", () => {
  it.each([
    ["U4 in sync: the live state is the head", look({}), { rule: "U4", kind: "none" }],
    [
      "U1 the app's commit is in flight: nothing else happens",
      look({ committing: true, head: head(B) }),
      { rule: "U1" },
    ],
    [
      "U2 another pod proposes a child of the head: hold it",
      look({ head: head(A, proposal(B, A, "coordinator-0")) }),
      { rule: "U2", kind: "hold", digest: B },
    ],
    [
      "U2 a stale pod holds a proposal too (staging does not touch the live state)",
      look({ live: C, base: C, head: head(A, proposal(B, A, "coordinator-0")) }),
      { rule: "U2", kind: "hold", digest: B },
    ],
    [
      "held already: in sync, nothing more",
      look({ head: head(A, proposal(B, A, "coordinator-0")), held: new Set([B]) }),
      { rule: "U4" },
    ],
    [
      "this pod's own proposal is not held again",
      look({ live: B, base: A, head: head(A, proposal(B, A, "coordinator-1")) }),
      { rule: "U8", kind: "none" },
    ],
    [
      "U3 no head yet and the app holds state: nothing, its confirmation makes it the first head",
      look({ base: NO_STATE, head: head(null) }),
      { rule: "U3", kind: "none" },
    ],
    [
      "U2 no head yet, another pod proposes a first state: hold it",
      look({ live: undefined, base: undefined, head: head(null, proposal(B, null, "coordinator-0")) }),
      { rule: "U2", kind: "hold", digest: B },
    ],
    [
      "U5 no head and no state: the recovery loop's job",
      look({ live: undefined, base: undefined, head: head(null) }),
      { rule: "U5" },
    ],
    [
      "U5 a head but no state here: the recovery loop's job",
      look({ live: undefined, base: undefined }),
      { rule: "U5" },
    ],
    [
      "U6 behind the head, the app wrote nothing: catch up",
      look({ live: A, base: A, head: head(B) }),
      { rule: "U6", kind: "catch-up", digest: B },
    ],
    [
      "U6 a restarted sidecar beside an old state (no record): catch up, not refuse",
      look({ live: A, base: undefined, head: head(B) }),
      { rule: "U6", kind: "catch-up", digest: B },
    ],
    [
      "U7 the app wrote at the head, nobody proposing: propose it with the head as parent",
      look({ live: B, base: A, head: head(A) }),
      { rule: "U7", kind: "propose", digest: B, parent: A },
    ],
    [
      "U8 the app wrote at the head while another pod proposes: wait for that one",
      look({ live: B, base: A, head: head(A, proposal(C, A, "coordinator-0")), held: new Set([C]) }),
      { rule: "U8" },
    ],
    [
      "U9 the app wrote while this pod was behind: keep it aside, catch up",
      look({ live: X, base: A, head: head(B) }),
      { rule: "U9", kind: "refuse", digest: X, then: B },
    ],
    [
      "U9 the other proposal won while the app's write waited: keep it aside, catch up",
      look({ live: X, base: A, head: head(C) }),
      { rule: "U9", kind: "refuse", digest: X, then: C },
    ],
    [
      "U6 a write refused already: catch up without refusing again",
      look({ live: X, base: A, head: head(A), refused: new Set([X]) }),
      { rule: "U6", kind: "catch-up", digest: A },
    ],
    [
      "U9 the directory was empty at the first look, and the app wrote while another pod's first state became the head",
      look({ live: X, base: NO_STATE, head: head(B) }),
      { rule: "U9", kind: "refuse", digest: X, then: B },
    ],
  ])("%s", (_name, input, expected) => {
    expect(decideUpdate(input)).toMatchObject(expected);
  });
});
