// The reloading HTTPS server on its own: only a changed certificate pair is a rotation,
// and a broken pair never replaces the one that serves.
import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTlsServer, type TlsServer } from "../../../src/http/tls-server.ts";
import {
  createCa,
  issueServingCert,
  type CertificateAndKey,
  type CertificateAuthority,
} from "../../../webhook-certs/x509.ts";
import { API_LIMITS } from "../../../src/http/limits.ts";

let dir: string;
let ca: CertificateAuthority;
let server: TlsServer;
const logs: { msg: string }[] = [];
const reloads = () => logs.filter((l) => l.msg === "reloaded TLS certificate").length;

const writePair = (pair: CertificateAndKey) => {
  writeFileSync(join(dir, "tls.key"), pair.keyPem);
  writeFileSync(join(dir, "tls.crt"), pair.certPem);
};

/** Serial number of the certificate that a new connection sees. */
const servedSerial = () =>
  new Promise<string>((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: server.port,
        path: "/",
        ca: ca.certPem,
        servername: "localhost",
        agent: false,
      },
      (res) => {
        resolve((res.socket as TLSSocket).getPeerX509Certificate()!.serialNumber);
        res.resume();
      },
    );
    req.on("error", reject);
    req.end();
  });

const serial = (pair: CertificateAndKey) => new X509Certificate(pair.certPem).serialNumber;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "cha-tls-"));
  ca = await createCa({ commonName: "test CA" });
  writePair(await issueServingCert(ca, { dnsNames: ["localhost"], ips: ["127.0.0.1"] }));
  const logger = pino({ level: "info" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  server = await startTlsServer({
    port: 0,
    host: "127.0.0.1",
    certFile: join(dir, "tls.crt"),
    keyFile: join(dir, "tls.key"),
    handler: (_req, res) => res.end("ok"),
    logger,
    limits: API_LIMITS,
  });
});

afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("startTlsServer", () => {
  it("does not reload for an unrelated file or an unchanged pair", async () => {
    const before = reloads();
    writeFileSync(join(dir, "unrelated.log"), "noise");
    expect(server.reload()).toBe(true);
    expect(reloads()).toBe(before);
  });

  it("serves a rotated pair to new connections", async () => {
    const rotated = await issueServingCert(ca, { dnsNames: ["localhost"], ips: ["127.0.0.1"] });
    writePair(rotated);
    expect(server.reload()).toBe(true);
    expect(await servedSerial()).toBe(serial(rotated));
  });

  it("keeps serving the last good pair when the new one does not match", async () => {
    const good = await servedSerial();
    const other = await issueServingCert(ca, { dnsNames: ["localhost"], ips: ["127.0.0.1"] });
    writeFileSync(join(dir, "tls.crt"), other.certPem);
    expect(server.reload()).toBe(false);
    expect(await servedSerial()).toBe(good);
  });
});
