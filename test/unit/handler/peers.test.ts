import { describe, expect, it } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import { owningStatefulSet } from "../../../src/handler/pod.ts";
import { selectPeers } from "../../../src/handler/peers.ts";
import {
  CERT,
  coordinatorPod,
  DIGEST,
  notReady,
  restarted,
  setCondition,
  STATEFULSET_UID,
  terminating,
  uidOf,
  withoutCondition,
} from "./pods.ts";

function peersOf(caller: V1Pod, others: V1Pod[]): string[] {
  return selectPeers(caller, owningStatefulSet(caller)!, [caller, ...others]).map((p) => p.pod);
}

describe("selectPeers", () => {
  it("answers the Ready, recovered pods of the caller's StatefulSet with address, port, digest and cert", () => {
    const caller = withoutCondition(coordinatorPod(2));
    expect(
      selectPeers(caller, owningStatefulSet(caller)!, [coordinatorPod(1), caller, coordinatorPod(0)]),
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

  it("leaves out a peer without IP, without peer port, or without a readable record", () => {
    const noIp = coordinatorPod(0);
    delete noIp.status!.podIP;
    const noPort = coordinatorPod(1);
    noPort.spec!.initContainers![0]!.ports = [];
    const noRecord = setCondition(coordinatorPod(3), "True", "Initialized", "set by hand");
    expect(peersOf(withoutCondition(coordinatorPod(2)), [noIp, noPort, noRecord])).toEqual([]);
  });
});
