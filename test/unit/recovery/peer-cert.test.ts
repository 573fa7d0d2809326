// The peer certificate as a TLS stack and an independent X.509 parser (@peculiar/x509, the
// library that wrote it before) read it: a self-signed P-256 leaf for the pod, valid from a
// little before now for the pod's life, whose fingerprint is what peers pin.
import { createPrivateKey, X509Certificate as NodeCertificate } from "node:crypto";
import { createServer } from "node:https";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { describe, expect, it } from "vitest";
import { requestJson } from "../../../src/http/client.ts";
import { close, listen } from "../../../src/http/listen.ts";
import { integer, oid, time } from "../../../src/recovery/der.ts";
import { createPeerCertificate } from "../../../src/recovery/peer-cert.ts";

describe("createPeerCertificate", () => {
  it("is a self-signed P-256 certificate for the pod, and its key matches it", async () => {
    const before = Date.now();
    const cert = await createPeerCertificate("coordinator-0");
    const parsed = new NodeCertificate(cert.certPem);
    expect(parsed.subject).toBe("CN=coordinator-0");
    expect(parsed.issuer).toBe("CN=coordinator-0");
    expect(parsed.ca).toBe(false);
    expect(parsed.verify(parsed.publicKey)).toBe(true);
    expect(parsed.checkPrivateKey(createPrivateKey(cert.keyPem))).toBe(true);
    expect(parsed.publicKey.asymmetricKeyDetails).toEqual({ namedCurve: "prime256v1" });
    expect(parsed.fingerprint256.replaceAll(":", "").toLowerCase()).toBe(cert.sha256);
    expect(Date.parse(parsed.validFrom)).toBeLessThanOrEqual(before - 4 * 60_000);
    expect(Date.parse(parsed.validTo) - before).toBeGreaterThan(9 * 365 * 24 * 3600_000);
    expect(parsed.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]);
  });

  it("has the extensions of a TLS server leaf, as an X.509 library decodes them", async () => {
    const cert = new x509.X509Certificate((await createPeerCertificate("coordinator-12")).certPem);
    expect(await cert.isSelfSigned()).toBe(true);
    const basic = cert.getExtension(x509.BasicConstraintsExtension);
    expect(basic?.ca).toBe(false);
    expect(basic?.critical).toBe(true);
    const usage = cert.getExtension(x509.KeyUsagesExtension);
    expect(usage?.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    expect(usage?.critical).toBe(true);
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([
      x509.ExtendedKeyUsage.serverAuth,
    ]);
    expect(cert.signatureAlgorithm).toMatchObject({ name: "ECDSA", hash: { name: "SHA-256" } });
  });

  it("takes the longest pod names, and gives each certificate its own key and serial", async () => {
    const name = `${"c".repeat(60)}-99`;
    const [a, b] = await Promise.all([createPeerCertificate(name), createPeerCertificate(name)]);
    const [pa, pb] = [new NodeCertificate(a.certPem), new NodeCertificate(b.certPem)];
    expect(pa.subject).toBe(`CN=${name}`);
    expect(pa.serialNumber).not.toBe(pb.serialNumber);
    expect(a.sha256).not.toBe(b.sha256);
  });

  it("serves TLS 1.3, and a client that pins its fingerprint gets through", async () => {
    const cert = await createPeerCertificate("coordinator-1");
    const server = createServer(
      { cert: cert.certPem, key: cert.keyPem, minVersion: "TLSv1.3" },
      (_req, res) => res.end('{"ok":true}'),
    );
    const port = await listen(server, 0, "127.0.0.1");
    try {
      const res = await requestJson({
        url: new URL(`https://127.0.0.1:${port}/`),
        method: "GET",
        pinSha256: cert.sha256,
        timeoutMs: 5000,
        maxResponseBytes: 1024,
      });
      expect(res.body).toEqual({ ok: true });
    } finally {
      await close(server);
    }
  });
});

describe("der", () => {
  it("encodes integers minimally and positive", () => {
    expect(integer(Buffer.from([0, 0, 5])).toString("hex")).toBe("020105");
    expect(integer(Buffer.from([0x80])).toString("hex")).toBe("02020080");
    expect(integer(Buffer.from([0])).toString("hex")).toBe("020100");
  });

  it("encodes object identifiers with multi-byte arcs", () => {
    // ecdsa-with-SHA256, as RFC 5758 lists its encoding.
    expect(oid("1.2.840.10045.4.3.2").toString("hex")).toBe("06082a8648ce3d040302");
  });

  it("writes UTCTime until 2049 and GeneralizedTime from 2050", () => {
    expect(time(new Date("2049-12-31T23:59:59Z")).toString("ascii").slice(2)).toBe("491231235959Z");
    expect(time(new Date("2049-12-31T23:59:59Z"))[0]).toBe(0x17);
    expect(time(new Date("2050-01-01T00:00:00Z")).toString("ascii").slice(2)).toBe("20500101000000Z");
    expect(time(new Date("2050-01-01T00:00:00Z"))[0]).toBe(0x18);
  });
});
