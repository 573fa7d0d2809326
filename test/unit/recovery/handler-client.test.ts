import { describe, expect, it } from "vitest";
import { peersProblem } from "../../../src/recovery/handler-client.ts";

const config = {
  self: { namespace: "ns", serviceAccount: "coordinator", podName: "coordinator-1", podUid: "u1" },
  statefulSet: "coordinator",
};
const peer = {
  pod: "coordinator-0",
  uid: "u0",
  ip: "10.244.0.5",
  port: 7443,
  digest: `sha256:${"a".repeat(64)}`,
  certSha256: "b".repeat(64),
};
const answer = (peers: unknown[], more: object = {}) => ({
  namespace: "ns",
  statefulSet: "coordinator",
  peers,
  ...more,
});

describe("peersProblem", () => {
  it("accepts a well-formed answer, including the empty list", () => {
    expect(peersProblem(answer([peer]), config)).toBeUndefined();
    expect(peersProblem(answer([]), config)).toBeUndefined();
  });

  it.each([
    ["no object", "peers"],
    ["no peers list", { namespace: "ns", statefulSet: "coordinator" }],
    ["another namespace", answer([], { namespace: "other" })],
    ["another StatefulSet", answer([], { statefulSet: "other" })],
    ["a peer of another StatefulSet", answer([{ ...peer, pod: "other-0" }])],
    ["a peer without IP", answer([{ ...peer, ip: "pod.example" }])],
    ["a peer with port 0", answer([{ ...peer, port: 0 }])],
    ["a peer with a bad digest", answer([{ ...peer, digest: "sha256:abc" }])],
    ["a peer with an upper-case fingerprint", answer([{ ...peer, certSha256: "B".repeat(64) }])],
    ["a peer that is no object", answer([null])],
  ])("makes %s an unknown answer", (_name, body) => {
    expect(peersProblem(body, config)).toBeDefined();
  });
});
