// `npm run certs`: a CA and a serving certificate for in-cluster Services, for the chart's
// existing-Secret TLS mode and for local runs of the webhook and the handler. The options
// are parsed and checked here; the certificates come from x509.ts.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { createCa, issueServingCert, loadCa, type CertificateAuthority } from "./x509.ts";

export interface CertsOptions {
  /** Service names; the certificate covers each one in `namespace`. */
  services: string[];
  namespace: string;
  clusterDomain: string;
  ips: string[];
  outDir: string;
  /** Validity of the serving certificate. */
  days: number;
  /** Validity of a newly created CA. */
  caDays: number;
  /** Create a new CA even when outDir holds one. */
  newCa: boolean;
}

/** The flags as commander hands them over. */
export interface CertsFlags {
  service?: string[];
  namespace?: string;
  clusterDomain?: string;
  ip?: string[];
  out?: string;
  days?: string;
  caDays?: string;
  newCa?: boolean;
}

export class CertsOptionsError extends Error {
  override name = "CertsOptionsError";
}

export const DEFAULT_OUT_DIR = "webhook-certs/out";
const MAX_DAYS = 36500;

// A Service name is a DNS-1035 label; a namespace a DNS-1123 label.
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Checks every flag and reports all problems at once, each naming the flag and the value. */
export function parseCertsOptions(flags: CertsFlags): CertsOptions {
  const problems: string[] = [];

  const services = flags.service ?? [];
  if (services.length === 0) problems.push("--service is required (the Service name; repeat it for more)");
  for (const s of services) {
    if (!DNS_1035_LABEL.test(s)) {
      problems.push(
        `--service ${JSON.stringify(s)} is not a Service name (lowercase letters, digits and '-', starting with a letter, at most 63 characters)`,
      );
    }
  }

  const namespace = flags.namespace ?? "";
  if (namespace === "") problems.push("--namespace is required (the namespace of the Services)");
  else if (!DNS_1123_LABEL.test(namespace)) {
    problems.push(
      `--namespace ${JSON.stringify(namespace)} is not a namespace name (lowercase letters, digits and '-', at most 63 characters)`,
    );
  }

  const clusterDomain = flags.clusterDomain ?? "cluster.local";
  if (!DNS_1123_SUBDOMAIN.test(clusterDomain) || clusterDomain.length > 253) {
    problems.push(`--cluster-domain ${JSON.stringify(clusterDomain)} is not a DNS domain`);
  }

  const ips = flags.ip ?? [];
  for (const ip of ips) {
    if (isIP(ip) === 0) problems.push(`--ip ${JSON.stringify(ip)} is not an IPv4 or IPv6 address`);
  }

  const days = parseDays("--days", flags.days ?? "365", problems);
  const caDays = parseDays("--ca-days", flags.caDays ?? "3650", problems);

  const outDir = flags.out ?? DEFAULT_OUT_DIR;
  if (outDir.trim() === "") problems.push("--out is empty: name a directory");

  if (problems.length > 0) throw new CertsOptionsError(problems.join("\n"));
  return {
    services: [...new Set(services)],
    namespace,
    clusterDomain,
    ips: [...new Set(ips)],
    outDir,
    days,
    caDays,
    newCa: flags.newCa ?? false,
  };
}

function parseDays(flag: string, text: string, problems: string[]): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > MAX_DAYS) {
    problems.push(`${flag} ${JSON.stringify(text)} is not a number of days from 1 to ${MAX_DAYS}`);
  }
  return n;
}

/**
 * The names under which clients reach a Service: the apiserver calls a webhook at
 * `<svc>.<ns>.svc`, and pods may use any of the shorter or longer forms.
 */
export function serviceDnsNames(services: string[], namespace: string, clusterDomain: string): string[] {
  return services.flatMap((svc) => [
    svc,
    `${svc}.${namespace}`,
    `${svc}.${namespace}.svc`,
    `${svc}.${namespace}.svc.${clusterDomain}`,
  ]);
}

export interface CertsResult {
  caReused: boolean;
  dnsNames: string[];
  ips: string[];
  files: { caCert: string; caKey: string; cert: string; key: string };
  /** base64 of the CA's PEM, as `caBundle` fields and tls.secret.caBundle take it. */
  caBundle: string;
  notAfter: Date;
}

/**
 * Writes ca.crt, ca.key, tls.crt and tls.key into outDir. A CA already in outDir is kept
 * (unless newCa), so that re-running to add a name or renew the certificate leaves every
 * caBundle that trusts it valid.
 */
export async function writeCerts(opts: CertsOptions): Promise<CertsResult> {
  mkdirSync(opts.outDir, { recursive: true });
  const files = {
    caCert: join(opts.outDir, "ca.crt"),
    caKey: join(opts.outDir, "ca.key"),
    cert: join(opts.outDir, "tls.crt"),
    key: join(opts.outDir, "tls.key"),
  };

  let ca: CertificateAuthority;
  const caReused = !opts.newCa && existsSync(files.caCert) && existsSync(files.caKey);
  if (caReused) {
    try {
      ca = await loadCa({
        certPem: readFileSync(files.caCert, "utf8"),
        keyPem: readFileSync(files.caKey, "utf8"),
      });
    } catch (err) {
      throw new Error(
        `cannot reuse the CA in ${opts.outDir}: ${(err as Error).message}; pass --new-ca to replace it (every caBundle made from it must then be updated)`,
        { cause: err },
      );
    }
  } else {
    ca = await createCa({
      commonName: `${opts.services[0]}.${opts.namespace}-ca`,
      validityDays: opts.caDays,
    });
    writeFileSync(files.caCert, ca.certPem);
    writeFileSync(files.caKey, ca.keyPem, { mode: 0o600 });
  }

  const dnsNames = serviceDnsNames(opts.services, opts.namespace, opts.clusterDomain);
  const serving = await issueServingCert(ca, {
    dnsNames,
    ips: opts.ips,
    // The name the apiserver dials for a webhook Service.
    commonName: `${opts.services[0]}.${opts.namespace}.svc`,
    validityDays: opts.days,
  });
  writeFileSync(files.cert, serving.certPem);
  writeFileSync(files.key, serving.keyPem, { mode: 0o600 });

  return {
    caReused,
    dnsNames,
    ips: opts.ips,
    files,
    caBundle: Buffer.from(ca.certPem).toString("base64"),
    notAfter: new Date(Date.now() + opts.days * 86_400_000),
  };
}

/** What to do next, for a human on stderr. */
export function summary(opts: CertsOptions, result: CertsResult): string {
  const secretName = `${opts.services[0]}-tls`;
  return [
    `wrote ${result.files.caCert}, ${result.files.caKey} (${result.caReused ? "existing CA kept" : "new CA"})`,
    `wrote ${result.files.cert}, ${result.files.key} (valid until ${result.notAfter.toISOString().slice(0, 10)})`,
    `  for ${[...result.dnsNames, ...result.ips].join(", ")}`,
    "",
    "To install the chart with it (tls.mode=secret):",
    `  kubectl -n ${opts.namespace} create secret tls ${secretName} --cert=${result.files.cert} --key=${result.files.key}`,
    `  helm install coordinator-ha charts/coordinator-ha -n ${opts.namespace} \\`,
    `    --set tls.mode=secret --set tls.secret.name=${secretName} \\`,
    `    --set tls.secret.caBundle=$(base64 -w0 ${result.files.caCert})`,
    "",
    "caBundle (base64 of ca.crt) on stdout:",
  ].join("\n");
}
