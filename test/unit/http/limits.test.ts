// Slow, idle and too many connections against a real TLS server (startTlsServer, as the
// webhook and the handler run it) with the limits of limits.ts, scaled down so that the test
// is quick. What counts is that the server, not the client, ends every such connection, and
// that it never holds more than maxConnections; no assert is about how fast.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerLimits } from "../../../src/http/limits.ts";
import { startTlsServer, type TlsServer } from "../../../src/http/tls-server.ts";
import { createCa, issueServingCert } from "../../../webhook-certs/x509.ts";

const LIMITS: ServerLimits = {
  headersTimeoutMs: 300,
  requestTimeoutMs: 600,
  keepAliveTimeoutMs: 300,
  idleTimeoutMs: 1_000,
  maxConnections: 50,
};

let dir: string;
let server: TlsServer;
let requests = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "cha-limits-"));
  const ca = await createCa({ commonName: "limits CA" });
  const pair = await issueServingCert(ca, { ips: ["127.0.0.1"] });
  writeFileSync(join(dir, "tls.crt"), pair.certPem);
  writeFileSync(join(dir, "tls.key"), pair.keyPem);
  server = await startTlsServer({
    port: 0,
    host: "127.0.0.1",
    certFile: join(dir, "tls.crt"),
    keyFile: join(dir, "tls.key"),
    handler: (req, res) => {
      requests++;
      req.resume();
      req.on("end", () => res.end("ok"));
    },
    logger: pino({ level: "silent" }),
    limits: LIMITS,
  });
});

afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Resolves when the socket is closed, with what the server sent before closing it. */
function closedBy(socket: Socket): Promise<string> {
  let text = "";
  socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
  socket.on("error", () => undefined);
  return new Promise((resolve) => socket.on("close", () => resolve(text)));
}

function tls(): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port: server.port, rejectUnauthorized: false }, () =>
      resolve(socket),
    );
    socket.once("error", reject);
  });
}

describe("connection limits", () => {
  it("closes a TCP connection that never starts its TLS handshake", async () => {
    const socket = netConnect({ host: "127.0.0.1", port: server.port });
    await expect(closedBy(socket)).resolves.toBe("");
  });

  it("closes a TLS connection that never sends a request", async () => {
    const socket = await tls();
    await closedBy(socket);
    expect(socket.destroyed).toBe(true);
  });

  it("closes a connection whose headers trickle in (slowloris) with 408", async () => {
    const socket = await tls();
    const closed = closedBy(socket);
    socket.write("POST / HTTP/1.1\r\nhost: x\r\n");
    const timer = setInterval(() => socket.writable && socket.write("x-slow: 1\r\n"), 100);
    const text = await closed;
    clearInterval(timer);
    expect(text).toMatch(/^HTTP\/1\.1 408/);
  });

  it("closes a connection whose body trickles in with 408", async () => {
    const socket = await tls();
    const closed = closedBy(socket);
    socket.write("POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n");
    const timer = setInterval(() => socket.writable && socket.write("x"), 100);
    const text = await closed;
    clearInterval(timer);
    expect(text).toMatch(/^HTTP\/1\.1 408/);
  });

  it("closes an idle keep-alive connection after its request", async () => {
    const socket = await tls();
    const closed = closedBy(socket);
    socket.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    const text = await closed;
    expect(text).toMatch(/^HTTP\/1\.1 200/);
  });

  it("holds at most maxConnections of 200 idle connections, and closes every one of them", async () => {
    const before = requests;
    const sockets: Socket[] = [];
    const closings: Promise<string>[] = [];
    for (let i = 0; i < 200; i++) {
      const socket = netConnect({ host: "127.0.0.1", port: server.port });
      sockets.push(socket);
      closings.push(closedBy(socket));
    }
    await Promise.all(
      sockets.map((s) => new Promise((r) => (s.connecting ? s.once("connect", r) : r(null)))),
    );
    const open = await new Promise<number>((resolve, reject) =>
      server.server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
    );
    expect(open).toBeLessThanOrEqual(LIMITS.maxConnections);
    await Promise.all(closings);
    expect(sockets.every((s) => s.destroyed)).toBe(true);
    expect(requests).toBe(before);
    // The server still serves once they are gone.
    const socket = await tls();
    const closed = closedBy(socket);
    socket.write("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    expect(await closed).toMatch(/^HTTP\/1\.1 200/);
  });
});
