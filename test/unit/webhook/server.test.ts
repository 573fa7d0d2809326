// The webhook as the apiserver sees it: HTTPS with a certificate from a test CA that the
// client verifies, real AdmissionReviews, bad input, metrics, and certificates that rotate
// while the server runs.
import { Buffer } from "node:buffer";
import { X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createCa,
  issueServingCert,
  type CertificateAndKey,
  type CertificateAuthority,
} from "../../../webhook-certs/x509.ts";
import { parseWebhookConfig } from "../../../src/webhook/config.ts";
import type { AdmissionReviewResponse } from "../../../src/webhook/review.ts";
import { startWebhook, type RunningWebhook } from "../../../src/webhook/run.ts";
import { applyPatch, decodePatch, podReview, readJson } from "./fixtures.ts";

interface Reply {
  status: number;
  contentType: string;
  body: string;
  /** Serial number of the certificate the server presented. */
  serial: string;
  allow: string | undefined;
}

let dir: string;
let ca: CertificateAuthority;
let serving: CertificateAndKey;
let webhook: RunningWebhook;
const logs: Record<string, unknown>[] = [];

const certFile = () => join(dir, "tls", "tls.crt");
const keyFile = () => join(dir, "tls", "tls.key");
const handlerCaFile = () => join(dir, "handler-ca", "ca.crt");

function writeServingPair(pair: CertificateAndKey): void {
  writeFileSync(keyFile(), pair.keyPem);
  writeFileSync(certFile(), pair.certPem);
}

/** One request on a new TLS connection that trusts only the test CA. */
function send(method: string, path: string, body?: string | Buffer, chunked = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: "127.0.0.1",
        servername: "localhost",
        port: webhook.port,
        method,
        path,
        ca: ca.certPem,
        agent: false,
        headers:
          body === undefined || chunked
            ? {}
            : { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers["content-type"]),
            body: Buffer.concat(chunks).toString("utf8"),
            serial,
            allow: res.headers.allow,
          }),
        );
      },
    );
    req.on("error", reject);
    if (chunked && body !== undefined) {
      // No content-length: the server can only notice the size while reading.
      const data = Buffer.from(body);
      for (let at = 0; at < data.length; at += 64 * 1024) req.write(data.subarray(at, at + 64 * 1024));
    } else if (body !== undefined) {
      req.write(body);
    }
    req.end();
  });
}

interface InjectedPod {
  spec: { initContainers: { env: { name: string; value?: string }[] }[] };
}

/** The handler CA that the webhook injects into a pod created now. */
async function injectedHandlerCa(): Promise<string | undefined> {
  const input = readJson<object>("minimal.in.json");
  const reply = await mutate(podReview(input));
  const pod = applyPatch(input, decodePatch(JSON.parse(reply.body).response)) as InjectedPod;
  return pod.spec.initContainers[0]!.env.find((e) => e.name === "CHA_HANDLER_CA")?.value;
}

const mutate = (body: unknown) =>
  send("POST", "/mutate", typeof body === "string" ? body : JSON.stringify(body));

/** Repeats `probe` on fresh connections until it returns true (the file watchers are asynchronous). */
async function eventually(probe: () => Promise<boolean>): Promise<void> {
  while (!(await probe())) await new Promise((r) => setTimeout(r, 50));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "webhook-test-"));
  // Separate directories, as separately mounted Secrets would be: each has its own watch.
  mkdirSync(join(dir, "tls"));
  mkdirSync(join(dir, "handler-ca"));
  ca = await createCa({ commonName: "webhook test CA" });
  serving = await issueServingCert(ca, { dnsNames: ["localhost"], ips: ["127.0.0.1"] });
  writeServingPair(serving);
  writeFileSync(handlerCaFile(), ca.certPem);

  const logger = pino({ level: "info" }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const config = parseWebhookConfig({
    port: "0",
    tlsCert: certFile(),
    tlsKey: keyFile(),
    sidecarImage: "coordinator-ha:test",
    sidecarImagePullPolicy: "IfNotPresent",
    handlerUrl: "https://coordinator-ha-handler.coordinator-ha.svc",
    handlerCaFile: handlerCaFile(),
  });
  webhook = await startWebhook(config, logger);
});

afterAll(async () => {
  await webhook?.close(0);
  rmSync(dir, { recursive: true, force: true });
});

describe("POST /mutate over TLS", () => {
  it("injects a Coordinator pod", async () => {
    const input = readJson("contrast-coordinator.in.json");
    const body = podReview(input, { uid: "b3a2c1d0-0000-4000-8000-000000000001" });
    const reply = await mutate(body);
    expect(reply.status).toBe(200);
    expect(reply.contentType).toMatch(/^application\/json/);
    const review = JSON.parse(reply.body) as AdmissionReviewResponse;
    expect(review).toMatchObject({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response: { uid: "b3a2c1d0-0000-4000-8000-000000000001", allowed: true, patchType: "JSONPatch" },
    });
    const patched = applyPatch(input, decodePatch(review.response));
    // The golden was made with a placeholder handler CA; this server injects its real file.
    const golden = readJson<InjectedPod>("contrast-coordinator.golden.json");
    golden.spec.initContainers[0]!.env.find((e) => e.name === "CHA_HANDLER_CA")!.value = ca.certPem;
    expect(patched).toEqual(golden);
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: 30,
        uid: "b3a2c1d0-0000-4000-8000-000000000001",
        namespace: "contrast",
        pod: "coordinator-1",
        outcome: "injected",
      }),
    );
  });

  it("allows a skipped request without a patch", async () => {
    const reply = await mutate(
      podReview(readJson("minimal.in.json"), { operation: "UPDATE", uid: "skip-1" }),
    );
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toEqual({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response: { uid: "skip-1", allowed: true },
    });
  });

  const big = JSON.stringify(
    podReview({ kind: "Pod", spec: { containers: [{ name: "a" }] }, pad: "x".repeat(3 * 1024 * 1024) }),
  );
  it.each([
    ["a body that is not JSON", () => mutate('{"apiVersion": '), 400, "invalid_json", /^body is not JSON: /],
    [
      "an empty body",
      () => send("POST", "/mutate"),
      400,
      "invalid_json",
      /^body is empty; POST an AdmissionReview/,
    ],
    [
      "an AdmissionReview without request",
      () => mutate({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }),
      400,
      "invalid_review",
      /^AdmissionReview has no request$/,
    ],
    [
      "a request object that is not a pod",
      () => mutate(podReview({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, data: {} })),
      400,
      "object_not_pod",
      /^request.object is a "ConfigMap", not a Pod$/,
    ],
    [
      "a body over 3 MiB",
      () => mutate(big),
      413,
      "body_too_large",
      /^body is larger than the limit of 3145728 bytes$/,
    ],
    [
      "a chunked body over 3 MiB",
      () => send("POST", "/mutate", big, true),
      413,
      "body_too_large",
      /^body is larger than the limit of 3145728 bytes$/,
    ],
  ])(
    "answers %s with a JSON error, logs it, and keeps serving",
    async (_what, call, status, reason, message) => {
      const reply = await call();
      expect(reply.status).toBe(status);
      expect(reply.contentType).toMatch(/^application\/json/);
      expect(JSON.parse(reply.body)).toEqual({ error: expect.stringMatching(message) });
      expect(logs).toContainEqual(
        expect.objectContaining({ level: 40, outcome: "rejected", reason, status }),
      );

      const after = await mutate(podReview(readJson("minimal.in.json")));
      expect(after.status).toBe(200);
    },
  );

  it("refuses a pod that would lose its state directory, with the reason", async () => {
    const input = readJson<{ spec: { containers: { volumeMounts?: object[] }[]; volumes?: object[] } }>(
      "minimal.in.json",
    );
    input.spec.volumes = [{ name: "data", emptyDir: {} }];
    input.spec.containers[0]!.volumeMounts = [{ name: "data", mountPath: "/var/run/coordinator-ha/state" }];
    const reply = await mutate(podReview(input, { uid: "conflict-1" }));
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body).response).toEqual({
      uid: "conflict-1",
      allowed: false,
      status: {
        code: 403,
        message: expect.stringContaining('mounts volume "data" at /var/run/coordinator-ha/state'),
      },
    });
  });
});

describe("hostile bodies", () => {
  /** A POST /mutate with raw headers and body; the answer, and whether the server closed. */
  function raw(headers: Record<string, string>, body: Buffer) {
    return new Promise<{ status: number; body: string; closed: boolean }>((resolve, reject) => {
      const socket = tlsConnect(
        { host: "127.0.0.1", port: webhook.port, servername: "localhost", ca: ca.certPem },
        () => {
          const head = [
            "POST /mutate HTTP/1.1",
            "host: webhook",
            "content-type: application/json",
            `content-length: ${body.length}`,
            ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
            "",
            "",
          ].join("\r\n");
          socket.write(Buffer.concat([Buffer.from(head), body]));
        },
      );
      let text = "";
      socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
      socket.on("error", reject);
      socket.on("close", () =>
        resolve({
          status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0),
          body: text.slice(text.indexOf("\r\n\r\n") + 4),
          closed: true,
        }),
      );
    });
  }

  // 3 MiB of AdmissionReview (a uid of 3 MiB) in a few hundred bytes of brotli: inflated, it
  // was parsed, answered (the uid echoed) and logged in full.
  const bomb = brotliCompressSync(
    Buffer.from(
      JSON.stringify(podReview(readJson("minimal.in.json"), { uid: "a".repeat(3 * 1024 * 1024 - 2048) })),
    ),
  );

  it.each([
    ["br", bomb],
    ["gzip", gzipSync(Buffer.from(JSON.stringify(podReview(readJson("minimal.in.json")))))],
    ["deflate", deflateSync(Buffer.from("{}"))],
    ["x-unknown", Buffer.from("{}")],
    ["br, gzip", bomb],
  ])(
    "answers Content-Encoding %s with 415, never inflating it, and closes the connection",
    async (encoding, body) => {
      expect(bomb.length).toBeLessThan(1024);
      logs.length = 0;
      const reply = await raw({ "content-encoding": encoding }, body);
      expect(reply.status).toBe(415);
      expect(reply.closed).toBe(true);
      expect(JSON.parse(reply.body)).toEqual({
        error: expect.stringMatching(/Content-Encoding .* is not accepted/),
      });
      expect(logs).toContainEqual(
        expect.objectContaining({ outcome: "rejected", reason: "encoded_body", status: 415 }),
      );
      // Nothing of the body reached the log.
      expect(JSON.stringify(logs).length).toBeLessThan(4096);
      expect((await mutate(podReview(readJson("minimal.in.json")))).status).toBe(200);
    },
  );

  it("answers a 3 MiB uid with a short 400, and logs a bounded line", async () => {
    logs.length = 0;
    const reply = await mutate(
      podReview(readJson("minimal.in.json"), { uid: "a".repeat(3 * 1024 * 1024 - 2048) }),
    );
    expect(reply.status).toBe(400);
    expect(reply.body.length).toBeLessThan(1024);
    expect(JSON.stringify(logs).length).toBeLessThan(4096);
  });
});

describe("health and metrics", () => {
  it("serves /healthz and /readyz", async () => {
    expect(await send("GET", "/healthz")).toMatchObject({ status: 200, body: '{"status":"ok"}' });
    expect(await send("GET", "/readyz")).toMatchObject({ status: 200, body: '{"status":"ready"}' });
  });

  it("answers an unknown route with a JSON 404", async () => {
    const reply = await send("GET", "/validate");
    expect(reply.status).toBe(404);
    expect(JSON.parse(reply.body).error).toBe(
      "no route GET /validate; this server has POST /mutate, GET /healthz, GET /readyz and GET /metrics",
    );
  });

  it("answers another method on a known path with 405 and the Allow header", async () => {
    const reply = await send("GET", "/mutate");
    expect(reply).toMatchObject({ status: 405, allow: "POST" });
    expect(JSON.parse(reply.body).error).toBe(
      "GET is not allowed on /mutate; this server has POST /mutate, GET /healthz, GET /readyz and GET /metrics",
    );
    expect(await send("POST", "/healthz", "{}")).toMatchObject({ status: 405, allow: "GET, HEAD" });
  });

  it("counts requests by outcome and reason, with a latency histogram", async () => {
    await mutate(podReview(readJson("minimal.in.json"), { operation: "DELETE", object: null }));
    await mutate("nope");
    const reply = await send("GET", "/metrics");
    expect(reply.status).toBe(200);
    expect(reply.contentType).toMatch(/^text\/plain/);
    const value = (series: string) => {
      const line = reply.body.split("\n").find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.split(" ")[1]);
    };
    expect(
      value('coordinator_ha_webhook_admission_requests_total{outcome="injected",reason=""}'),
    ).toBeGreaterThan(0);
    expect(
      value('coordinator_ha_webhook_admission_requests_total{outcome="skipped",reason="not_create"}'),
    ).toBeGreaterThan(0);
    expect(
      value('coordinator_ha_webhook_admission_requests_total{outcome="rejected",reason="invalid_json"}'),
    ).toBeGreaterThan(0);
    expect(
      value('coordinator_ha_webhook_admission_requests_total{outcome="skipped",reason="opted_out"}'),
    ).toBe(0);
    expect(
      value('coordinator_ha_webhook_admission_duration_seconds_count{outcome="injected"}'),
    ).toBeGreaterThan(0);
    expect(reply.body).toContain(
      'coordinator_ha_webhook_admission_duration_seconds_bucket{le="0.005",outcome="injected"}',
    );
    expect(reply.body).toContain("process_resident_memory_bytes");
  });
});

describe("rotation without restart", () => {
  it("presents a rotated serving certificate to new connections", async () => {
    const oldSerial = new X509Certificate(serving.certPem).serialNumber;
    expect((await send("GET", "/healthz")).serial).toBe(oldSerial);

    const rotated = await issueServingCert(ca, { dnsNames: ["localhost"], ips: ["127.0.0.1"] });
    const newSerial = new X509Certificate(rotated.certPem).serialNumber;
    writeServingPair(rotated);
    await eventually(async () => (await send("GET", "/healthz")).serial === newSerial);
    expect((await mutate(podReview(readJson("minimal.in.json")))).serial).toBe(newSerial);
  });

  it("injects a rotated handler CA into pods created afterwards", async () => {
    expect(await injectedHandlerCa()).toBe(ca.certPem);
    const next = await createCa({ commonName: "rotated handler CA" });
    writeFileSync(handlerCaFile(), next.certPem);
    await eventually(async () => (await injectedHandlerCa()) === next.certPem);
  });

  it("keeps the last good handler CA when the file turns invalid", async () => {
    const before = await injectedHandlerCa();
    const failures = () =>
      logs.filter((l) => l["msg"] === "handler CA reload failed; keeping the previous bundle");
    const seen = failures().length;
    writeFileSync(handlerCaFile(), "not a certificate");
    await eventually(async () => failures().length > seen);
    expect(await injectedHandlerCa()).toBe(before);
  });
});
