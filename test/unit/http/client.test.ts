import { createServer as createHttpServer, type ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { requestJson, RequestError } from "../../../src/http/client.ts";
import { close, listen } from "../../../src/http/listen.ts";
import { createPeerCertificate, type PeerCertificate } from "../../../src/recovery/peer-cert.ts";

let cert: PeerCertificate;
let other: PeerCertificate;
const servers: Server[] = [];

beforeAll(async () => {
  [cert, other] = await Promise.all([
    createPeerCertificate("coordinator-0"),
    createPeerCertificate("coordinator-1"),
  ]);
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => close(s)));
});

/** An HTTPS server that counts the requests that reach it. */
async function serve(answer: (res: ServerResponse) => void) {
  const seen: string[] = [];
  const server = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    seen.push(req.headers.authorization ?? "");
    answer(res);
  });
  servers.push(server);
  const port = await listen(server, 0, "127.0.0.1");
  return { url: new URL(`https://127.0.0.1:${port}/v1/state`), seen };
}

const call = (url: URL, extra: Partial<Parameters<typeof requestJson>[0]> = {}) =>
  requestJson({
    url,
    method: "POST",
    headers: { authorization: "Bearer secret-token" },
    body: { hello: 1 },
    timeoutMs: 5000,
    maxResponseBytes: 1024,
    ...extra,
  });

describe("requestJson with a pinned certificate", () => {
  it("talks to the server whose certificate has the pinned fingerprint", async () => {
    const s = await serve((res) => res.end(JSON.stringify({ ok: true })));
    expect(await call(s.url, { pinSha256: cert.sha256 })).toEqual({ status: 200, body: { ok: true } });
    expect(s.seen).toEqual(["Bearer secret-token"]);
  });

  it("refuses another certificate before anything, the token included, is sent", async () => {
    const s = await serve((res) => res.end("{}"));
    await expect(call(s.url, { pinSha256: other.sha256 })).rejects.toThrow(/not the pinned certificate/);
    expect(s.seen).toEqual([]);
  });

  it("without a pin or CA, refuses a self-signed certificate", async () => {
    const s = await serve((res) => res.end("{}"));
    await expect(call(s.url)).rejects.toThrow(RequestError);
    expect(s.seen).toEqual([]);
  });

  it("gives up on a server that does not answer in time", async () => {
    const s = await serve(() => undefined);
    await expect(call(s.url, { pinSha256: cert.sha256, timeoutMs: 100 })).rejects.toThrow(
      /no answer within 100 ms/,
    );
  });

  it("refuses a response larger than the limit", async () => {
    const s = await serve((res) => res.end("x".repeat(5000)));
    await expect(call(s.url, { pinSha256: cert.sha256 })).rejects.toThrow(/larger than 1024 bytes/);
  });

  it("reports an unreachable server as a RequestError", async () => {
    const s = await serve((res) => res.end("{}"));
    await close(servers.pop()!);
    await expect(call(s.url, { pinSha256: cert.sha256 })).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe("requestJson over plain HTTP", () => {
  it("returns the status and an undefined body for non-JSON", async () => {
    const server = createHttpServer((_req, res) => {
      res.statusCode = 503;
      res.end("not ready\n");
    });
    const port = await listen(server, 0, "127.0.0.1");
    try {
      expect(
        await call(new URL(`http://127.0.0.1:${port}/probe`), { method: "GET", body: undefined }),
      ).toEqual({
        status: 503,
        body: undefined,
      });
    } finally {
      await close(server);
    }
  });
});
