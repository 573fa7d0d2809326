// `coordinator-ha status` from plain objects: the rules of "healthy" as a table, the summary
// line, the text table and the exit codes, on pods derived from a real pod and StateHeads
// shaped as the handler writes them (test/unit/handler/pods.ts).
import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { Reason } from "../../../src/names.ts";
import type { ClusterView } from "../../../src/status/read.ts";
import { setStatus, type StatefulSetFacts } from "../../../src/status/report.ts";
import { runStatus, StatusExit } from "../../../src/status/run.ts";
import { age, renderTables } from "../../../src/status/table.ts";
import {
  coordinatorPod,
  DIGEST,
  headWith,
  memberOf,
  notReady,
  OTHER_DIGEST,
  setCondition,
  STATEFULSET_UID,
  withoutCondition,
} from "../handler/pods.ts";

const STS: StatefulSetFacts = {
  namespace: "default",
  name: "coordinator",
  uid: STATEFULSET_UID,
  replicas: 3,
};
const NEW_HEAD = `sha256:${"c4".repeat(32)}`;

const recovered = (i: number) =>
  setCondition(coordinatorPod(i), "True", i === 0 ? Reason.Initialized : Reason.RecoveredFromPeer, "");
const healthyPods = () => [0, 1, 2].map(recovered);
const healthyMembers = (pods: V1Pod[]) =>
  pods.map((p, i) => memberOf(p, { source: i === 0 ? null : "coordinator-0" }));

describe("status of one StatefulSet", () => {
  it("is healthy when every replica is Ready, gated True and holds the head", () => {
    const pods = healthyPods();
    const status = setStatus(STS, pods, headWith(healthyMembers(pods)));
    expect(status.healthy).toBe(true);
    expect(status.summary).toBe("coordinator: 3/3 Ready; 3 hold the head sha256:5f0c2b0d");
    expect(status.pods.map((p) => [p.pod, p.state, p.digest, p.source])).toEqual([
      ["coordinator-0", "head", DIGEST, null],
      ["coordinator-1", "head", DIGEST, "coordinator-0"],
      ["coordinator-2", "head", DIGEST, "coordinator-0"],
    ]);
  });

  it.each<[string, () => { pods: V1Pod[]; members?: ReturnType<typeof memberOf>[]; over?: object }, string]>([
    [
      "a pod waiting for its state",
      () => {
        const pods = [recovered(0), recovered(1), withoutCondition(coordinatorPod(2))];
        setCondition(pods[2]!, "False", Reason.AwaitingState, "Waiting for the recovery sidecar");
        return { pods, members: healthyMembers(pods.slice(0, 2)) };
      },
      "coordinator: 2/3 Ready; 2 hold the head sha256:5f0c2b0d; 1 waiting for state: coordinator-2 (AwaitingState) (unhealthy)",
    ],
    [
      "a stale pod behind a newer head",
      () => {
        const pods = healthyPods();
        setCondition(
          notReady(pods[2]!),
          "False",
          Reason.StateStale,
          "holds sha256:5f0c…, head is sha256:c4c4…",
        );
        const members = healthyMembers(pods).map(([n, m]) =>
          n === "coordinator-2" ? ([n, m] as const) : ([n, { ...m, digest: NEW_HEAD }] as const),
        );
        return {
          pods,
          members: members as ReturnType<typeof memberOf>[],
          over: {
            committed: {
              digest: NEW_HEAD,
              parent: DIGEST,
              by: "coordinator-0",
              at: "2026-11-23T22:00:00Z",
              holders: {},
            },
            history: [DIGEST, NEW_HEAD],
          },
        };
      },
      "coordinator: 2/3 Ready; 2 hold the head sha256:c4c4c4c4; 1 stale (an older state): coordinator-2 (StateStale) (unhealthy)",
    ],
    [
      "a pod in conflict",
      () => {
        const pods = healthyPods();
        setCondition(notReady(pods[1]!), "False", Reason.StateConflict, "");
        const members = healthyMembers(pods);
        members[1]![1].digest = OTHER_DIGEST;
        return { pods, members };
      },
      "coordinator: 2/3 Ready; 2 hold the head sha256:5f0c2b0d; 1 in conflict (a state outside the history): coordinator-1 (StateConflict) (unhealthy)",
    ],
    [
      "a missing replica and an update in flight",
      () => {
        const pods = healthyPods().slice(0, 2);
        return {
          pods,
          members: healthyMembers(pods),
          over: {
            proposal: {
              digest: NEW_HEAD,
              parent: DIGEST,
              by: "coordinator-1",
              byUid: "u",
              certSha256: "c",
              at: "2026-11-23T22:00:00Z",
              expiresAt: "2026-11-23T22:01:00Z",
              holders: {},
            },
          },
        };
      },
      "coordinator: 2/3 Ready; 2 hold the head sha256:5f0c2b0d; 1 of 3 replicas have no pod; update sha256:c4c4c4c4 by coordinator-1 in flight (unhealthy)",
    ],
    [
      "a pod that is gated True but not Ready (its app is not ready)",
      () => {
        const pods = healthyPods();
        notReady(pods[0]!);
        return { pods, members: healthyMembers(pods) };
      },
      "coordinator: 2/3 Ready; 2 hold the head sha256:5f0c2b0d; 1 not Ready: coordinator-0 (Initialized) (unhealthy)",
    ],
    [
      "the first pod, before its user's set: no head yet",
      () => {
        const pod = withoutCondition(coordinatorPod(0));
        setCondition(pod, "False", Reason.AwaitingState, "No initialized peer exists");
        return { pods: [pod], members: [], over: { committed: null, history: [] } };
      },
      "coordinator: 0/3 Ready; no committed head; 1 waiting for state: coordinator-0 (AwaitingState); 2 of 3 replicas have no pod (unhealthy)",
    ],
  ])("is unhealthy with %s, and says why", (_what, make, summary) => {
    const { pods, members = [], over = {} } = make();
    const status = setStatus(STS, pods, headWith(members, over));
    expect(status.healthy).toBe(false);
    expect(status.summary).toBe(summary);
  });

  it("ignores a member record of an earlier pod of the same name (another uid)", () => {
    const pods = healthyPods();
    const members = healthyMembers(pods);
    members[2]![1].uid = "an-earlier-pod";
    const row = setStatus(STS, pods, headWith(members)).pods[2]!;
    expect(row).toMatchObject({ digest: null, source: null, state: "head" });
  });

  it("leaves out pods of other StatefulSets, and orders by ordinal", () => {
    const stranger = recovered(3);
    stranger.metadata!.ownerReferences![0]!.uid = "another-statefulset";
    const pods = [recovered(2), recovered(10), recovered(0), recovered(1), stranger];
    const status = setStatus({ ...STS, replicas: 4 }, pods, undefined);
    expect(status.pods.map((p) => p.pod)).toEqual([
      "coordinator-0",
      "coordinator-1",
      "coordinator-2",
      "coordinator-10",
    ]);
    expect(status.summary).toBe("coordinator: 4/4 Ready; no committed head");
  });
});

describe("the table", () => {
  it("has a row per pod, the summary under it", () => {
    const pods = healthyPods();
    pods[2] = setCondition(notReady(pods[2]!), "False", Reason.AwaitingState, "waiting");
    const status = setStatus(STS, pods, headWith(healthyMembers(pods).slice(0, 2)));
    const now = new Date(Date.parse("2026-11-23T21:41:01Z") + 3 * 60_000 + 5_000);
    expect(renderTables([status], now)).toBe(
      [
        "default/coordinator",
        "POD             NODE         READY   GATE    REASON              DIGEST            RECOVERED FROM   SINCE",
        "coordinator-0   local-node   True    True    Initialized         sha256:5f0c2b0d   (own app)        3m5s",
        "coordinator-1   local-node   True    True    RecoveredFromPeer   sha256:5f0c2b0d   coordinator-0    3m5s",
        "coordinator-2   local-node   False   False   AwaitingState       -                 -                3m5s",
        "coordinator: 2/3 Ready; 2 hold the head sha256:5f0c2b0d; 1 waiting for state: coordinator-2 (AwaitingState) (unhealthy)",
        "",
      ].join("\n"),
    );
  });

  it.each([
    [5, "5s"],
    [119, "119s"],
    [185, "3m5s"],
    [600, "10m"],
    [3 * 3600 + 240, "3h4m"],
    [9 * 3600, "9h"],
    [2 * 86400 + 5 * 3600, "2d5h"],
  ])("writes %i seconds as kubectl does: %s", (seconds, text) => {
    expect(age(new Date(0), new Date(seconds * 1000))).toBe(text);
  });
});

describe("runStatus", () => {
  const view = (pods: V1Pod[], heads = true): ClusterView => ({
    statefulSets: [STS],
    pods,
    heads: new Map(heads ? [["default/coordinator", headWith(healthyMembers(pods))]] : []),
    warnings: heads ? [] : ["the StateHead CRD is not installed: digests and sources are unknown"],
  });
  const run = async (v: ClusterView | Error, opts: object = {}) => {
    let out = "";
    const err: string[] = [];
    const code = await runStatus(
      { output: "table", kubeconfig: KUBECONFIG, ...opts },
      { out: (t) => (out += t), err: (l) => err.push(l) },
      () => new Date("2026-11-23T22:00:00Z"),
      () => (v instanceof Error ? Promise.reject(v) : Promise.resolve(v)),
    );
    return { code, out, err };
  };

  it("exits 0 for a healthy set, 1 for an unhealthy one, and prints JSON with -o json", async () => {
    expect((await run(view(healthyPods()))).code).toBe(StatusExit.Healthy);
    const sick = healthyPods();
    notReady(sick[1]!);
    const r = await run(view(sick), { output: "json" });
    expect(r.code).toBe(StatusExit.Unhealthy);
    const json = JSON.parse(r.out) as {
      healthy: boolean;
      statefulSets: { healthy: boolean; pods: unknown[] }[];
    };
    expect(json.healthy).toBe(false);
    expect(json.statefulSets[0]!.pods).toHaveLength(3);
  });

  it("warns when the records cannot be read, and still shows the pods", async () => {
    const r = await run(view(healthyPods(), false));
    expect(r.err).toEqual(["warning: the StateHead CRD is not installed: digests and sources are unknown"]);
    expect(r.out).toContain("coordinator-2");
  });

  it("exits 2 when the cluster cannot be read, and 1 for a StatefulSet that is not there", async () => {
    const failed = await run(new Error("connect ECONNREFUSED 127.0.0.1:6443"));
    expect(failed).toMatchObject({
      code: StatusExit.CannotRead,
      err: ["error: cannot read the cluster: connect ECONNREFUSED 127.0.0.1:6443"],
    });
    const none: ClusterView = { statefulSets: [], pods: [], heads: new Map(), warnings: [] };
    expect(await run(none, { statefulSet: "vault" })).toMatchObject({
      code: StatusExit.Unhealthy,
      err: ["no StatefulSet vault in namespace team-a"],
    });
  });
});

// A kubeconfig whose context names a namespace, as `kubectl config set-context --namespace` writes it.
const KUBECONFIG = new URL("./kubeconfig.yaml", import.meta.url).pathname;
