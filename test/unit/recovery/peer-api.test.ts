import { createServer } from "node:https";
import { pino } from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { close, listen } from "../../../src/http/listen.ts";
import { requestJson } from "../../../src/http/client.ts";
import { cachedJwksSource, type PodIdentity, type PodTokenVerifier } from "../../../src/identity/index.ts";
import { PEER_TOKEN_AUDIENCE, TOKEN_AUDIENCE } from "../../../src/names.ts";
import { peerApi, type MemberCheck } from "../../../src/recovery/peer-api.ts";
import { peerTokenVerifier } from "../../../src/recovery/peer-token.ts";
import { createPeerCertificate, type PeerCertificate } from "../../../src/recovery/peer-cert.ts";
import { fetchFromPeer } from "../../../src/recovery/peer-client.ts";
import { ephemeralKey, openBundle } from "../../../src/recovery/transfer.ts";
import { bundleDigest, createBundle, type Bundle } from "../../../src/state/bundle.ts";
import { ISSUER, jwks, podToken, signingKey, type PodClaims, type SigningKey } from "../identity/issuer.ts";

// The serving pod: coordinator-0 of StatefulSet coordinator in namespace default.
const self: PodClaims = {
  namespace: "default",
  serviceAccount: "coordinator",
  podName: "coordinator-0",
  podUid: "0b6e4a6c-2c4e-4b44-9a43-7c0e3f0a1d01",
};
const caller: PodClaims = {
  ...self,
  podName: "coordinator-1",
  podUid: "7f3c2a10-5d4e-4c1b-8a9f-2e6d1c0b3a42",
};
const bundle = createBundle([{ path: "coordinator.json", content: Buffer.from('{"seed":"s3cret"}') }]);

let key: SigningKey;
let cert: PeerCertificate;
let state: Bundle | undefined;
let verifierDown = false;
/** The handler's verdict on the caller (POST /v1/peer-access), and who it was asked about. */
let verdict: MemberCheck = { kind: "allowed" };
const asked: PodIdentity[] = [];
const logs: Record<string, unknown>[] = [];
let port: number;
let server: ReturnType<typeof createServer>;

beforeAll(async () => {
  key = await signingKey("ES256");
  cert = await createPeerCertificate(self.podName);
  // The verifier that the sidecar builds for its peer API (in-cluster-verifier.ts).
  const real = peerTokenVerifier(
    ISSUER,
    cachedJwksSource(async () => jwks(key)),
  );
  const verifier: PodTokenVerifier = {
    verify: async (token) => {
      if (verifierDown) throw new Error("apiserver unreachable");
      return real.verify(token);
    },
  };
  server = createServer(
    { cert: cert.certPem, key: cert.keyPem },
    peerApi({
      self,
      verifier,
      checkMember: async (who) => {
        asked.push(who);
        return verdict;
      },
      readState: async () => state,
      logger: pino({ level: "info" }, { write: (line: string) => logs.push(JSON.parse(line)) }),
    }),
  );
  port = await listen(server, 0, "127.0.0.1");
});
afterAll(async () => {
  await close(server);
});
beforeEach(() => {
  verdict = { kind: "allowed" };
  asked.length = 0;
  logs.length = 0;
});

async function post(body: unknown, token?: string) {
  return requestJson({
    url: new URL(`https://127.0.0.1:${port}/v1/state`),
    method: "POST",
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    body,
    pinSha256: cert.sha256,
    timeoutMs: 5000,
    maxResponseBytes: 1 << 20,
  });
}

/** The caller's peer token, as the sidecar sends it to a peer. */
const tokenFor = (pod: Partial<PodClaims> = {}, opts: Parameters<typeof podToken>[1] = {}) =>
  podToken(key, { audience: PEER_TOKEN_AUDIENCE, ...opts, pod: { ...caller, ...pod } });

describe("peer API", () => {
  it("serves the state as a JWE to a peer of the same StatefulSet", async () => {
    state = bundle;
    const ephemeral = await ephemeralKey();
    const res = await post({ publicKey: ephemeral.publicJwk }, await tokenFor());
    expect(res.status).toBe(200);
    const body = res.body as { digest: string; jwe: string };
    expect(body.digest).toBe(bundleDigest(bundle));
    expect(JSON.stringify(body)).not.toContain("s3cret");
    expect(await openBundle(body.jwe, ephemeral, bundleDigest(bundle))).toEqual(bundle);
    // The handler was asked about exactly the token's pod, and the log names it.
    expect(asked).toEqual([caller]);
    expect(logs.find((l) => l["msg"] === "served the state to a peer")).toMatchObject({
      callerNamespace: caller.namespace,
      caller: caller.podName,
      callerUid: caller.podUid,
      digest: bundleDigest(bundle),
    });
  });

  // The handler looked at the pod in the cluster: a token alone (of a deleted pod, or of a
  // pod that took a member's name) gets nothing.
  it.each([
    ["a pod that no longer exists", "pod_gone"],
    ["a namesake pod owned by no StatefulSet", "not_member"],
  ])("refuses with 403 and serves nothing when the handler says the caller is %s", async (_name, reason) => {
    state = bundle;
    verdict = { kind: "denied", reason, message: `pod default/coordinator-1: ${reason}` };
    const res = await post({ publicKey: (await ephemeralKey()).publicJwk }, await tokenFor());
    expect(res.status).toBe(403);
    expect((res.body as { error: string }).error).toMatch(/not a live member of this StatefulSet/);
    expect(JSON.stringify(res.body)).not.toContain("jwe");
    expect(logs.find((l) => l["status"] === 403)).toMatchObject({
      callerNamespace: caller.namespace,
      caller: caller.podName,
      callerUid: caller.podUid,
      reason,
    });
  });

  it("fails closed with 503 when the handler cannot be asked", async () => {
    state = bundle;
    verdict = { kind: "unknown", reason: "handler answered 503: not synced" };
    const res = await post({ publicKey: (await ephemeralKey()).publicJwk }, await tokenFor());
    expect(res.status).toBe(503);
    expect(JSON.stringify(res.body)).not.toContain("jwe");
  });

  it("answers a refused caller before its body arrives, and closes the connection", async () => {
    verdict = { kind: "denied", reason: "pod_gone", message: "gone" };
    const reply = await headersOnly(await tokenFor(), { "content-length": "4000" });
    expect(reply.status).toBe(403);
    expect(reply.closed).toBe(true);
    const stranger = await headersOnly("garbage", { "content-length": "4000" });
    expect(stranger.status).toBe(401);
    expect(stranger.closed).toBe(true);
  });

  it.each(["gzip", "br", "deflate", "x-unknown"])(
    "answers 415 to a body with Content-Encoding %s",
    async (encoding) => {
      const res = await headersOnly(await tokenFor(), {
        "content-encoding": encoding,
        "content-length": "100",
      });
      expect(res.status).toBe(415);
      expect(res.closed).toBe(true);
    },
  );

  it("refuses a long-lived token (kubectl create token --duration 48h) before asking the handler", async () => {
    const res = await post(
      { publicKey: (await ephemeralKey()).publicJwk },
      await tokenFor({}, { expiresIn: 48 * 3600 }),
    );
    expect(res.status).toBe(401);
    expect((res.body as { error: string }).error).toMatch(/token lives 172800 s/);
    expect(asked).toEqual([]);
  });

  it("hands the state over through the pinned peer client", async () => {
    state = bundle;
    const peer = {
      pod: self.podName,
      uid: self.podUid,
      ip: "127.0.0.1",
      port,
      digest: bundleDigest(bundle),
      certSha256: cert.sha256,
    };
    expect(await fetchFromPeer(peer, await tokenFor())).toEqual(bundle);
    await expect(
      fetchFromPeer({ ...peer, digest: `sha256:${"0".repeat(64)}` }, await tokenFor()),
    ).rejects.toThrow(/the handler reported/);
  });

  it.each([
    ["no token", undefined, 401, /expected Authorization: Bearer .*audience coordinator-ha-peer/],
    ["a token that is no JWT", "garbage", 401, /token refused/],
  ])("refuses %s with 401", async (_name, token, status, message) => {
    const res = await post({ publicKey: (await ephemeralKey()).publicJwk }, token);
    expect(res.status).toBe(status);
    expect((res.body as { error: string }).error).toMatch(message);
  });

  it.each([
    [
      "another audience",
      {},
      { audience: "kubernetes" },
      401,
      /expected audience coordinator-ha-peer, got kubernetes/,
    ],
    ["another issuer", {}, { issuer: "https://evil.example" }, 401, /another issuer/],
    ["an expired token", {}, { issuedAt: -7200, expiresIn: -3600 }, 401, /expired/],
    ["another namespace", { namespace: "other" }, {}, 403, /not in namespace default/],
    ["another service account", { serviceAccount: "default" }, {}, 403, /service account coordinator/],
    ["another StatefulSet", { podName: "other-1" }, {}, 403, /StatefulSet coordinator/],
    ["the serving pod itself", { podName: self.podName, podUid: self.podUid }, {}, 403, /this pod/],
  ])("refuses %s without asking the handler", async (_name, pod, opts, status, message) => {
    state = bundle;
    const res = await post({ publicKey: (await ephemeralKey()).publicJwk }, await tokenFor(pod, opts));
    expect(res.status).toBe(status);
    expect((res.body as { error: string }).error).toMatch(message);
    expect(asked).toEqual([]);
  });

  // The handler's token of the very pod that asks: a peer that accepted it would be shown a
  // token it could replay to the handler. The caller is otherwise a perfect peer.
  it("refuses the caller's handler-audience token, and never serves the state for it", async () => {
    state = bundle;
    const handlerToken = await tokenFor({}, { audience: TOKEN_AUDIENCE });
    const res = await post({ publicKey: (await ephemeralKey()).publicJwk }, handlerToken);
    expect(res.status).toBe(401);
    expect((res.body as { error: string }).error).toBe(
      `token refused: token is not meant for this server: expected audience ${PEER_TOKEN_AUDIENCE}, got ${TOKEN_AUDIENCE}`,
    );
    expect(res.body).not.toHaveProperty("jwe");
    const peer = {
      pod: self.podName,
      uid: self.podUid,
      ip: "127.0.0.1",
      port,
      digest: bundleDigest(bundle),
      certSha256: cert.sha256,
    };
    await expect(fetchFromPeer(peer, handlerToken)).rejects.toThrow(/peer answered 401/);
  });

  it("refuses a token signed by another key", async () => {
    const stranger = await signingKey("ES256");
    const res = await post(
      { publicKey: (await ephemeralKey()).publicJwk },
      await podToken(stranger, { audience: PEER_TOKEN_AUDIENCE, pod: caller }),
    );
    expect(res.status).toBe(401);
  });

  it.each([
    ["no publicKey", { key: {} }, /"publicKey"/],
    ["an unknown field", { publicKey: {}, extra: 1 }, /unknown field/],
    [
      "a private key",
      { publicKey: { kty: "EC", crv: "P-256", x: "A".repeat(43), y: "A".repeat(43), d: "A".repeat(43) } },
      /private key/,
    ],
    ["an RSA key", { publicKey: { kty: "RSA", n: "x", e: "AQAB" } }, /P-256/],
    ["an array", [1], /"publicKey"/],
  ])("answers 400 to a body with %s", async (_name, body, message) => {
    const res = await post(body, await tokenFor());
    expect(res.status).toBe(400);
    expect((res.body as { error: string }).error).toMatch(message);
  });

  it("answers 400 to broken JSON and 413 to an oversized body, after checking the token", async () => {
    const token = await tokenFor();
    const broken = await rawPost("{", token);
    expect(broken.status).toBe(400);
    const big = JSON.stringify({ publicKey: { pad: "x".repeat(10_000) } });
    expect((await rawPost(big, token)).status).toBe(413);
    // Without a valid token the body is never read.
    expect((await rawPost(big, "garbage")).status).toBe(401);
  });

  it("answers 409 when this pod holds no state", async () => {
    state = undefined;
    const res = await post({ publicKey: (await ephemeralKey()).publicJwk }, await tokenFor());
    expect(res.status).toBe(409);
    expect((res.body as { error: string }).error).toMatch(/holds no state/);
  });

  it("answers 503 when it cannot verify tokens now", async () => {
    verifierDown = true;
    try {
      const res = await post({ publicKey: (await ephemeralKey()).publicJwk }, await tokenFor());
      expect(res.status).toBe(503);
    } finally {
      verifierDown = false;
    }
  });

  it("answers 405 for another method on /v1/state, and 404 elsewhere, with a JSON error", async () => {
    const get = (path: string) =>
      requestJson({
        url: new URL(`https://127.0.0.1:${port}${path}`),
        method: "GET",
        pinSha256: cert.sha256,
        timeoutMs: 5000,
        maxResponseBytes: 4096,
      });
    const wrongMethod = await get("/v1/state");
    expect(wrongMethod.status).toBe(405);
    expect((wrongMethod.body as { error: string }).error).toBe(
      "GET is not allowed on /v1/state; this server has POST /v1/state",
    );
    const elsewhere = await get("/v1/peers");
    expect(elsewhere.status).toBe(404);
    expect((elsewhere.body as { error: string }).error).toMatch(/POST \/v1\/state/);
  });
});

async function rawPost(text: string, token: string) {
  const { request } = await import("node:https");
  return new Promise<{ status: number }>((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path: "/v1/state",
        method: "POST",
        rejectUnauthorized: false,
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0 }));
      },
    );
    req.on("error", reject);
    req.end(text);
  });
}

/**
 * Sends only the request head (the body it announces never comes) and waits for the answer
 * and for the server to close the connection.
 */
async function headersOnly(token: string, headers: Record<string, string>) {
  const { connect } = await import("node:tls");
  return new Promise<{ status: number; closed: boolean }>((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      socket.write(
        [
          "POST /v1/state HTTP/1.1",
          "host: peer",
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
