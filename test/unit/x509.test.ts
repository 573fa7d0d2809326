import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import { connect, createServer, type TLSSocket } from "node:tls";
import type { AddressInfo } from "node:net";
import { SignJWT, importPKCS8, importSPKI, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import {
  createCa,
  generateKeyPair,
  issueClientCert,
  issueServingCert,
  loadCa,
  type CertificateAndKey,
} from "../../webhook-certs/x509.ts";

/** Completes a real TLS handshake against `server` and reports whether the client trusted it. */
async function handshake(
  server: CertificateAndKey,
  caPem: string,
  servername?: string,
): Promise<string | null> {
  const srv = createServer({ cert: server.certPem, key: server.keyPem }, (s) => s.end());
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const { port } = srv.address() as AddressInfo;
  try {
    const socket: TLSSocket = connect({
      host: "127.0.0.1",
      port,
      ca: caPem,
      servername,
      rejectUnauthorized: false,
    });
    await once(socket, "secureConnect");
    const error = socket.authorizationError;
    socket.destroy();
    return error ? String(error) : null;
  } finally {
    srv.close();
  }
}

describe("x509", () => {
  it("creates a CA that signs itself", async () => {
    const ca = await createCa({ commonName: "test-ca" });
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe("CN=test-ca");
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(ca.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it("issues a serving certificate that TLS accepts for its IPs and DNS names only", async () => {
    const ca = await createCa({ commonName: "test-ca" });
    const serving = await issueServingCert(ca, {
      dnsNames: ["webhook.ns.svc", "localhost"],
      ips: ["127.0.0.1"],
    });
    const cert = new X509Certificate(serving.certPem);
    expect(cert.subject).toBe("CN=webhook.ns.svc");
    expect(cert.subjectAltName).toBe("DNS:webhook.ns.svc, DNS:localhost, IP Address:127.0.0.1");
    expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(new X509Certificate(ca.certPem))).toBe(true);

    expect(await handshake(serving, ca.certPem)).toBeNull();
    expect(await handshake(serving, ca.certPem, "webhook.ns.svc")).toBeNull();
    const other = await createCa({ commonName: "other-ca" });
    expect(await handshake(serving, other.certPem)).toMatch(
      /UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify/i,
    );
  });

  it("adds clientAuth to a serving certificate on request", async () => {
    const ca = await createCa({ commonName: "test-ca" });
    const serving = await issueServingCert(ca, { ips: ["127.0.0.1"], clientAuth: true });
    expect(new X509Certificate(serving.certPem).keyUsage).toEqual(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
  });

  it("issues a client certificate whose subject carries the user and the groups", async () => {
    const ca = await createCa({ commonName: "test-ca" });
    const client = await issueClientCert(ca, { cn: "admin", groups: ["system:masters", "devs"] });
    const cert = new X509Certificate(client.certPem);
    expect(cert.subject.split("\n")).toEqual(["O=system:masters", "O=devs", "CN=admin"]);
    expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.2"]);
    expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
  });

  it("reloads a CA from PEM and keeps issuing certificates that the original CA bundle trusts", async () => {
    for (const keyAlgorithm of ["ECDSA-P256", "RSA-2048"] as const) {
      const ca = await createCa({ commonName: `ca-${keyAlgorithm}`, keyAlgorithm });
      const loaded = await loadCa({ certPem: ca.certPem, keyPem: ca.keyPem });
      const serving = await issueServingCert(loaded, { ips: ["127.0.0.1"], keyAlgorithm });
      expect(await handshake(serving, ca.certPem)).toBeNull();
    }
  });

  it("refuses a CA key that does not belong to the certificate, and a leaf as CA", async () => {
    const ca = await createCa({ commonName: "a" });
    const other = await createCa({ commonName: "b" });
    await expect(loadCa({ certPem: ca.certPem, keyPem: other.keyPem })).rejects.toThrow(/does not match/);
    const leaf = await issueServingCert(ca, { dnsNames: ["x"] });
    await expect(loadCa(leaf)).rejects.toThrow(/not a CA/);
  });

  it("rejects a host name passed as an IP and a certificate without names", async () => {
    const ca = await createCa({ commonName: "a" });
    await expect(issueServingCert(ca, { ips: ["localhost"] })).rejects.toThrow(/not an IP address/);
    await expect(issueServingCert(ca, {})).rejects.toThrow(/at least one/);
  });

  it("generates a signing key pair in the PEM forms that the apiserver and jose read", async () => {
    const pair = await generateKeyPair("RSA-2048");
    const jwt = await new SignJWT({ a: 1 })
      .setProtectedHeader({ alg: "RS256" })
      .sign(await importPKCS8(pair.privateKeyPem, "RS256"));
    const { payload } = await jwtVerify(jwt, await importSPKI(pair.publicKeyPem, "RS256"));
    expect(payload["a"]).toBe(1);
  });
});
