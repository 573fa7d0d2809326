// The peer API's TLS identity: a self-signed P-256 certificate made at startup and kept only
// in memory. Nobody verifies it against a CA; peers pin its SHA-256 fingerprint, which this
// sidecar confirms to the handler, and which the handler hands out with GET /v1/peers. A
// restarted sidecar has a new certificate and confirms its new fingerprint.
import { createHash, createPrivateKey, randomBytes, webcrypto } from "node:crypto";
// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";

export interface PeerCertificate {
  certPem: string;
  keyPem: string;
  /** SHA-256 (lowercase hex) over the certificate's DER encoding. */
  sha256: string;
}

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
/** Peers pin the certificate, so its validity only has to cover the pod's life. */
const VALIDITY_MS = 10 * 365 * 24 * 3600 * 1000;

export async function createPeerCertificate(podName: string): Promise<PeerCertificate> {
  const crypto = webcrypto;
  const keys = (await crypto.subtle.generateKey(ALGORITHM, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f;
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serial.toString("hex"),
      name: [{ CN: [podName] }],
      // Backdated a little: a peer whose clock runs behind still accepts the handshake.
      notBefore: new Date(now - 5 * 60 * 1000),
      notAfter: new Date(now + VALIDITY_MS),
      keys,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      ],
    },
    crypto,
  );
  const keyPem = createPrivateKey({
    key: Buffer.from(await crypto.subtle.exportKey("pkcs8", keys.privateKey)),
    format: "der",
    type: "pkcs8",
  })
    .export({ format: "pem", type: "pkcs8" })
    .toString();
  return {
    certPem: cert.toString("pem"),
    keyPem,
    sha256: createHash("sha256").update(Buffer.from(cert.rawData)).digest("hex"),
  };
}
