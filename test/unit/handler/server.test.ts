// The handler as a sidecar sees it: HTTPS with a certificate from a test CA, real tokens
// signed the way the apiserver signs them, and an in-memory cluster behind it. Every
// refusal must leave the gate as it was and record no Event.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { connect as tlsConnect } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { pino, type Logger } from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { PeersResponse, RecoveredResponse } from "../../../src/handler/api.ts";
import { conditionWriter } from "../../../src/handler/condition-writer.ts";
import { handlerMetrics } from "../../../src/handler/metrics.ts";
import { createHeadCalls, HeadChanges } from "../../../src/handler/head-calls.ts";
import { AWAITING_NO_PEER } from "../../../src/handler/reconcile.ts";
import { createHandlerApp, MAX_BODY_BYTES } from "../../../src/handler/server.ts";
import { createHandlerService, handlerTokenVerifier } from "../../../src/handler/service.ts";
import { createRegistry } from "../../../src/http/metrics.ts";
import { startTlsServer, type TlsServer } from "../../../src/http/tls-server.ts";
import { cachedJwksSource } from "../../../src/identity/index.ts";
import { parseLabelSelector } from "../../../src/kube/label-selector.ts";
import { PEER_TOKEN_AUDIENCE } from "../../../src/names.ts";
import { createCa, issueServingCert, type CertificateAuthority } from "../../../webhook-certs/x509.ts";
import {
  ISSUER,
  jwks,
  podToken,
  signingKey,
  type SigningKey,
  type TokenOptions,
} from "../identity/issuer.ts";
import { FakeCluster } from "./fake-cluster.ts";
import {
  CERT,
  coordinatorPod,
  DIGEST,
  headWith,
  memberOf,
  setCondition,
  uidOf,
  withoutCondition,
} from "./pods.ts";
import { API_LIMITS } from "../../../src/http/limits.ts";

interface Reply {
  status: number;
  contentType: string;
  json: Record<string, unknown>;
}

let dir: string;
let ca: CertificateAuthority;
let key: SigningKey;
let server: TlsServer;
/** The same handler with --namespace default. */
let restricted: TlsServer;
let cluster: FakeCluster;
const headChanges = new HeadChanges();
const logs: Record<string, unknown>[] = [];

function send(
  method: string,
  path: string,
  opts: { token?: string; body?: string; to?: TlsServer } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (opts.token !== undefined) headers["authorization"] = `Bearer ${opts.token}`;
    if (opts.body !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = Buffer.byteLength(opts.body);
    }
    const req = httpsRequest(
      {
        host: "127.0.0.1",
        servername: "localhost",
        port: (opts.to ?? server).port,
        method,
        path,
        ca: ca.certPem,
        agent: false,
        headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const contentType = String(res.headers["content-type"]);
          resolve({
            status: res.statusCode ?? 0,
            contentType,
            json: contentType.includes("json") ? (JSON.parse(text) as Record<string, unknown>) : { text },
          });
        });
      },
    );
    req.on("error", reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** The handler's count of failed peers, from /metrics. */
async function peerTransferFailures(): Promise<number> {
  const text = String((await send("GET", "/metrics")).json["text"]);
  const value = /^coordinator_ha_handler_peer_transfer_failures_total (\d+)$/m.exec(text)?.[1];
  if (value === undefined)
    throw new Error("no coordinator_ha_handler_peer_transfer_failures_total in /metrics");
  return Number(value);
}

/** A token bound to coordinator-<ordinal> (its real uid), with overrides. */
const tokenFor = (ordinal: number, opts: TokenOptions = {}) =>
  podToken(key, { ...opts, pod: { podName: `coordinator-${ordinal}`, podUid: uidOf(ordinal), ...opts.pod } });

const confirmation = (source: string | null = "coordinator-0") =>
  JSON.stringify({ digest: DIGEST, source, certSha256: CERT });

const confirm = async (token: string, body = confirmation(), to?: TlsServer) =>
  send("POST", "/v1/recovered", { token, body, ...(to ? { to } : {}) });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "handler-test-"));
  ca = await createCa({ commonName: "handler test CA" });
  const serving = await issueServingCert(ca, { dnsNames: ["localhost"], ips: ["127.0.0.1"] });
  writeFileSync(join(dir, "tls.crt"), serving.certPem);
  writeFileSync(join(dir, "tls.key"), serving.keyPem);
  key = await signingKey("RS256");

  const logger = pino({ level: "debug" }, { write: (line: string) => logs.push(JSON.parse(line)) });
  cluster = new FakeCluster();
  server = await startServer(logger);
  restricted = await startServer(logger, ["default"]);
});

/** A handler on the in-memory cluster; `namespaces` as its --namespace (undefined: all). */
async function startServer(logger: Logger, namespaces?: string[], maxLongPolls?: number): Promise<TlsServer> {
  const registry = createRegistry();
  const metrics = handlerMetrics(registry, () => cluster.cache.size());
  const service = createHandlerService({
    // The verifier that run.ts builds.
    verifier: handlerTokenVerifier(
      ISSUER,
      cachedJwksSource(async () => jwks(key)),
    ),
    selector: parseLabelSelector("app.kubernetes.io/name=coordinator"),
    namespaces,
    cache: cluster.cache,
    pods: cluster.api,
    writer: conditionWriter({ pods: cluster.api, logger, metrics, instance: "handler-test-0" }),
    store: cluster.store,
    headCalls: createHeadCalls({
      store: cluster.store,
      statefulSets: cluster.statefulSets,
      cache: cluster.cache,
      changes: headChanges,
      metrics,
      logger,
      ...(maxLongPolls !== undefined && { maxLongPolls }),
    }),
    metrics,
    logger,
  });
  const app = createHandlerApp({
    service,
    logger,
    registry,
    readiness: { podCache: () => cluster.cache.problem() },
  });
  return startTlsServer({
    port: 0,
    host: "127.0.0.1",
    certFile: join(dir, "tls.crt"),
    keyFile: join(dir, "tls.key"),
    handler: app,
    logger,
    limits: API_LIMITS,
  });
}

afterAll(async () => {
  await server?.close();
  await restricted?.close();
  rmSync(dir, { recursive: true, force: true });
});

// coordinator-0: initialized and Ready; coordinator-1: new, waiting for its confirmation.
beforeEach(() => {
  cluster.pods.clear();
  cluster.events.length = 0;
  cluster.isSynced = true;
  cluster.beforePatch = undefined;
  cluster.beforeHeadWrite = undefined;
  cluster.replicas = 2;
  cluster.quorumAnnotation = undefined;
  cluster.heads.clear();
  cluster.setHead("default", headWith([memberOf(coordinatorPod(0))]));
  cluster.add(
    coordinatorPod(0),
    setCondition(withoutCondition(coordinatorPod(1)), "False", "AwaitingState", "w"),
  );
  logs.length = 0;
});

describe("POST /v1/recovered", () => {
  it("marks the pod recovered, records an Event once, and answers a repeat as unchanged", async () => {
    const token = await tokenFor(1);
    const first = await confirm(token);
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({
      changed: true,
      reason: "RecoveredFromPeer",
    } satisfies Partial<RecoveredResponse>);
    expect(cluster.condition("default", "coordinator-1")).toMatchObject({
      status: "True",
      reason: "RecoveredFromPeer",
    });
    expect(cluster.events).toHaveLength(1);
    expect(cluster.events[0]).toMatchObject({
      involvedObject: { kind: "Pod", name: "coordinator-1", uid: uidOf(1) },
      reason: "RecoveredFromPeer",
      message: `Recovered state ${DIGEST} from peer coordinator-0`,
      type: "Normal",
      reportingComponent: "coordinator-ha-handler",
    });

    const again = await confirm(token);
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ changed: false });
    expect(cluster.events).toHaveLength(1);
    // The token is never logged, whatever the outcome.
    expect(JSON.stringify(logs)).not.toContain(token);
    expect(logs.find((l) => l["msg"] === "confirmation recorded")).toMatchObject({
      namespace: "default",
      pod: "coordinator-1",
    });
  });

  it("names the peers that failed to deliver the state in one Warning Event, once, and counts them", async () => {
    const token = await tokenFor(1);
    const failedPeers = [
      { pod: "coordinator-2", reason: "no answer within 15000 ms" },
      { pod: "coordinator-3", reason: "ECONNRESET: aborted" },
    ];
    const body = JSON.stringify({ digest: DIGEST, source: "coordinator-0", certSha256: CERT, failedPeers });
    const counted = await peerTransferFailures();
    expect((await confirm(token, body)).json).toMatchObject({ changed: true, reason: "RecoveredFromPeer" });
    expect(cluster.events.map(({ type, reason, message }) => ({ type, reason, message }))).toEqual([
      {
        type: "Normal",
        reason: "RecoveredFromPeer",
        message: `Recovered state ${DIGEST} from peer coordinator-0`,
      },
      {
        type: "Warning",
        reason: "PeerTransferFailed",
        message:
          `Peer coordinator-2 failed to deliver state ${DIGEST}: no answer within 15000 ms; ` +
          `peer coordinator-3 failed to deliver state ${DIGEST}: ECONNRESET: aborted; ` +
          "recovered from peer coordinator-0",
      },
    ]);
    expect(cluster.events[1]).toMatchObject({
      involvedObject: { kind: "Pod", name: "coordinator-1", uid: uidOf(1) },
      reportingComponent: "coordinator-ha-handler",
    });
    expect(await peerTransferFailures()).toBe(counted + 2);
    expect(logs.find((l) => l["msg"] === "confirmation recorded")).toMatchObject({ failedPeers });

    // The sidecar repeats its confirmation: nothing changes, nothing is recorded or counted again.
    expect((await confirm(token, body)).json).toMatchObject({ changed: false });
    expect(cluster.events).toHaveLength(2);
    expect(await peerTransferFailures()).toBe(counted + 2);
  });

  it("marks the first instance Initialized", async () => {
    cluster.pods.clear();
    cluster.add(withoutCondition(coordinatorPod(0)));
    const reply = await confirm(await tokenFor(0), confirmation(null));
    expect(reply.json).toMatchObject({ changed: true, reason: "Initialized" });
    expect(cluster.events[0]).toMatchObject({ reason: "Initialized" });
  });

  it("re-reads the pod and decides again when the pod changed under the write", async () => {
    let once = true;
    cluster.beforePatch = () => {
      if (once) cluster.touch("default", "coordinator-1");
      once = false;
    };
    const reply = await confirm(await tokenFor(1));
    expect(reply.status).toBe(200);
    expect(cluster.condition("default", "coordinator-1")?.status).toBe("True");
  });

  it("records the confirmation in the StateHead before it opens the gate; the message is for people", async () => {
    let headAtPatch: unknown;
    cluster.beforePatch = () => (headAtPatch ??= structuredClone(cluster.head("default", "coordinator")));
    const reply = await confirm(await tokenFor(1));
    expect(reply.status).toBe(200);
    const member = {
      uid: uidOf(1),
      digest: DIGEST,
      certSha256: CERT,
      source: "coordinator-0",
      restarts: { coordinator: 0 },
    };
    expect(headAtPatch).toMatchObject({ members: { "coordinator-1": member } });
    expect(cluster.condition("default", "coordinator-1")?.message).toBe(
      "Recovered state sha256:5f0c2b0d6f9d… from peer coordinator-0",
    );
  });

  it("marks a stale pod Updated even when its gate write lost a race and the decision ran again", async () => {
    const NEW = `sha256:${"cd".repeat(32)}`;
    cluster.setHead(
      "default",
      headWith([memberOf(coordinatorPod(0), { digest: NEW }), memberOf(coordinatorPod(1))], {
        committed: {
          digest: NEW,
          parent: DIGEST,
          by: "coordinator-0",
          at: new Date().toISOString(),
          holders: {},
        },
        history: [DIGEST, NEW],
      }),
    );
    cluster.touch("default", "coordinator-1", (p) =>
      setCondition(p, "False", "StateStale", "Holds state sha256:5f0c…, the head is sha256:cdcd…"),
    );
    let once = true;
    cluster.beforePatch = () => {
      if (once) cluster.touch("default", "coordinator-1");
      once = false;
    };
    const body = JSON.stringify({ digest: NEW, source: "coordinator-0", certSha256: CERT });
    const reply = await confirm(await tokenFor(1), body);
    expect(reply).toMatchObject({ status: 200, json: { changed: true, reason: "Updated" } });
    expect(cluster.events.at(-1)).toMatchObject({
      reason: "Updated",
      message: `Updated to state ${NEW} from peer coordinator-0`,
    });
    // The sidecar's periodic repeat changes nothing.
    expect(await confirm(await tokenFor(1), body)).toMatchObject({ status: 200, json: { changed: false } });
    expect(cluster.condition("default", "coordinator-1")).toMatchObject({
      status: "True",
      reason: "Updated",
    });
  });

  it("finding 2: of two different first states confirmed at once, exactly one is recorded", async () => {
    const OTHER = `sha256:${"ab".repeat(32)}`;
    for (let round = 0; round < 10; round++) {
      cluster.pods.clear();
      cluster.heads.clear();
      cluster.add(withoutCondition(coordinatorPod(0)), withoutCondition(coordinatorPod(1)));
      // The other replica's confirmation lands between this one's read and its write.
      let raced = false;
      cluster.beforeHeadWrite = () => {
        if (raced) return;
        raced = true;
        cluster.setHead("default", {
          ...headWith([memberOf(coordinatorPod(round % 2 === 0 ? 0 : 1), { digest: OTHER })]),
          committed: {
            digest: OTHER,
            parent: null,
            by: "coordinator-0",
            at: new Date().toISOString(),
            holders: {},
          },
          history: [OTHER],
        });
      };
      const loser = round % 2 === 0 ? 1 : 0;
      const reply = await confirm(
        await tokenFor(loser),
        JSON.stringify({ digest: DIGEST, source: null, certSha256: CERT }),
      );
      expect(reply.status).toBe(409);
      expect(String(reply.json["error"])).toMatch(/not in StatefulSet coordinator's history.*split brain/);
      expect(cluster.condition("default", `coordinator-${loser}`)?.status).not.toBe("True");
      expect(cluster.head("default", "coordinator")?.members[`coordinator-${loser}`]).toBeUndefined();
    }
  });

  it("two first states through two concurrent calls: one 200, one 409, one gate True", async () => {
    cluster.pods.clear();
    cluster.heads.clear();
    cluster.add(withoutCondition(coordinatorPod(0)), withoutCondition(coordinatorPod(1)));
    const replies = await Promise.all([
      confirm(await tokenFor(0), JSON.stringify({ digest: DIGEST, source: null, certSha256: CERT })),
      confirm(
        await tokenFor(1),
        JSON.stringify({ digest: `sha256:${"ab".repeat(32)}`, source: null, certSha256: CERT }),
      ),
    ]);
    expect(replies.map((r) => r.status).sort()).toEqual([200, 409]);
    const open = [0, 1].filter((n) => cluster.condition("default", `coordinator-${n}`)?.status === "True");
    expect(open).toHaveLength(1);
  });

  // Each case: the token, a change to the cluster, and the expected status and reason.
  const refusals: [string, () => Promise<string>, () => void, number, RegExp][] = [
    ["no token", async () => "", () => undefined, 401, /missing bearer token.*audience coordinator-ha\)/],
    ["a garbage token", async () => "not.a.jwt", () => undefined, 401, /token refused/],
    [
      "a token for another audience",
      () => tokenFor(1, { audience: "https://kubernetes.default.svc" }),
      () => undefined,
      401,
      /expected audience coordinator-ha, got https:\/\/kubernetes.default.svc/,
    ],
    [
      // What the peer it recovered from holds: replayed here, it would mark the pod
      // recovered before it has the state.
      "the pod's own peer token (audience coordinator-ha-peer)",
      () => tokenFor(1, { audience: PEER_TOKEN_AUDIENCE }),
      () => undefined,
      401,
      /^token refused: token is not meant for this server: expected audience coordinator-ha, got coordinator-ha-peer$/,
    ],
    [
      "a token of another issuer",
      () => tokenFor(1, { issuer: "https://evil.example" }),
      () => undefined,
      401,
      /another issuer/,
    ],
    [
      "an expired token",
      () => tokenFor(1, { issuedAt: -7200, notBefore: -7200, expiresIn: -60 }),
      () => undefined,
      401,
      /expired/,
    ],
    [
      "a token of another namespace",
      () => tokenFor(1, { pod: { namespace: "other" } }),
      () => undefined,
      401,
      /no longer exists/,
    ],
    [
      "a token of another service account",
      () => tokenFor(1, { pod: { serviceAccount: "default" } }),
      () => undefined,
      403,
      /service account default/,
    ],
    [
      "a token of another pod (with that pod's uid)",
      () => tokenFor(1, { pod: { podUid: uidOf(2) } }),
      () => undefined,
      401,
      /replaced/,
    ],
    [
      "a token whose pod was deleted and recreated (uid mismatch)",
      () => tokenFor(1),
      () =>
        cluster.touch(
          "default",
          "coordinator-1",
          (p) => (p.metadata!.uid = "e0e0e0e0-0000-4000-8000-000000000001"),
        ),
      401,
      /replaced/,
    ],
    [
      "a replayed token of a deleted pod",
      () => tokenFor(1),
      () => cluster.pods.delete("default/coordinator-1"),
      401,
      /no longer exists/,
    ],
    [
      "a pod without the gate",
      () => tokenFor(1),
      () => cluster.touch("default", "coordinator-1", (p) => (p.spec!.readinessGates = [])),
      403,
      /no readiness gate/,
    ],
    [
      "a pod that is not selected",
      () => tokenFor(1),
      () =>
        cluster.touch(
          "default",
          "coordinator-1",
          (p) => (p.metadata!.labels!["app.kubernetes.io/name"] = "other"),
        ),
      403,
      /pod selector/,
    ],
    [
      "a pod outside a StatefulSet",
      () => tokenFor(1),
      () => cluster.touch("default", "coordinator-1", (p) => (p.metadata!.ownerReferences = [])),
      403,
      /not controlled by a StatefulSet/,
    ],
  ];

  it.each(refusals)("refuses %s, and leaves the gate alone", async (_why, token, change, status, says) => {
    change();
    const before = structuredClone(cluster.condition("default", "coordinator-1"));
    const reply = await confirm(await token());
    expect(reply.status).toBe(status);
    expect(reply.contentType).toContain("application/json");
    expect(String(reply.json["error"])).toMatch(says);
    expect(cluster.condition("default", "coordinator-1")).toEqual(before);
    expect(cluster.events).toHaveLength(0);
    expect(logs.some((l) => l["level"] === 40 && l["status"] === status)).toBe(true);
  });

  it.each([
    ["a body that is not JSON", "{", 400, /not valid JSON/],
    [
      "an unknown field",
      JSON.stringify({ digest: DIGEST, source: null, certSha256: CERT, pod: "coordinator-0" }),
      400,
      /unknown field/,
    ],
    ["a bad digest", JSON.stringify({ digest: "sha256:00", source: null, certSha256: CERT }), 400, /digest/],
    [
      "a failed peer's reason with a control character",
      JSON.stringify({
        digest: DIGEST,
        source: "coordinator-0",
        certSha256: CERT,
        failedPeers: [{ pod: "coordinator-2", reason: "reset\u001b[2J" }],
      }),
      400,
      /failedPeers\[0\]\.reason must be 1 to 200 characters without control characters/,
    ],
    ["a source of another StatefulSet", confirmation("vault-0"), 409, /not a pod of StatefulSet coordinator/],
    [
      "a second, different state",
      JSON.stringify({ digest: `sha256:${"0".repeat(64)}`, source: null, certSha256: CERT }),
      409,
      /split brain/,
    ],
  ])("refuses %s", async (_why, body, status, says) => {
    const reply = await confirm(await tokenFor(1), body);
    expect(reply.status).toBe(status);
    expect(String(reply.json["error"])).toMatch(says);
    expect(cluster.condition("default", "coordinator-1")?.status).toBe("False");
  });

  it("refuses a body larger than 16 KiB with 413", async () => {
    const reply = await confirm(await tokenFor(1), JSON.stringify({ pad: "x".repeat(20_000) }));
    expect(reply.status).toBe(413);
    expect(String(reply.json["error"])).toMatch(/larger than the limit/);
  });

  it("answers 503 while the pod cache is not synced", async () => {
    cluster.isSynced = false;
    const reply = await confirm(await tokenFor(1));
    expect(reply.status).toBe(503);
    expect(String(reply.json["error"])).toMatch(/not synced/);
    expect(cluster.condition("default", "coordinator-1")?.status).toBe("False");
  });
});

describe("GET /v1/peers", () => {
  it("answers the Ready, recovered peers of the caller's StatefulSet", async () => {
    const reply = await send("GET", "/v1/peers", { token: await tokenFor(1) });
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({
      namespace: "default",
      statefulSet: "coordinator",
      peers: [
        {
          pod: "coordinator-0",
          uid: uidOf(0),
          ip: "10.244.0.12",
          port: 7443,
          digest: DIGEST,
          certSha256: CERT,
        },
      ],
      head: { digest: DIGEST },
    } satisfies PeersResponse);
  });

  it("answers an empty list when no initialized peer exists", async () => {
    cluster.pods.clear();
    cluster.add(
      setCondition(withoutCondition(coordinatorPod(0)), "False", "AwaitingState", AWAITING_NO_PEER),
    );
    const reply = await send("GET", "/v1/peers", { token: await tokenFor(0) });
    expect(reply.status).toBe(200);
    expect(reply.json["peers"]).toEqual([]);
  });

  it("answers 503, never an empty list, while the pod cache is not synced", async () => {
    cluster.isSynced = false;
    const reply = await send("GET", "/v1/peers", { token: await tokenFor(1) });
    expect(reply.status).toBe(503);
    expect(reply.json).not.toHaveProperty("peers");
  });

  it("looks a pod that the cache does not know yet up live", async () => {
    const fresh: V1Pod = withoutCondition(coordinatorPod(2));
    cluster.add(fresh);
    const cacheGet = cluster.cache.get;
    cluster.cache.get = (ns, name) => (name === "coordinator-2" ? undefined : cacheGet(ns, name));
    try {
      const reply = await send("GET", "/v1/peers", { token: await tokenFor(2) });
      expect(reply.status).toBe(200);
      expect((reply.json["peers"] as { pod: string }[]).map((p) => p.pod)).toEqual(["coordinator-0"]);
    } finally {
      cluster.cache.get = cacheGet;
    }
  });

  it.each([
    ["no token", async () => "", 401],
    ["a token for another audience", () => tokenFor(1, { audience: "vault" }), 401],
    ["a replayed token of a deleted pod", () => tokenFor(3), 401],
    ["a token of another service account", () => tokenFor(1, { pod: { serviceAccount: "default" } }), 403],
  ])("refuses %s", async (_why, token, status) => {
    const reply = await send("GET", "/v1/peers", { token: await token() });
    expect(reply.status).toBe(status);
    expect(reply.json).not.toHaveProperty("peers");
  });

  it("refuses the pod's own peer token, which a peer holds, and says which audience it wants", async () => {
    const reply = await send("GET", "/v1/peers", {
      token: await tokenFor(1, { audience: PEER_TOKEN_AUDIENCE }),
    });
    expect(reply.status).toBe(401);
    expect(reply.json).toEqual({
      error:
        "token refused: token is not meant for this server: expected audience coordinator-ha, got coordinator-ha-peer",
    });
  });
});

describe("POST /v1/peer-access", () => {
  const ask = async (asker: number, about: Record<string, unknown>, opts: TokenOptions = {}) =>
    send("POST", "/v1/peer-access", { token: await tokenFor(asker, opts), body: JSON.stringify(about) });
  const member = (ordinal: number) => ({
    namespace: "default",
    pod: `coordinator-${ordinal}`,
    uid: uidOf(ordinal),
    serviceAccount: "coordinator",
  });

  it("allows a live member of the asking pod's StatefulSet, and logs who", async () => {
    const reply = await ask(0, member(1));
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ allowed: true });
    expect(logs.find((l) => l["call"] === "peer-access")).toMatchObject({
      namespace: "default",
      pod: "coordinator-0",
      callerNamespace: "default",
      caller: "coordinator-1",
      callerUid: uidOf(1),
    });
  });

  it("denies a deleted pod's identity, reading the apiserver, not the cache", async () => {
    cluster.pods.delete("default/coordinator-1");
    const reply = await ask(0, member(1));
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({ allowed: false, reason: "pod_gone" });
  });

  it("denies a bare pod that took a member's name", async () => {
    const bare = coordinatorPod(5);
    delete bare.metadata!.ownerReferences;
    bare.spec!.readinessGates = [];
    cluster.add(bare);
    const reply = await ask(0, member(5));
    expect(reply.json).toMatchObject({ allowed: false, reason: "not_member" });
  });

  it("gives no verdict to an asking pod that is not a member itself", async () => {
    cluster.touch("default", "coordinator-0", (p) => delete p.metadata!.ownerReferences);
    const reply = await ask(0, member(1));
    expect(reply.status).toBe(403);
    expect(reply.json).not.toHaveProperty("allowed");
  });

  it("refuses the asking pod's peer token (a peer could replay it) and a 48-hour token", async () => {
    expect((await ask(0, member(1), { audience: PEER_TOKEN_AUDIENCE })).status).toBe(401);
    const long = await ask(0, member(1), { expiresIn: 48 * 3600 });
    expect(long.status).toBe(401);
    expect(String(long.json["error"])).toMatch(/token lives 172800 s/);
  });

  it.each([
    ["no JSON", "{"],
    ["an unknown field", JSON.stringify({ ...member(1), extra: 1 })],
    ["a bad name", JSON.stringify({ ...member(1), pod: "Coordinator_1" })],
    ["no uid", JSON.stringify({ ...member(1), uid: undefined })],
  ])("answers 400 to a body with %s", async (_name, body) => {
    const reply = await send("POST", "/v1/peer-access", { token: await tokenFor(0), body });
    expect(reply.status).toBe(400);
  });
});

describe("hostile requests", () => {
  it.each(["/v1/recovered", "/v1/peer-access"])(
    "answers POST %s without a valid token before the body arrives, and closes the connection",
    async (path) => {
      const reply = await headersOnly(path, "garbage", { "content-length": String(MAX_BODY_BYTES) });
      expect(reply).toEqual({ status: 401, closed: true });
    },
  );

  it.each(["gzip", "br", "deflate", "x-unknown", "gzip, br"])(
    "answers 415 to Content-Encoding %s, never inflating it",
    async (encoding) => {
      const reply = await headersOnly("/v1/recovered", await tokenFor(1), {
        "content-encoding": encoding,
        "content-length": "100",
      });
      expect(reply).toEqual({ status: 415, closed: true });
    },
  );

  it("answers 413 to an announced oversized body before reading it", async () => {
    const reply = await headersOnly("/v1/recovered", await tokenFor(1), {
      "content-length": String(MAX_BODY_BYTES + 1),
    });
    expect(reply).toEqual({ status: 413, closed: true });
  });
});

/**
 * Sends only the request head (the body it announces never comes) and resolves once the
 * server has answered and closed the connection.
 */
async function headersOnly(path: string, token: string, headers: Record<string, string>) {
  return new Promise<{ status: number; closed: boolean }>((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port: server.port, rejectUnauthorized: false }, () => {
      socket.write(
        [
          `POST ${path} HTTP/1.1`,
          "host: handler",
          `authorization: Bearer ${token}`,
          "content-type: application/json",
          ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
          "",
          "",
        ].join("\r\n"),
      );
    });
    let text = "";
    socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
    socket.on("error", reject);
    socket.on("close", () =>
      resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0), closed: true }),
    );
  });
}

describe("a handler restricted to --namespace default", () => {
  // The same StatefulSet in a namespace the handler does not watch: everything else about
  // these callers is valid, as the unrestricted handler shows.
  const inOther = (pod: V1Pod) => {
    pod.metadata!.namespace = "other";
    return pod;
  };
  const otherToken = () => tokenFor(1, { pod: { namespace: "other" } });
  beforeEach(() => {
    cluster.add(
      inOther(coordinatorPod(0)),
      inOther(setCondition(withoutCondition(coordinatorPod(1)), "False", "AwaitingState", "w")),
    );
    cluster.setHead("other", headWith([memberOf(coordinatorPod(0))]));
  });

  it("refuses a confirmation from another namespace with 403, and leaves its gate alone", async () => {
    const before = structuredClone(cluster.condition("other", "coordinator-1"));
    const patches = cluster.patches.length;
    const reply = await confirm(await otherToken(), confirmation(), restricted);
    expect(reply.status).toBe(403);
    expect(reply.json["error"]).toBe(
      "pod other/coordinator-1 is in namespace other, which this handler does not watch " +
        "(--namespace default); add it to the handler's --namespace (chart value handler.namespaces)",
    );
    expect(cluster.condition("other", "coordinator-1")).toEqual(before);
    expect(cluster.patches).toHaveLength(patches);
    expect(cluster.events).toHaveLength(0);
    expect(logs.find((l) => l["reason"] === "namespace_not_watched")).toMatchObject({
      level: 40,
      namespace: "other",
      pod: "coordinator-1",
      call: "confirmation",
      status: 403,
    });
  });

  it("refuses GET /v1/peers from another namespace with 403, and lists no peers", async () => {
    const reply = await send("GET", "/v1/peers", { token: await otherToken(), to: restricted });
    expect(reply.status).toBe(403);
    expect(String(reply.json["error"])).toMatch(/namespace other, which this handler does not watch/);
    expect(reply.json).not.toHaveProperty("peers");
    // The unrestricted handler answers the very same caller.
    const unrestricted = await send("GET", "/v1/peers", { token: await otherToken() });
    expect(unrestricted.status).toBe(200);
    expect(unrestricted.json).toMatchObject({ namespace: "other", peers: [{ pod: "coordinator-0" }] });
  });

  it("serves its own namespace as before", async () => {
    const reply = await confirm(await tokenFor(1), confirmation(), restricted);
    expect(reply.status).toBe(200);
    expect(cluster.condition("default", "coordinator-1")?.status).toBe("True");
  });

  it("counts the refusals with their reason", async () => {
    await confirm(await otherToken(), confirmation(), restricted);
    await send("GET", "/v1/peers", { token: await otherToken(), to: restricted });
    const text = String((await send("GET", "/metrics", { to: restricted })).json["text"]);
    expect(text).toMatch(
      /coordinator_ha_handler_confirmations_total\{outcome="refused",reason="namespace_not_watched"\} [1-9]/,
    );
    expect(text).toMatch(
      /coordinator_ha_handler_peers_requests_total\{outcome="refused",reason="namespace_not_watched"\} [1-9]/,
    );
  });
});

describe("health and metrics", () => {
  it("is ready only while the pod cache is synced", async () => {
    expect((await send("GET", "/readyz")).status).toBe(200);
    cluster.isSynced = false;
    const reply = await send("GET", "/readyz");
    expect(reply.status).toBe(503);
    expect(reply.json).toMatchObject({ problems: { podCache: "the first list of pods has not completed" } });
    expect((await send("GET", "/healthz")).status).toBe(200);
  });

  it("counts confirmations, peers requests and condition writes", async () => {
    await confirm(await tokenFor(1));
    await confirm(await tokenFor(1, { audience: "vault" }));
    await send("GET", "/v1/peers", { token: await tokenFor(1) });
    const text = String((await send("GET", "/metrics")).json["text"]);
    expect(text).toMatch(/coordinator_ha_handler_confirmations_total\{outcome="recorded",reason=""\} [1-9]/);
    expect(text).toMatch(
      /coordinator_ha_handler_confirmations_total\{outcome="refused",reason="invalid_token"\} [1-9]/,
    );
    expect(text).toMatch(/coordinator_ha_handler_peers_requests_total\{outcome="answered",reason=""\} [1-9]/);
    expect(text).toMatch(
      /coordinator_ha_handler_condition_writes_total\{reason="RecoveredFromPeer",result="patched"\} [1-9]/,
    );
    expect(text).toMatch(/coordinator_ha_handler_cached_pods 2/);
  });

  it("answers unknown routes with a JSON 404", async () => {
    const reply = await send("GET", "/v1/state");
    expect(reply.status).toBe(404);
    expect(String(reply.json["error"])).toContain("POST /v1/recovered");
  });

  it("answers another method on a known path with 405", async () => {
    const reply = await send("GET", "/v1/recovered");
    expect(reply.status).toBe(405);
    expect(reply.json["error"]).toBe(
      "GET is not allowed on /v1/recovered; this server has POST /v1/recovered, GET /v1/peers, POST /v1/peer-access, POST /v1/proposals, POST /v1/holds, GET /v1/head, GET /healthz, GET /readyz and GET /metrics",
    );
  });
});

describe("the head: POST /v1/proposals, POST /v1/holds, GET /v1/head", () => {
  const NEW = `sha256:${"cd".repeat(32)}`;
  const propose = async (ordinal: number, body: object) =>
    send("POST", "/v1/proposals", { token: await tokenFor(ordinal), body: JSON.stringify(body) });
  const hold = async (ordinal: number, digest: string) =>
    send("POST", "/v1/holds", { token: await tokenFor(ordinal), body: JSON.stringify({ digest }) });
  beforeEach(() => {
    // Three replicas: the quorum is 2. coordinator-1 and -2 hold the head too.
    cluster.replicas = 3;
    cluster.add(coordinatorPod(2));
    cluster.setHead("default", headWith([0, 1, 2].map((n) => memberOf(coordinatorPod(n)))));
  });

  it("accepts a child of the head (202, the proposal with its proposer's address), commits it at the quorum", async () => {
    const proposed = await propose(1, { digest: NEW, parent: DIGEST, certSha256: CERT });
    expect(proposed.status).toBe(202);
    expect(proposed.json).toMatchObject({
      committed: { digest: DIGEST },
      proposal: {
        digest: NEW,
        parent: DIGEST,
        by: "coordinator-1",
        ip: "10.244.0.13",
        port: 7443,
        holders: ["coordinator-1"],
      },
      quorum: 2,
    });
    expect(await propose(1, { digest: NEW, parent: DIGEST, certSha256: CERT })).toMatchObject({
      status: 202,
    });
    const held = await hold(2, NEW);
    expect(held).toMatchObject({ status: 200, json: { committed: true } });
    expect(cluster.head("default", "coordinator")).toMatchObject({
      committed: { digest: NEW, parent: DIGEST, by: "coordinator-1" },
      history: [DIGEST, NEW],
      proposal: null,
    });
    const commit = logs.find((l) => l["decision"] === "commit");
    expect(commit).toMatchObject({
      digest: NEW,
      parent: DIGEST,
      holders: ["coordinator-1", "coordinator-2"],
    });
    const text = String((await send("GET", "/metrics")).json["text"]);
    expect(text).toMatch(/coordinator_ha_handler_commits_total\{outcome="committed",reason=""\} [1-9]/);
    expect(text).toMatch(/coordinator_ha_handler_commit_latency_seconds_count [1-9]/);
  });

  it("refuses concurrent, stale and sibling proposals with 409, the reason and the head", async () => {
    expect(await propose(1, { digest: NEW, parent: DIGEST, certSha256: CERT })).toMatchObject({
      status: 202,
    });
    const concurrent = await propose(2, {
      digest: `sha256:${"ef".repeat(32)}`,
      parent: DIGEST,
      certSha256: CERT,
    });
    expect(concurrent).toMatchObject({ status: 409, json: { reason: "update_in_progress", head: DIGEST } });
    expect(String(concurrent.json["error"])).toContain("coordinator-1 is committing sha256:cdcdcdcdcdcd…");
    const sibling = await propose(2, { digest: NEW, parent: `sha256:${"01".repeat(32)}`, certSha256: CERT });
    expect(sibling).toMatchObject({ status: 409 });
    const line = logs.find((l) => l["decision"] === "propose" && l["outcome"] === "refused");
    expect(line).toMatchObject({ digest: `sha256:${"ef".repeat(32)}`, head: DIGEST, pod: "coordinator-2" });
  });

  it("refuses a hold of nothing pending with 409 no_proposal", async () => {
    expect(await hold(2, NEW)).toMatchObject({ status: 409, json: { reason: "no_proposal", head: DIGEST } });
  });

  it("counts the quorum from the StatefulSet's annotation", async () => {
    cluster.quorumAnnotation = "1";
    const proposed = await propose(1, { digest: NEW, parent: DIGEST, certSha256: CERT });
    expect(proposed).toMatchObject({
      status: 200,
      json: { committed: { digest: NEW }, proposal: null, quorum: 1 },
    });
  });

  it("answers GET /v1/head at once when it differs, else when it changes", async () => {
    const now = await send("GET", `/v1/head?known=&proposal=&waitSeconds=5`, { token: await tokenFor(2) });
    expect(now).toMatchObject({
      status: 200,
      json: { committed: { digest: DIGEST }, proposal: null, quorum: 2 },
    });
    const started = Date.now();
    const waiting = send("GET", `/v1/head?known=${DIGEST}&proposal=&waitSeconds=20`, {
      token: await tokenFor(2),
    });
    await new Promise((r) => setTimeout(r, 200));
    await propose(1, { digest: NEW, parent: DIGEST, certSha256: CERT });
    headChanges.changed("default", "coordinator");
    const woke = await waiting;
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(woke).toMatchObject({ status: 200, json: { proposal: { digest: NEW, by: "coordinator-1" } } });
  });

  it("holds at most maxLongPolls long-polls; past them it answers at once and says when to ask again", async () => {
    const logger = pino({ level: "silent" });
    const busy = await startServer(logger, undefined, 1);
    try {
      const path = `/v1/head?known=${DIGEST}&proposal=&waitSeconds=20`;
      const held = send("GET", path, { token: await tokenFor(2), to: busy });
      await new Promise((r) => setTimeout(r, 200));
      const started = Date.now();
      const deferred = await send("GET", path, { token: await tokenFor(1), to: busy });
      expect(Date.now() - started).toBeLessThan(5000);
      expect(deferred).toMatchObject({
        status: 200,
        json: { committed: { digest: DIGEST }, proposal: null, pollAfterSeconds: 10 },
      });
      const text = String((await send("GET", "/metrics", { to: busy })).json["text"]);
      expect(text).toMatch(/coordinator_ha_handler_head_long_polls 1\b/);
      expect(text).toMatch(/coordinator_ha_handler_head_polls_deferred_total 1\b/);
      // The held one is answered on the next change, without pollAfterSeconds.
      await propose(1, { digest: NEW, parent: DIGEST, certSha256: CERT });
      headChanges.changed("default", "coordinator");
      const woke = await held;
      expect(woke.json).toMatchObject({ proposal: { digest: NEW } });
      expect(woke.json["pollAfterSeconds"]).toBeUndefined();
      const after = String((await send("GET", "/metrics", { to: busy })).json["text"]);
      expect(after).toMatch(/coordinator_ha_handler_head_long_polls 0\b/);
    } finally {
      await busy.close();
    }
  });

  it("shows a head that no existing pod holds as none: every instance was gone (rule L)", async () => {
    cluster.setHead(
      "default",
      headWith([0, 1, 2].map((n) => memberOf(coordinatorPod(n), { uid: `replaced-${n}` }))),
    );
    const now = await send("GET", `/v1/head?known=&proposal=&waitSeconds=0`, { token: await tokenFor(2) });
    expect(now).toMatchObject({ status: 200, json: { committed: null, proposal: null } });
  });

  it("returns after waitSeconds when nothing changes", async () => {
    const same = await send("GET", `/v1/head?known=${DIGEST}&waitSeconds=1`, { token: await tokenFor(2) });
    expect(same).toMatchObject({ status: 200, json: { committed: { digest: DIGEST } } });
  });

  it.each([
    ["/v1/head?waitSeconds=31", /waitSeconds must be a whole number from 0 to 30/],
    ["/v1/head?known=abc", /known must be "sha256:"/],
    ["/v1/head?since=1", /unknown query parameter\(s\): since/],
  ])("refuses GET %s with 400", async (path, message) => {
    const reply = await send("GET", path, { token: await tokenFor(2) });
    expect(reply.status).toBe(400);
    expect(String(reply.json["error"])).toMatch(message);
  });

  it.each([
    [{ digest: NEW, parent: DIGEST }, /certSha256/],
    [{ digest: NEW, parent: NEW, certSha256: CERT }, /nothing to update/],
    [{ digest: NEW, parent: DIGEST, certSha256: CERT, extra: 1 }, /unknown field/],
  ])("refuses the proposal %j with 400", async (body, message) => {
    const reply = await propose(1, body);
    expect(reply.status).toBe(400);
    expect(String(reply.json["error"])).toMatch(message);
  });

  it("refuses a caller without a token before anything", async () => {
    const reply = await send("POST", "/v1/proposals", { body: "{}" });
    expect(reply.status).toBe(401);
  });
});
