// A small X.509 toolkit for the certificates that a Kubernetes setup needs: a CA, TLS serving
// certificates (webhooks, the apiserver, etcd) and client certificates (CN = user name,
// O = groups, which is how the apiserver reads x509 client identities).
//
// It is used by the local test cluster's PKI (test/cluster/launcher/pki.ts) and by the
// certificate tooling for local and manual webhook installs. Everything is returned as PEM,
// the format that Kubernetes flags, Secrets and `caBundle` fields take.
//
// Keys are ECDSA P-256 unless asked otherwise: small, fast to generate, and accepted by every
// Kubernetes component. RSA-2048 is there for consumers that insist on RSA (for example a
// service-account signing key whose tokens must be RS256).
import { createPrivateKey, randomBytes, webcrypto } from "node:crypto";
import { isIP } from "node:net";
// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";

// Node's WebCrypto; the global DOM types are not in this project's lib.
const crypto = webcrypto;
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

export type KeyAlgorithm = "ECDSA-P256" | "RSA-2048";

/** A certificate and its private key, both PEM encoded. */
export interface CertificateAndKey {
  /** PEM "CERTIFICATE". */
  certPem: string;
  /** PEM "PRIVATE KEY" (PKCS#8). */
  keyPem: string;
}

/** A CA that can issue certificates: its certificate, its key, and the parsed forms. */
export interface CertificateAuthority extends CertificateAndKey {
  readonly cert: x509.X509Certificate;
  readonly privateKey: CryptoKey;
  /** How the CA signs: ECDSA with SHA-256, or RSASSA-PKCS1-v1_5 with SHA-256. */
  readonly keyType: "ec" | "rsa";
}

export interface CaOptions {
  commonName: string;
  /** Default 3650 days. */
  validityDays?: number;
  /** Default ECDSA-P256. */
  keyAlgorithm?: KeyAlgorithm;
}

export interface ServingCertOptions {
  /** DNS names for the subjectAltName; the first one is also the CN. */
  dnsNames?: string[];
  /** IPv4 or IPv6 addresses for the subjectAltName. */
  ips?: string[];
  /** Defaults to the first DNS name, else the first IP. */
  commonName?: string;
  /** Default 365 days. */
  validityDays?: number;
  keyAlgorithm?: KeyAlgorithm;
  /**
   * Also allow the certificate as a TLS client certificate (extKeyUsage clientAuth), for a
   * server that dials itself or its peers with its serving certificate, as etcd does.
   */
  clientAuth?: boolean;
}

export interface ClientCertOptions {
  /** The user name (subject CN) that the apiserver will see. */
  cn: string;
  /** The groups (subject O attributes) that the apiserver will see. */
  groups?: string[];
  /** Default 365 days. */
  validityDays?: number;
  keyAlgorithm?: KeyAlgorithm;
}

export interface KeyPairPem {
  /** PEM "PRIVATE KEY" (PKCS#8). */
  privateKeyPem: string;
  /** PEM "PUBLIC KEY" (SubjectPublicKeyInfo). */
  publicKeyPem: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** Backdate notBefore so that a peer whose clock runs a little behind accepts a fresh cert. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

function keyGenParams(alg: KeyAlgorithm): webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams {
  return alg === "ECDSA-P256"
    ? { name: "ECDSA", namedCurve: "P-256" }
    : {
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-256",
      };
}

function signingAlgorithm(keyType: "ec" | "rsa"): webcrypto.Algorithm | webcrypto.EcdsaParams {
  return keyType === "ec" ? { name: "ECDSA", hash: "SHA-256" } : { name: "RSASSA-PKCS1-v1_5" };
}

function keyTypeOf(alg: KeyAlgorithm): "ec" | "rsa" {
  return alg === "ECDSA-P256" ? "ec" : "rsa";
}

async function generateKeys(alg: KeyAlgorithm): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(keyGenParams(alg), true, ["sign", "verify"])) as CryptoKeyPair;
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await crypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
}

/** A positive serial number of 128 random bits (RFC 5280 allows up to 20 octets). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString("hex");
}

function validity(days: number): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: new Date(now - CLOCK_SKEW_MS), notAfter: new Date(now + days * DAY_MS) };
}

/** Creates a self-signed CA (basicConstraints CA:true, keyCertSign, cRLSign). */
export async function createCa(opts: CaOptions): Promise<CertificateAuthority> {
  const keyAlgorithm = opts.keyAlgorithm ?? "ECDSA-P256";
  const keys = await generateKeys(keyAlgorithm);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialNumber(),
      name: [{ CN: [opts.commonName] }],
      ...validity(opts.validityDays ?? 3650),
      keys,
      signingAlgorithm: signingAlgorithm(keyTypeOf(keyAlgorithm)),
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return {
    cert,
    certPem: cert.toString("pem"),
    keyPem: await privateKeyPem(keys.privateKey),
    privateKey: keys.privateKey,
    keyType: keyTypeOf(keyAlgorithm),
  };
}

/**
 * Loads an existing CA from PEM, for example to issue a new serving certificate that the
 * `caBundle` already in a cluster keeps trusting.
 */
export async function loadCa(pem: CertificateAndKey): Promise<CertificateAuthority> {
  const cert = new x509.X509Certificate(pem.certPem);
  const basic = cert.getExtension(x509.BasicConstraintsExtension);
  if (!basic?.ca) {
    throw new Error(`certificate "${cert.subject}" is not a CA (basicConstraints CA:true is missing)`);
  }
  const keyObject = createPrivateKey(pem.keyPem);
  let importParams: webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams;
  let keyType: "ec" | "rsa";
  if (keyObject.asymmetricKeyType === "ec" && keyObject.asymmetricKeyDetails?.namedCurve === "prime256v1") {
    keyType = "ec";
    importParams = { name: "ECDSA", namedCurve: "P-256" };
  } else if (keyObject.asymmetricKeyType === "rsa") {
    keyType = "rsa";
    importParams = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  } else {
    throw new Error(
      `unsupported CA key type ${keyObject.asymmetricKeyType ?? "unknown"}: use an ECDSA P-256 or an RSA key`,
    );
  }
  const privateKey = keyObject.toCryptoKey(importParams, false, ["sign"]);
  // A key that does not belong to the certificate would issue certificates that nothing trusts.
  const probe = new Uint8Array(randomBytes(32));
  const publicKey = await cert.publicKey.export(importParams, ["verify"], crypto);
  const signature = await crypto.subtle.sign(signingAlgorithm(keyType), privateKey, probe);
  if (!(await crypto.subtle.verify(signingAlgorithm(keyType), publicKey, signature, probe))) {
    throw new Error(`the CA key does not match the CA certificate "${cert.subject}"`);
  }
  return { cert, certPem: pem.certPem, keyPem: pem.keyPem, privateKey, keyType };
}

async function issue(
  ca: CertificateAuthority,
  subject: x509.JsonName,
  keyAlgorithm: KeyAlgorithm,
  validityDays: number,
  usages: x509.ExtendedKeyUsage[],
  sans: x509.JsonGeneralNames,
): Promise<CertificateAndKey> {
  const keys = await generateKeys(keyAlgorithm);
  // RSA keys take part in the TLS key exchange only with keyEncipherment (TLS 1.2 RSA kx).
  const keyUsage =
    keyAlgorithm === "RSA-2048"
      ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
      : x509.KeyUsageFlags.digitalSignature;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(keyUsage, true),
    new x509.ExtendedKeyUsageExtension(usages, false),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
    await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey, false, crypto),
  ];
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans, false));
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject,
      issuer: ca.cert.subject,
      ...validity(validityDays),
      publicKey: keys.publicKey,
      signingKey: ca.privateKey,
      signingAlgorithm: signingAlgorithm(ca.keyType),
      extensions,
    },
    crypto,
  );
  return { certPem: cert.toString("pem"), keyPem: await privateKeyPem(keys.privateKey) };
}

/**
 * Issues a TLS server certificate (extKeyUsage serverAuth) for the given DNS names and IPs.
 * A webhook Service needs `<svc>.<namespace>.svc`; a webhook reached by `url` needs the URL's
 * host name or IP.
 */
export async function issueServingCert(
  ca: CertificateAuthority,
  opts: ServingCertOptions,
): Promise<CertificateAndKey> {
  const dnsNames = opts.dnsNames ?? [];
  const ips = opts.ips ?? [];
  for (const ip of ips) {
    if (isIP(ip) === 0) throw new Error(`"${ip}" is not an IP address: pass host names as dnsNames`);
  }
  const commonName = opts.commonName ?? dnsNames[0] ?? ips[0];
  if (commonName === undefined) {
    throw new Error("a serving certificate needs at least one DNS name or IP address");
  }
  const sans: x509.JsonGeneralNames = [
    ...dnsNames.map((value) => ({ type: "dns" as const, value })),
    ...ips.map((value) => ({ type: "ip" as const, value })),
  ];
  return issue(
    ca,
    [{ CN: [commonName] }],
    opts.keyAlgorithm ?? "ECDSA-P256",
    opts.validityDays ?? 365,
    opts.clientAuth
      ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]
      : [x509.ExtendedKeyUsage.serverAuth],
    sans,
  );
}

/**
 * Issues a TLS client certificate (extKeyUsage clientAuth). The apiserver maps the subject CN
 * to the user name and each O to a group, so `{cn: "admin", groups: ["system:masters"]}` is a
 * cluster admin.
 */
export async function issueClientCert(
  ca: CertificateAuthority,
  opts: ClientCertOptions,
): Promise<CertificateAndKey> {
  // One RDN per group, as `openssl -subj /O=a/O=b/CN=x` writes it; Go's pkix reads each O.
  const subject: x509.JsonName = [...(opts.groups ?? []).map((g) => ({ O: [g] })), { CN: [opts.cn] }];
  return issue(
    ca,
    subject,
    opts.keyAlgorithm ?? "ECDSA-P256",
    opts.validityDays ?? 365,
    [x509.ExtendedKeyUsage.clientAuth],
    [],
  );
}

/** Generates a bare key pair, for example a service-account token signing key. */
export async function generateKeyPair(keyAlgorithm: KeyAlgorithm = "ECDSA-P256"): Promise<KeyPairPem> {
  const keys = await generateKeys(keyAlgorithm);
  return {
    privateKeyPem: await privateKeyPem(keys.privateKey),
    publicKeyPem: x509.PemConverter.encode(
      await crypto.subtle.exportKey("spki", keys.publicKey),
      "PUBLIC KEY",
    ),
  };
}
