// The handler under a burst: a thousand pods of one StatefulSet confirm at the same moment
// (a StatefulSet with podManagementPolicy Parallel, or every pod after a handler outage), over
// real TLS, against the in-memory cluster of the unit tests. The handler takes at most
// API_LIMITS.maxConnections connections at once and closes the others on accept; each client
// retries as a sidecar does (backoff on a connection error or a 503). What must hold: every
// confirmation lands (every gate True, every member recorded in the one StateHead whose every
// write is a compare-and-swap), nothing is refused that should not be, and the handler's
// memory stays bounded. The figures are printed; timing is not asserted (bench, not test).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { conditionWriter } from "../../src/handler/condition-writer.ts";
import { createHeadCalls, HeadChanges } from "../../src/handler/head-calls.ts";
import { handlerMetrics } from "../../src/handler/metrics.ts";
import { createHandlerApp } from "../../src/handler/server.ts";
import { createHandlerService, handlerTokenVerifier } from "../../src/handler/service.ts";
import { API_LIMITS } from "../../src/http/limits.ts";
import { createRegistry } from "../../src/http/metrics.ts";
import { startTlsServer, type TlsServer } from "../../src/http/tls-server.ts";
import { cachedJwksSource } from "../../src/identity/index.ts";
import { parseLabelSelector } from "../../src/kube/label-selector.ts";
import { RECOVERED_CONDITION } from "../../src/names.ts";
import { createCa, issueServingCert, type CertificateAuthority } from "../../webhook-certs/x509.ts";
import { ISSUER, jwks, podToken, signingKey } from "../unit/identity/issuer.ts";
import { FakeCluster } from "../unit/handler/fake-cluster.ts";
import {
  CERT,
  coordinatorPod,
  DIGEST,
  headWith,
  memberOf,
  setCondition,
  uidOf,
  withoutCondition,
} from "../unit/handler/pods.ts";

const PODS = 1000;
/** A sidecar's patience, in attempts (its backoff grows to 2 s). */
const MAX_ATTEMPTS = 40;

let dir: string;
let ca: CertificateAuthority;
let server: TlsServer;
let cluster: FakeCluster;
const tokens: string[] = [];

function pod(ordinal: number) {
  const p = coordinatorPod(ordinal);
  // coordinatorPod numbers its IPs for a handful of pods.
  p.status!.podIP = `10.244.${Math.floor(ordinal / 250)}.${(ordinal % 250) + 2}`;
  p.status!.podIPs = [{ ip: p.status!.podIP }];
  return p;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "handler-burst-"));
  ca = await createCa({ commonName: "handler burst CA" });
  const serving = await issueServingCert(ca, { dnsNames: ["localhost"], ips: ["127.0.0.1"] });
  writeFileSync(join(dir, "tls.crt"), serving.certPem);
  writeFileSync(join(dir, "tls.key"), serving.keyPem);
  const key = await signingKey("ES256");
  for (let i = 0; i < PODS; i++) {
    tokens.push(await podToken(key, { pod: { podName: `coordinator-${i}`, podUid: uidOf(i) } }));
  }

  cluster = new FakeCluster();
  cluster.replicas = PODS;
  cluster.add(pod(0));
  for (let i = 1; i < PODS; i++) {
    cluster.add(setCondition(withoutCondition(pod(i)), "False", "AwaitingState", "waiting for its state"));
  }
  cluster.setHead("default", headWith([memberOf(pod(0))]));

  const logger = pino({ level: process.env["LOG_LEVEL"] ?? "silent" });
  const registry = createRegistry();
  const metrics = handlerMetrics(registry, () => cluster.cache.size());
  const service = createHandlerService({
    verifier: handlerTokenVerifier(
      ISSUER,
      cachedJwksSource(async () => jwks(key)),
    ),
    selector: parseLabelSelector("app.kubernetes.io/name=coordinator"),
    namespaces: undefined,
    cache: cluster.cache,
    pods: cluster.api,
    writer: conditionWriter({ pods: cluster.api, logger, metrics, instance: "handler-burst-0" }),
    store: cluster.store,
    headCalls: createHeadCalls({
      store: cluster.store,
      statefulSets: cluster.statefulSets,
      cache: cluster.cache,
      changes: new HeadChanges(),
      metrics,
      logger,
    }),
    metrics,
    logger,
  });
  server = await startTlsServer({
    port: 0,
    host: "127.0.0.1",
    certFile: join(dir, "tls.crt"),
    keyFile: join(dir, "tls.key"),
    handler: createHandlerApp({ service, logger, registry, readiness: {} }),
    logger,
    limits: API_LIMITS,
  });
}, 60_000);

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One POST /v1/recovered; a connection error is status 0. */
function confirmOnce(ordinal: number): Promise<number> {
  const body = JSON.stringify({ digest: DIGEST, source: "coordinator-0", certSha256: CERT });
  return new Promise((resolve) => {
    const req = httpsRequest(
      {
        host: "127.0.0.1",
        servername: "localhost",
        port: server.port,
        method: "POST",
        path: "/v1/recovered",
        ca: ca.certPem,
        agent: false,
        headers: {
          authorization: `Bearer ${tokens[ordinal]}`,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
        },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", () => resolve(0));
    req.end(body);
  });
}

/** As a sidecar confirms: again after a connection error or a 5xx, with a growing backoff. */
async function confirm(ordinal: number): Promise<{ status: number; attempts: number; statuses: number[] }> {
  const statuses: number[] = [];
  let backoff = 50;
  for (let attempt = 1; ; attempt++) {
    const status = await confirmOnce(ordinal);
    statuses.push(status);
    if ((status !== 0 && status < 500) || attempt === MAX_ATTEMPTS)
      return { status, attempts: attempt, statuses };
    await new Promise((r) => setTimeout(r, backoff * (0.5 + Math.random())));
    backoff = Math.min(backoff * 2, 2000);
  }
}

describe("the handler under a burst of confirmations", () => {
  it(`records all ${PODS - 1} confirmations that arrive at once, with bounded memory`, async () => {
    const rssBefore = process.memoryUsage().rss;
    let peakRss = rssBefore;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: PODS - 1 }, (_, i) => confirm(i + 1)));
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);

    const byStatus = new Map<number, number>();
    for (const r of results) for (const s of r.statuses) byStatus.set(s, (byStatus.get(s) ?? 0) + 1);
    const attempts = results.map((r) => r.attempts).sort((a, b) => a - b);
    console.log(
      `${PODS - 1} confirmations in ${seconds.toFixed(1)} s; answers by status (0: connection refused or reset): ` +
        `${JSON.stringify(Object.fromEntries(byStatus))}; attempts p50 ${attempts[Math.floor(attempts.length / 2)]}, ` +
        `max ${attempts.at(-1)}; head writes ${cluster.headWrites}; RSS ${(rssBefore / 2 ** 20).toFixed(0)} -> ` +
        `peak ${(peakRss / 2 ** 20).toFixed(0)} MiB (test process, clients included)`,
    );

    expect(results.filter((r) => r.status !== 200).map((r) => r.statuses)).toEqual([]);
    for (let i = 1; i < PODS; i++) {
      const gate = cluster.pods
        .get(`default/coordinator-${i}`)!
        .status!.conditions!.find((c) => c.type === RECOVERED_CONDITION);
      expect(gate?.status, `coordinator-${i}`).toBe("True");
    }
    expect(Object.keys(cluster.head("default", "coordinator")!.members)).toHaveLength(PODS);
    // No status other than 200, a refused connection, and 503 (try again) on the way.
    expect([...byStatus.keys()].filter((s) => ![0, 200, 503].includes(s))).toEqual([]);
    // A thousand small requests, a bounded number at a time: far from a gigabyte.
    expect(peakRss - rssBefore).toBeLessThan(512 * 2 ** 20);
  }, 120_000);
});
