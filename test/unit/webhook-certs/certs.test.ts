import { execFile } from "node:child_process";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CertsOptionsError,
  parseCertsOptions,
  serviceDnsNames,
  writeCerts,
  type CertsOptions,
} from "../../../webhook-certs/certs.ts";

const run = promisify(execFile);
const CLI = new URL("../../../webhook-certs/cli.ts", import.meta.url).pathname;

let out: string;
beforeEach(() => {
  out = mkdtempSync(join(tmpdir(), "cha-certs-"));
});
afterEach(() => rmSync(out, { recursive: true, force: true }));

function options(overrides: Partial<CertsOptions> = {}): CertsOptions {
  return {
    ...parseCertsOptions({ service: ["cha-webhook", "cha-handler"], namespace: "cha", out }),
    ...overrides,
  };
}

function load(file: string): X509Certificate {
  return new X509Certificate(readFileSync(join(out, file)));
}

/** The subjectAltName entries, e.g. ["DNS:a", "IP Address:10.0.0.1"]. */
function sans(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? "").split(", ");
}

describe("parseCertsOptions", () => {
  it("takes the defaults", () => {
    expect(parseCertsOptions({ service: ["svc"], namespace: "ns" })).toEqual({
      services: ["svc"],
      namespace: "ns",
      clusterDomain: "cluster.local",
      ips: [],
      outDir: "webhook-certs/out",
      days: 365,
      caDays: 3650,
      newCa: false,
    });
  });

  it("reports every bad flag at once, naming the flag and the value", () => {
    let error: unknown;
    try {
      parseCertsOptions({ service: ["Bad_Name"], ip: ["10.0.0.300"], days: "0", caDays: "ten" });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(CertsOptionsError);
    const lines = (error as Error).message.split("\n");
    expect(lines).toEqual([
      expect.stringContaining('--service "Bad_Name" is not a Service name'),
      expect.stringContaining("--namespace is required"),
      expect.stringContaining('--ip "10.0.0.300" is not an IPv4 or IPv6 address'),
      expect.stringContaining('--days "0" is not a number of days'),
      expect.stringContaining('--ca-days "ten" is not a number of days'),
    ]);
  });

  it.each([
    [{ namespace: "ns" }, "--service is required"],
    [{ service: ["svc"], namespace: "Not.A.Label" }, '--namespace "Not.A.Label" is not a namespace name'],
    [{ service: ["1svc"], namespace: "ns" }, '--service "1svc"'],
    [{ service: ["svc"], namespace: "ns", clusterDomain: "-bad" }, '--cluster-domain "-bad"'],
    [{ service: ["svc"], namespace: "ns", days: "36501" }, '--days "36501"'],
    [{ service: ["svc"], namespace: "ns", out: " " }, "--out is empty"],
  ])("rejects %j", (flags, message) => {
    expect(() => parseCertsOptions(flags)).toThrow(message);
  });

  it("accepts IPv6 and drops duplicates", () => {
    const opts = parseCertsOptions({ service: ["a", "a"], namespace: "ns", ip: ["::1", "::1", "10.0.0.1"] });
    expect(opts.services).toEqual(["a"]);
    expect(opts.ips).toEqual(["::1", "10.0.0.1"]);
  });
});

describe("serviceDnsNames", () => {
  it("lists each Service in every form that clients use", () => {
    expect(serviceDnsNames(["wh", "h"], "ns", "cluster.local")).toEqual([
      "wh",
      "wh.ns",
      "wh.ns.svc",
      "wh.ns.svc.cluster.local",
      "h",
      "h.ns",
      "h.ns.svc",
      "h.ns.svc.cluster.local",
    ]);
  });
});

describe("writeCerts", () => {
  it("writes a serving certificate with the Service names and IPs, signed by the CA", async () => {
    const result = await writeCerts(options({ ips: ["10.96.0.10", "::1"], days: 30 }));
    const ca = load("ca.crt");
    const cert = load("tls.crt");

    expect(ca.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.subject).toBe("CN=cha-webhook.cha.svc");
    expect(sans(cert)).toEqual([
      "DNS:cha-webhook",
      "DNS:cha-webhook.cha",
      "DNS:cha-webhook.cha.svc",
      "DNS:cha-webhook.cha.svc.cluster.local",
      "DNS:cha-handler",
      "DNS:cha-handler.cha",
      "DNS:cha-handler.cha.svc",
      "DNS:cha-handler.cha.svc.cluster.local",
      "IP Address:10.96.0.10",
      "IP Address:0:0:0:0:0:0:0:1",
    ]);
    // What the apiserver and the sidecars check when they dial the Services.
    expect(cert.checkHost("cha-webhook.cha.svc")).toBe("cha-webhook.cha.svc");
    expect(cert.checkHost("cha-handler.cha.svc")).toBe("cha-handler.cha.svc");
    expect(cert.checkHost("other.cha.svc")).toBeUndefined();
    expect(cert.checkIP("10.96.0.10")).toBe("10.96.0.10");
    expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]);

    const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThan(30.1);
    expect(Date.parse(ca.validTo) - Date.now()).toBeGreaterThan(3649 * 86_400_000);

    expect(cert.checkPrivateKey(createPrivateKey(readFileSync(join(out, "tls.key"))))).toBe(true);
    expect(ca.checkPrivateKey(createPrivateKey(readFileSync(join(out, "ca.key"))))).toBe(true);
    expect(statSync(join(out, "tls.key")).mode & 0o777).toBe(0o600);
    expect(statSync(join(out, "ca.key")).mode & 0o777).toBe(0o600);

    expect(Buffer.from(result.caBundle, "base64").toString()).toBe(readFileSync(join(out, "ca.crt"), "utf8"));
    expect(result.caReused).toBe(false);
  });

  it("keeps the CA on a second run, so that the caBundle stays valid", async () => {
    const first = await writeCerts(options());
    const firstCert = readFileSync(join(out, "tls.crt"), "utf8");
    const second = await writeCerts(options({ ips: ["127.0.0.1"] }));

    expect(second.caReused).toBe(true);
    expect(second.caBundle).toBe(first.caBundle);
    const cert = load("tls.crt");
    expect(cert.toString()).not.toBe(firstCert);
    expect(cert.verify(load("ca.crt").publicKey)).toBe(true);
    expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1");
  });

  it("replaces the CA with newCa", async () => {
    const first = await writeCerts(options());
    const second = await writeCerts(options({ newCa: true }));
    expect(second.caReused).toBe(false);
    expect(second.caBundle).not.toBe(first.caBundle);
  });

  it("refuses a CA it cannot use, and says how to replace it", async () => {
    await writeCerts(options());
    writeFileSync(join(out, "ca.key"), "not a key");
    await expect(writeCerts(options())).rejects.toThrow(/cannot reuse the CA in .*pass --new-ca/);
  });
});

describe("npm run certs", () => {
  it("prints only the caBundle on stdout", async () => {
    const { stdout, stderr } = await run(process.execPath, [
      CLI,
      "--service",
      "cha-webhook",
      "--namespace",
      "cha",
      "--out",
      out,
    ]);
    expect(stdout.trim()).toBe(readFileSync(join(out, "ca.crt")).toString("base64"));
    expect(stderr).toContain("tls.mode=secret");
  });

  it("exits non-zero with a readable error on bad input", async () => {
    const error = await run(process.execPath, [CLI, "--service", "UPPER", "--out", out]).catch(
      (err: { code: number; stderr: string }) => err,
    );
    expect(error).toMatchObject({ code: 1 });
    expect((error as { stderr: string }).stderr).toContain('error: --service "UPPER" is not a Service name');
    expect((error as { stderr: string }).stderr).toContain("error: --namespace is required");
  });
});
