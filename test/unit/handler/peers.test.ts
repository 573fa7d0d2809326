import { describe, expect, it } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import { owningStatefulSet } from "../../../src/handler/pod.ts";
import { hasPeer, selectPeers } from "../../../src/handler/peers.ts";
import {
  CERT,
  coordinatorPod,
  DIGEST,
  headWith,
  memberOf,
  notReady,
  OTHER_DIGEST,
  restarted,
  setCondition,
  STATEFULSET_UID,
  terminating,
  uidOf,
  withoutCondition,
} from "./pods.ts";

/** The head with every pod 0-4 recorded as holding DIGEST. */
const HEAD = headWith([0, 1, 2, 3, 4].map((n) => memberOf(coordinatorPod(n))));

/** The peers' names; every case also checks that hasPeer says the same as the list. */
function peersOf(caller: V1Pod, others: V1Pod[], head = HEAD): string[] {
  const pods = [caller, ...others];
  const names = selectPeers(caller, owningStatefulSet(caller)!, pods, head).map((p) => p.pod);
  expect(hasPeer(caller, owningStatefulSet(caller)!, pods, head)).toBe(names.length > 0);
  return names;
}

describe("selectPeers", () => {
  it("answers the Ready, recovered pods of the caller's StatefulSet with address, port, digest and cert", () => {
    const caller = withoutCondition(coordinatorPod(2));
    expect(
      selectPeers(caller, owningStatefulSet(caller)!, [coordinatorPod(1), caller, coordinatorPod(0)], HEAD),
    ).toEqual([
      {
        pod: "coordinator-0",
        uid: uidOf(0),
        ip: "10.244.0.12",
        port: 7443,
        digest: DIGEST,
        certSha256: CERT,
      },
      {
        pod: "coordinator-1",
        uid: uidOf(1),
        ip: "10.244.0.13",
        port: 7443,
        digest: DIGEST,
        certSha256: CERT,
      },
    ]);
    expect(STATEFULSET_UID).toBe(owningStatefulSet(caller)?.uid);
  });

  it("never answers the caller itself", () => {
    expect(peersOf(coordinatorPod(0), [])).toEqual([]);
  });

  it("leaves out pods that are not Ready, not recovered, reset, or terminating", () => {
    const reset = setCondition(restarted(coordinatorPod(3), 1), "False", "AppRestarted", "restarted");
    const others = [
      notReady(coordinatorPod(0)),
      withoutCondition(coordinatorPod(1)),
      terminating(coordinatorPod(2)),
      reset,
    ];
    expect(peersOf(withoutCondition(coordinatorPod(4)), others)).toEqual([]);
  });

  it("leaves out pods of another StatefulSet and of another namespace", () => {
    const foreign = coordinatorPod(0);
    foreign.metadata!.ownerReferences![0]!.uid = "11111111-2222-4333-8444-555555555555";
    const elsewhere = coordinatorPod(1);
    elsewhere.metadata!.namespace = "other";
    expect(peersOf(withoutCondition(coordinatorPod(2)), [foreign, elsewhere])).toEqual([]);
  });

  it("leaves out a peer without IP, or without peer port", () => {
    const noIp = coordinatorPod(0);
    delete noIp.status!.podIP;
    const noPort = coordinatorPod(1);
    noPort.spec!.initContainers![0]!.ports = [];
    expect(peersOf(withoutCondition(coordinatorPod(2)), [noIp, noPort])).toEqual([]);
  });

  it("leaves out a True pod without a member record, or with the record of a predecessor (other uid)", () => {
    const head = headWith([memberOf(coordinatorPod(1), { uid: "predecessor" })]);
    const byHand = setCondition(coordinatorPod(3), "True", "Initialized", "set by hand");
    expect(peersOf(withoutCondition(coordinatorPod(2)), [coordinatorPod(1), byHand], head)).toEqual([]);
    const caller = withoutCondition(coordinatorPod(2));
    expect(selectPeers(caller, owningStatefulSet(caller)!, [coordinatorPod(1)], undefined)).toEqual([]);
  });

  it("answers only pods that hold the committed head, never one behind it", () => {
    const head = headWith(
      [memberOf(coordinatorPod(0), { digest: OTHER_DIGEST }), memberOf(coordinatorPod(1))],
      {
        committed: {
          digest: OTHER_DIGEST,
          parent: DIGEST,
          by: "coordinator-0",
          at: "2026-11-23T21:50:00Z",
          holders: {},
        },
        history: [DIGEST, OTHER_DIGEST],
      },
    );
    expect(
      peersOf(withoutCondition(coordinatorPod(2)), [coordinatorPod(0), coordinatorPod(1)], head),
    ).toEqual(["coordinator-0"]);
  });

  it("answers nothing from the head of another StatefulSet of that name", () => {
    const head = { ...HEAD, statefulSet: { name: "coordinator", uid: "earlier-statefulset" } };
    expect(peersOf(withoutCondition(coordinatorPod(2)), [coordinatorPod(0)], head)).toEqual([]);
  });
});
