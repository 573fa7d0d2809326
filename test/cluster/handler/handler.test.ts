// `coordinator-ha handler` as a process on the host, against the real kube-apiserver, with
// nothing but the RBAC that docs/handler.md documents, and with real TokenRequest tokens
// bound to real pods of a real StatefulSet (harness.ts: the pods never run; the test plays
// the kubelet and writes the status fields the handler reads, so every step is deterministic).
import type { V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PeersResponse } from "../../../src/handler/api.ts";
import { AWAITING_NO_PEER, AWAITING_PEER } from "../../../src/handler/reconcile.ts";
import { PEER_PORT, PEER_TOKEN_AUDIENCE, TOKEN_AUDIENCE } from "../../../src/names.ts";
import { eventually, kubeConfig } from "../kube.ts";
import { HandlerEnv, type HandlerProcess, type Reply } from "./harness.ts";

const DIGEST = `sha256:${"5f".repeat(32)}`;
const CERT = "8c".repeat(32);

describe("the event handler on the local cluster", () => {
  const env = new HandlerEnv(kubeConfig());
  const core = env.core;
  let namespace: string;
  let app: string;
  let handler: HandlerProcess;
  let logs: Record<string, unknown>[] = [];
  const call = (method: string, path: string, token?: string, body?: unknown): Promise<Reply> =>
    handler.call(method, path, token, body);
  const getPod = (name: string) => env.getPod(name);
  const recovered = (name: string) => env.recovered(name);
  const tokenFor = (pod: V1Pod, audience = TOKEN_AUDIENCE) => env.tokenFor(pod, audience);
  const kubeletStatus = (name: string, opts: { ready: boolean; restarts: number; ip: string }) =>
    env.kubeletStatus(name, opts);
  const events = (pod: string) => env.events(pod);
  const memberRecord = async (name: string) => (await env.head())?.members[name];

  beforeAll(async () => {
    await env.setUp("handler");
    namespace = env.namespace;
    app = env.app;
    await env.createStatefulSet(2);
    handler = await env.startHandler();
    logs = handler.logs;
  });

  afterAll(() => env.tearDown());

  it("tells the waiting pods that no initialized peer exists, and answers an empty peer list", async () => {
    for (const name of ["coordinator-0", "coordinator-1"]) {
      const condition = await eventually(`AwaitingState on ${name}`, async () => {
        const c = await recovered(name);
        return c?.reason === "AwaitingState" ? c : undefined;
      });
      expect(condition).toMatchObject({ status: "False", message: AWAITING_NO_PEER });
    }
    const reply = await call("GET", "/v1/peers", await tokenFor(await getPod("coordinator-1")));
    expect(reply).toMatchObject({ status: 200, body: { namespace, statefulSet: "coordinator", peers: [] } });
  });

  it("marks the first instance Initialized on its confirmation, and records an Event", async () => {
    const pod = await getPod("coordinator-0");
    const reply = await call("POST", "/v1/recovered", await tokenFor(pod), {
      digest: DIGEST,
      source: null,
      certSha256: CERT,
    });
    expect(reply).toMatchObject({ status: 200, body: { changed: true, reason: "Initialized" } });
    const condition = await recovered("coordinator-0");
    expect(condition).toMatchObject({ status: "True", reason: "Initialized" });
    expect(await memberRecord("coordinator-0")).toMatchObject({
      uid: pod.metadata!.uid,
      digest: DIGEST,
      certSha256: CERT,
      source: null,
      restarts: { app: 0 },
    });
    // The kubelet's conditions are still there: the patch merged, it did not replace.
    expect((await getPod("coordinator-0")).status?.conditions?.map((c) => c.type)).toContain("Ready");
    const recorded = await eventually(
      "the Initialized Event",
      async () => (await events("coordinator-0"))[0],
    );
    expect(recorded).toMatchObject({
      type: "Normal",
      reason: "Initialized",
      involvedObject: { uid: pod.metadata!.uid },
    });
  });

  it("hands the Ready, recovered peer out, and tells the other pod to wait for its sidecar", async () => {
    await kubeletStatus("coordinator-0", { ready: true, restarts: 0, ip: "10.244.0.200" });
    await eventually("coordinator-1 to wait for its sidecar", async () =>
      (await recovered("coordinator-1"))?.message === AWAITING_PEER ? true : undefined,
    );
    const reply = await call("GET", "/v1/peers", await tokenFor(await getPod("coordinator-1")));
    expect(reply.status).toBe(200);
    expect((reply.body as unknown as PeersResponse).peers).toEqual([
      {
        pod: "coordinator-0",
        uid: (await getPod("coordinator-0")).metadata!.uid,
        ip: "10.244.0.200",
        port: PEER_PORT,
        digest: DIGEST,
        certSha256: CERT,
      },
    ]);
  });

  it("refuses forged confirmations for coordinator-1, and leaves its gate False", async () => {
    const target = await getPod("coordinator-1");
    // A pod of the same service account and labels, but without the gate: its token is real.
    const intruder = await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: "intruder", labels: { "app.kubernetes.io/name": app } },
        spec: {
          serviceAccountName: "coordinator",
          nodeSelector: { "coordinator-ha.io/test": "never-scheduled" },
          containers: [{ name: "app", image: "registry.invalid/app:1" }],
        },
      },
    });
    const unbound = (
      await core.createNamespacedServiceAccountToken({
        namespace,
        name: "coordinator",
        body: { spec: { audiences: [TOKEN_AUDIENCE], expirationSeconds: 600 } },
      })
    ).status?.token;
    if (!unbound) throw new Error("TokenRequest for the service account returned no token");
    const body = { digest: DIGEST, source: "coordinator-0", certSha256: CERT };
    const attempts: [string, string, number][] = [
      ["a token not bound to a pod", unbound, 401],
      [
        "a token for the apiserver's audience",
        await tokenFor(target, "https://kubernetes.default.svc.cluster.local"),
        401,
      ],
      ["a token of an ungated pod", await tokenFor(intruder), 403],
      // The target's own peer token, as the peer it recovers from holds it: replayed here it
      // would mark coordinator-1 recovered before it has the state.
      ["coordinator-1's peer token", await tokenFor(target, PEER_TOKEN_AUDIENCE), 401],
    ];
    for (const [why, token, status] of attempts) {
      const reply = await call("POST", "/v1/recovered", token, body);
      expect({ why, status: reply.status, error: typeof reply.body["error"] }).toEqual({
        why,
        status,
        error: "string",
      });
    }
    expect(await recovered("coordinator-1")).toMatchObject({ status: "False", reason: "AwaitingState" });
    expect(await events("coordinator-1")).toEqual([]);
  });

  it("marks a pod RecoveredFromPeer, naming the peer and the digest in the Event", async () => {
    const reply = await call("POST", "/v1/recovered", await tokenFor(await getPod("coordinator-1")), {
      digest: DIGEST,
      source: "coordinator-0",
      certSha256: CERT,
    });
    expect(reply).toMatchObject({ status: 200, body: { changed: true, reason: "RecoveredFromPeer" } });
    expect(await recovered("coordinator-1")).toMatchObject({ status: "True", reason: "RecoveredFromPeer" });
    const recorded = await eventually(
      "the RecoveredFromPeer Event",
      async () => (await events("coordinator-1"))[0],
    );
    expect(recorded.reason).toBe("RecoveredFromPeer");
    expect(recorded.message).toBe(`Recovered state ${DIGEST} from peer coordinator-0`);
  });

  it("resets the gate when the app container restarts, and lets the sidecar confirm again", async () => {
    await kubeletStatus("coordinator-1", { ready: true, restarts: 1, ip: "10.244.0.201" });
    const reset = await eventually("AppRestarted on coordinator-1", async () => {
      const c = await recovered("coordinator-1");
      return c?.reason === "AppRestarted" ? c : undefined;
    });
    expect(reset.status).toBe("False");
    expect(reset.message).toContain("App container app restarted");
    const warning = await eventually("the AppRestarted Event", async () =>
      (await events("coordinator-1")).find((e) => e.reason === "AppRestarted"),
    );
    expect(warning.type).toBe("Warning");

    const again = await call("POST", "/v1/recovered", await tokenFor(await getPod("coordinator-1")), {
      digest: DIGEST,
      source: "coordinator-0",
      certSha256: CERT,
    });
    expect(again).toMatchObject({ status: 200, body: { changed: true } });
    const condition = await recovered("coordinator-1");
    expect(condition?.status).toBe("True");
    expect((await memberRecord("coordinator-1"))?.restarts).toEqual({ app: 1 });
  });

  it("refuses the token of a pod that was deleted and recreated", async () => {
    const old = await getPod("coordinator-1");
    const token = await tokenFor(old);
    await core.deleteNamespacedPod({ namespace, name: "coordinator-1", gracePeriodSeconds: 0 });
    await eventually("coordinator-1 to be recreated", async () => {
      const pod = await getPod("coordinator-1").catch(() => undefined);
      return pod && pod.metadata?.uid !== old.metadata?.uid ? pod : undefined;
    });
    const reply = await call("POST", "/v1/recovered", token, {
      digest: DIGEST,
      source: "coordinator-0",
      certSha256: CERT,
    });
    expect(reply.status).toBe(401);
    expect((await recovered("coordinator-1"))?.status).not.toBe("True");
  });

  it("keeps watching across the apiserver's watch timeout, resuming without a relist", async () => {
    // The server ends each watch after 20 s (src/kube/pod-list-watch.ts).
    await eventually(
      "the server to close a watch",
      async () =>
        logs.some((l) => l["msg"] === "pod watch closed" && l["how"] === "closed") ? true : undefined,
      { timeoutMs: 40_000, intervalMs: 500 },
    );
    await kubeletStatus("coordinator-0", { ready: true, restarts: 1, ip: "10.244.0.200" });
    await eventually("AppRestarted on coordinator-0", async () =>
      (await recovered("coordinator-0"))?.reason === "AppRestarted" ? true : undefined,
    );
    const metrics = String((await call("GET", "/metrics")).body["text"]);
    expect(metrics).toMatch(/^coordinator_ha_handler_watch_relists_total 1$/m);
    expect(logs.filter((l) => l["msg"] === "pod watch ended")).toEqual([]);
  });

  it("never logs a token, and names the pod on every line about one", () => {
    const text = JSON.stringify(logs);
    expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}\.eyJ/);
    const written = logs.filter((l) => l["msg"] === "condition written");
    expect(written.length).toBeGreaterThan(0);
    for (const line of written)
      expect(line).toMatchObject({ namespace, pod: expect.stringMatching(/^coordinator-\d$/) });
  });
});
