import { describe, expect, it } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import type { RecoveredRequest } from "../../../src/handler/api.ts";
import { parseRecord } from "../../../src/handler/condition.ts";
import { decideConfirmation } from "../../../src/handler/confirm.ts";
import { owningStatefulSet } from "../../../src/handler/pod.ts";
import {
  CERT,
  coordinatorPod,
  DIGEST,
  OTHER_DIGEST,
  recorded,
  restarted,
  setCondition,
  withoutCondition,
} from "./pods.ts";

const first: RecoveredRequest = { digest: DIGEST, source: null, certSha256: CERT };
const fromPeer: RecoveredRequest = { digest: DIGEST, source: "coordinator-0", certSha256: CERT };

function decide(caller: V1Pod, request: RecoveredRequest, others: V1Pod[]) {
  return decideConfirmation(caller, owningStatefulSet(caller)!, request, [caller, ...others]);
}

function refusal(decision: ReturnType<typeof decide>): string {
  return decision.kind === "refuse" ? decision.refusal.reason : decision.kind;
}

describe("decideConfirmation", () => {
  it("marks the first instance Initialized and records digest, certificate and restart counts", () => {
    const caller = restarted(withoutCondition(coordinatorPod(0)), 2);
    const decision = decide(caller, first, []);
    expect(decision).toMatchObject({
      kind: "write",
      desired: { status: "True", reason: "Initialized" },
      event: {
        type: "Normal",
        reason: "Initialized",
        message: `Initialized with state ${DIGEST} by its user`,
      },
    });
    const message = decision.kind === "write" ? decision.desired.message : "";
    expect(parseRecord(message)).toEqual({ digest: DIGEST, certSha256: CERT, restarts: { coordinator: 2 } });
  });

  it("marks a pod RecoveredFromPeer and names the peer and the digest in the Event", () => {
    const decision = decide(withoutCondition(coordinatorPod(1)), fromPeer, [coordinatorPod(0)]);
    expect(decision).toMatchObject({
      kind: "write",
      desired: { status: "True", reason: "RecoveredFromPeer" },
      event: {
        type: "Normal",
        reason: "RecoveredFromPeer",
        message: `Recovered state ${DIGEST} from peer coordinator-0`,
      },
    });
  });

  it("skips the write when the condition already says the same (periodic re-confirmation)", () => {
    const decision = decide(withoutCondition(coordinatorPod(1)), fromPeer, [coordinatorPod(0)]);
    if (decision.kind !== "write") throw new Error("expected a write");
    const confirmed = setCondition(
      coordinatorPod(1),
      "True",
      decision.desired.reason,
      decision.desired.message,
    );
    expect(decide(confirmed, fromPeer, [coordinatorPod(0)]).kind).toBe("unchanged");
  });

  it("re-confirms a pod whose app restarted, with the new restart count", () => {
    const caller = restarted(coordinatorPod(1), 1);
    setCondition(caller, "False", "AppRestarted", "App container coordinator restarted");
    const decision = decide(caller, fromPeer, [coordinatorPod(0)]);
    expect(decision.kind).toBe("write");
    expect(parseRecord(decision.kind === "write" ? decision.desired.message : "")?.restarts).toEqual({
      coordinator: 1,
    });
  });

  it("accepts a source that has gone since (deleted during a rollout)", () => {
    expect(refusal(decide(withoutCondition(coordinatorPod(1)), fromPeer, []))).toBe("write");
  });

  it("refuses the pod itself as its source", () => {
    expect(refusal(decide(withoutCondition(coordinatorPod(0)), fromPeer, []))).toBe("bad_request");
  });

  it("refuses a source whose name is not of the StatefulSet", () => {
    const request = { ...fromPeer, source: "vault-0" };
    expect(refusal(decide(withoutCondition(coordinatorPod(1)), request, []))).toBe("not_a_peer");
  });

  it("refuses a namesake source owned by another StatefulSet", () => {
    const impostor = coordinatorPod(0);
    impostor.metadata!.ownerReferences![0]!.uid = "11111111-2222-4333-8444-555555555555";
    expect(refusal(decide(withoutCondition(coordinatorPod(1)), fromPeer, [impostor]))).toBe("not_a_peer");
  });

  it("refuses a source that was never recovered", () => {
    const source = withoutCondition(coordinatorPod(0));
    expect(refusal(decide(withoutCondition(coordinatorPod(1)), fromPeer, [source]))).toBe(
      "source_not_recovered",
    );
  });

  it("refuses a digest that the source never recorded", () => {
    const request = { ...fromPeer, digest: OTHER_DIGEST };
    expect(refusal(decide(withoutCondition(coordinatorPod(1)), request, [coordinatorPod(0)]))).toBe(
      "source_digest_mismatch",
    );
  });

  it("refuses a second, independent initialization (split brain)", () => {
    const request = { ...first, digest: OTHER_DIGEST };
    expect(refusal(decide(withoutCondition(coordinatorPod(1)), request, [coordinatorPod(0)]))).toBe(
      "conflicting_state",
    );
  });

  it("refuses a state that differs from one a restarted sibling still holds", () => {
    const sibling = recorded(coordinatorPod(0));
    setCondition(sibling, "False", "AppRestarted", sibling.status!.conditions!.at(-1)!.message!);
    const request = { ...fromPeer, source: "coordinator-2", digest: OTHER_DIGEST };
    expect(refusal(decide(withoutCondition(coordinatorPod(1)), request, [sibling]))).toBe(
      "conflicting_state",
    );
  });

  it("ignores pods of other StatefulSets and namespaces", () => {
    const elsewhere = coordinatorPod(0);
    elsewhere.metadata!.namespace = "other";
    const foreign = coordinatorPod(2);
    foreign.metadata!.ownerReferences![0]!.uid = "11111111-2222-4333-8444-555555555555";
    const request = { ...first, digest: OTHER_DIGEST };
    expect(refusal(decide(withoutCondition(coordinatorPod(1)), request, [elsewhere, foreign]))).toBe("write");
  });

  it("accepts an initialization with the state that the StatefulSet already holds", () => {
    expect(refusal(decide(withoutCondition(coordinatorPod(1)), first, [coordinatorPod(0)]))).toBe("write");
  });
});
