// Issue 11, finding 2, on the real apiserver: two handler replicas, two uninitialized pods of
// a Parallel StatefulSet, each confirming a different first state through a different
// replica at the same moment, round after round. Before the StateHead, both ended Initialized
// in 3 of 6 rounds. Now exactly one wins every round: the member record is written by
// compare-and-swap into the StateHead before the gate opens. Then an update through the head
// (propose, quorum, StateStale, Updated), the watch demoting a second recorded state, and the
// compare-and-swap itself on a real StateHead.
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headObject } from "../../../src/handler/head/state-head.ts";
import { kubeStateHeadApi } from "../../../src/kube/state-heads.ts";
import { RECOVERED_CONDITION } from "../../../src/names.ts";
import { eventually, kubeConfig } from "../kube.ts";
import { HandlerEnv, type HandlerProcess } from "./harness.ts";

const CERT = "8c".repeat(32);
const ROUNDS = 30;
const digestOf = (text: string) => `sha256:${createHash("sha256").update(text).digest("hex")}`;

describe("two handler replicas and one StatefulSet head", () => {
  const kc = kubeConfig();
  const env = new HandlerEnv(kc);
  let a: HandlerProcess;
  let b: HandlerProcess;
  const tokens: string[] = [];

  const resetRound = async () => {
    await env.custom
      .deleteNamespacedCustomObject({
        group: "coordinator-ha.io",
        version: "v1alpha1",
        namespace: env.namespace,
        plural: "stateheads",
        name: "coordinator",
      })
      .catch(() => undefined);
    for (const name of ["coordinator-0", "coordinator-1"])
      await setGate(name, "False", "AwaitingState", "reset");
  };
  const setGate = async (name: string, status: string, reason: string, message: string) => {
    await env.core.patchNamespacedPodStatus({
      namespace: env.namespace,
      name,
      body: [
        {
          op: "replace",
          path: "/status/conditions",
          value: [
            ...((await env.getPod(name)).status?.conditions ?? []).filter(
              (c) => c.type !== RECOVERED_CONDITION,
            ),
            { type: RECOVERED_CONDITION, status, reason, message, lastTransitionTime: new Date() },
          ],
        },
      ],
    });
  };
  const confirm = (via: HandlerProcess, ordinal: number, digest: string, source: string | null = null) =>
    via.call("POST", "/v1/recovered", tokens[ordinal], { digest, source, certSha256: CERT });

  beforeAll(async () => {
    await env.setUp("split-brain");
    await env.createStatefulSet(2);
    [a, b] = await Promise.all([env.startHandler(), env.startHandler()]);
    for (const ordinal of [0, 1]) tokens.push(await env.tokenFor(await env.getPod(`coordinator-${ordinal}`)));
  });

  afterAll(() => env.tearDown());

  it(`lets exactly one of two concurrent first states win, in each of ${ROUNDS} rounds`, async () => {
    const winners: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      await resetRound();
      const digests = [digestOf(`round ${round} pod 0`), digestOf(`round ${round} pod 1`)];
      // Alternate which replica serves which pod.
      const [via0, via1] = round % 2 === 0 ? [a, b] : [b, a];
      const replies = await Promise.all([confirm(via0, 0, digests[0]!), confirm(via1, 1, digests[1]!)]);
      const statuses = replies.map((r) => r.status);
      expect({ round, statuses: [...statuses].sort() }).toEqual({ round, statuses: [200, 409] });
      const winner = statuses.indexOf(200);
      const loser = 1 - winner;
      winners.push(winner);
      expect(replies[loser]!.body["error"]).toMatch(/split brain/);
      const head = await env.head();
      expect({
        round,
        committed: head?.committed?.digest,
        members: Object.keys(head?.members ?? {}),
      }).toEqual({
        round,
        committed: digests[winner],
        members: [`coordinator-${winner}`],
      });
      const gates = await Promise.all(
        [0, 1].map(async (n) => (await env.recovered(`coordinator-${n}`))?.status),
      );
      expect({ round, gates }).toEqual({
        round,
        gates: winner === 0 ? ["True", "False"] : ["False", "True"],
      });
    }
    // A few seconds later, the watches of both replicas have not opened the loser either.
    await sleep(2000);
    const last = winners.at(-1)!;
    expect((await env.recovered(`coordinator-${1 - last}`))?.status).toBe("False");
    console.log(
      `finding 2: ${ROUNDS} rounds of concurrent first confirmations through two handlers: ` +
        `${ROUNDS} with exactly one winner (coordinator-0 won ${winners.filter((w) => w === 0).length}, ` +
        `coordinator-1 ${winners.filter((w) => w === 1).length})`,
    );
  });

  it("demotes a second recorded state that got into the head by other means (StateConflict)", async () => {
    const head = await env.head();
    const winner = Object.keys(head!.members)[0]!;
    const loser = winner === "coordinator-0" ? "coordinator-1" : "coordinator-0";
    const loserPod = await env.getPod(loser);
    const second = digestOf("a second state");
    // What an older handler, or a hand-edit, could leave: a True gate on a second state.
    const stored = await kubeStateHeadApi(kc).get(env.namespace, "coordinator");
    const members = {
      ...stored!.spec.members,
      [loser]: {
        uid: loserPod.metadata!.uid!,
        digest: second,
        certSha256: CERT,
        source: null,
        restarts: { app: 0 },
        at: new Date().toISOString(),
      },
    };
    await setGate(loser, "True", "Initialized", "set by an older handler");
    expect(
      await kubeStateHeadApi(kc).replace(
        env.namespace,
        { ...stored!.spec, members },
        stored!.resourceVersion,
      ),
    ).toBe("written");
    const demoted = await eventually(`StateConflict on ${loser}`, async () => {
      const c = await env.recovered(loser);
      return c?.reason === "StateConflict" ? c : undefined;
    });
    expect(demoted.status).toBe("False");
    expect(demoted.message).toContain("not in the StatefulSet's history");
    expect((await env.recovered(winner))?.status).toBe("True");
    const warning = await eventually("the StateConflict Event", async () =>
      (await env.events(loser)).find((e) => e.reason === "StateConflict"),
    );
    expect(warning.message).toContain(second);
  });

  it("commits an update through the head: StateStale behind it, Updated once swapped in", async () => {
    await resetRound();
    const first = digestOf("first state");
    const next = digestOf("second state");
    for (const [ordinal, ip] of [
      [0, "10.244.0.200"],
      [1, "10.244.0.201"],
    ] as const) {
      await env.kubeletStatus(`coordinator-${ordinal}`, { ready: true, restarts: 0, ip });
    }
    expect(await confirm(a, 0, first)).toMatchObject({ status: 200, body: { reason: "Initialized" } });
    expect(await confirm(b, 1, first, "coordinator-0")).toMatchObject({
      status: 200,
      body: { reason: "RecoveredFromPeer" },
    });
    // Two replicas: a quorum of 2. coordinator-1 stages and holds the proposal.
    const proposed = await a.call("POST", "/v1/proposals", tokens[0], {
      digest: next,
      parent: first,
      certSha256: CERT,
    });
    expect(proposed).toMatchObject({
      status: 202,
      body: { proposal: { digest: next, by: "coordinator-0" }, quorum: 2 },
    });
    const seen = await b.call("GET", `/v1/head?known=${first}&proposal=&waitSeconds=5`, tokens[1]);
    expect(seen.body).toMatchObject({ proposal: { digest: next, ip: "10.244.0.200", port: 7443 } });
    expect(await b.call("POST", "/v1/holds", tokens[1], { digest: next })).toMatchObject({
      status: 200,
      body: { committed: true },
    });
    expect((await env.head())?.committed).toMatchObject({ digest: next, parent: first, by: "coordinator-0" });
    // The proposer swaps it in and confirms: Updated.
    expect(await confirm(b, 0, next)).toMatchObject({ status: 200, body: { reason: "Updated" } });
    // coordinator-1 held it but does not confirm: after the swap grace it is stale.
    const stale = await eventually(
      "StateStale on coordinator-1",
      async () => {
        const c = await env.recovered("coordinator-1");
        return c?.reason === "StateStale" ? c : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(stale.message).toMatch(
      /^Holds state sha256:\w{12}…, the head is sha256:\w{12}…, held by pod coordinator-0;/,
    );
    expect(await confirm(a, 1, first, "coordinator-0")).toMatchObject({ status: 409 });
    expect(await confirm(a, 1, next, "coordinator-0")).toMatchObject({
      status: 200,
      body: { reason: "Updated" },
    });
    expect((await env.recovered("coordinator-1"))?.status).toBe("True");
    // The replica that turned the gate True observed the stale time: the one that confirmed,
    // or the other one, whose watch saw the record of the head and opened the gate first (G6).
    const staleCounts = await Promise.all(
      [a, b].map(async (h) => {
        const text = String((await h.call("GET", "/metrics")).body["text"]);
        return Number(/^coordinator_ha_handler_stale_seconds_count (\d+)/m.exec(text)?.[1] ?? 0);
      }),
    );
    expect(staleCounts[0]! + staleCounts[1]!).toBeGreaterThanOrEqual(1);
    const decisions = [...a.logs, ...b.logs].filter((l) => l["decision"] === "commit");
    expect(decisions).toMatchObject([{ digest: next, parent: first }]);
  });

  it("refuses a write with a stale resourceVersion on a real StateHead (the compare-and-swap)", async () => {
    const api = kubeStateHeadApi(kc);
    const stored = (await api.get(env.namespace, "coordinator"))!;
    // A change: a PUT that changes nothing keeps the resourceVersion, and would not race.
    const touched = { ...stored.spec, history: [...stored.spec.history, digestOf("touched")] };
    expect(await api.replace(env.namespace, touched, stored.resourceVersion)).toBe("written");
    // A second writer that read the same version loses.
    expect(await api.replace(env.namespace, touched, stored.resourceVersion)).toBe("conflict");
    expect(await api.create(env.namespace, stored.spec)).toBe("conflict");
    expect(headObject(env.namespace, stored.spec)).toMatchObject({
      metadata: {
        ownerReferences: [{ kind: "StatefulSet", name: "coordinator", uid: stored.spec.statefulSet.uid }],
      },
    });
  });
});
