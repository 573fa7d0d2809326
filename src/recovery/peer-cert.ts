// The peer API's TLS identity: a self-signed P-256 certificate made at startup and kept only
// in memory. Nobody verifies it against a CA; peers pin its SHA-256 fingerprint, which this
// sidecar confirms to the handler, and which the handler hands out with GET /v1/peers. A
// restarted sidecar has a new certificate and confirms its new fingerprint.
//
// The certificate is written in DER by hand (der.ts) and signed with node:crypto: an X.509
// library with its dependency injection container would cost every Coordinator pod more
// resident memory than the rest of the sidecar's own code (docs/performance.md), for one
// fixed certificate shape.
import { createHash, generateKeyPair, randomBytes, sign, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import {
  bitString,
  boolean,
  contextExplicit,
  integer,
  octetString,
  oid,
  sequence,
  set,
  time,
  utf8String,
} from "./der.ts";

export interface PeerCertificate {
  certPem: string;
  keyPem: string;
  /** SHA-256 (lowercase hex) over the certificate's DER encoding. */
  sha256: string;
}

/** Peers pin the certificate, so its validity only has to cover the pod's life. */
const VALIDITY_MS = 10 * 365 * 24 * 3600 * 1000;
/** Backdated a little: a peer whose clock runs behind still accepts the handshake. */
const BACKDATE_MS = 5 * 60 * 1000;

const OID = {
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
};

const generateEcKeyPair = promisify(generateKeyPair);

export async function createPeerCertificate(podName: string): Promise<PeerCertificate> {
  const { publicKey, privateKey } = await generateEcKeyPair("ec", { namedCurve: "P-256" });
  const now = Date.now();
  const der = selfSigned({
    podName,
    publicKey,
    privateKey,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + VALIDITY_MS),
  });
  return {
    certPem: pem("CERTIFICATE", der),
    keyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    sha256: createHash("sha256").update(der).digest("hex"),
  };
}

interface CertificateFields {
  podName: string;
  publicKey: KeyObject;
  privateKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
}

/** RFC 5280: a v3 certificate, subject = issuer = CN=<pod>, a TLS server's leaf. */
function selfSigned(fields: CertificateFields): Buffer {
  // A positive serial of 16 random bytes, its first byte non-zero so that DER needs no padding.
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  const algorithm = sequence(oid(OID.ecdsaWithSha256));
  const name = sequence(set(sequence(oid(OID.commonName), utf8String(fields.podName))));
  const extension = (id: string, critical: boolean, value: Buffer) =>
    sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));
  const tbs = sequence(
    contextExplicit(0, integer(Buffer.from([2]))),
    integer(serial),
    algorithm,
    name,
    sequence(time(fields.notBefore), time(fields.notAfter)),
    name,
    fields.publicKey.export({ format: "der", type: "spki" }),
    contextExplicit(
      3,
      sequence(
        // Not a CA (cA FALSE is the default, so DER leaves it out).
        extension(OID.basicConstraints, true, sequence()),
        // digitalSignature only: bit 0, with 7 unused bits.
        extension(OID.keyUsage, true, bitString(Buffer.from([0x80]), 7)),
        extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth))),
      ),
    ),
  );
  // ECDSA signatures from node:crypto are DER (r, s) by default, as X.509 wants them.
  const signature = sign("sha256", tbs, fields.privateKey);
  return sequence(tbs, algorithm, bitString(signature));
}

function pem(label: string, der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}
