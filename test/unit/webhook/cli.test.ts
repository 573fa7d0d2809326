// The `coordinator-ha webhook` subcommand as a process: flag errors, startup, and a clean
// exit on SIGTERM.
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { get } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCa, issueServingCert, type CertificateAuthority } from "../../../webhook-certs/x509.ts";

const cli = fileURLToPath(new URL("../../../src/cli.ts", import.meta.url));
let dir: string;
let ca: CertificateAuthority;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "webhook-cli-"));
  ca = await createCa({ commonName: "webhook cli test CA" });
  const pair = await issueServingCert(ca, { dnsNames: ["localhost"] });
  writeFileSync(join(dir, "tls.crt"), pair.certPem);
  writeFileSync(join(dir, "tls.key"), pair.keyPem);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("coordinator-ha webhook", () => {
  it("exits 2 and names the bad flags", () => {
    const run = spawnSync(process.execPath, [cli, "webhook", "--port", "http", "--handler-url", "http://h"], {
      encoding: "utf8",
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('--port "http" is not a port number (0-65535)');
    expect(run.stderr).toContain('--handler-url "http://h" must be an https URL');
  });

  it("exits 1 with a reason when the certificate cannot be read", () => {
    const run = spawnSync(
      process.execPath,
      [
        cli,
        "webhook",
        "--port",
        "0",
        "--tls-cert",
        join(dir, "missing.crt"),
        "--tls-key",
        join(dir, "tls.key"),
      ].concat(["--sidecar-image", "coordinator-ha:test", "--handler-url", "https://handler"]),
      { encoding: "utf8" },
    );
    expect(run.status).toBe(1);
    const line = JSON.parse(run.stdout.trim().split("\n").at(-1)!);
    expect(line).toMatchObject({ level: 60, msg: "webhook failed to start" });
    expect(line.err).toContain("missing.crt");
  });

  it("serves HTTPS and exits 0 on SIGTERM", async () => {
    const child = spawn(
      process.execPath,
      [
        cli,
        "webhook",
        "--port",
        "0",
        "--tls-cert",
        join(dir, "tls.crt"),
        "--tls-key",
        join(dir, "tls.key"),
      ].concat(["--sidecar-image", "coordinator-ha:test", "--handler-url", "https://handler"]),
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let port: number | undefined;
    for await (const text of createInterface({ input: child.stdout })) {
      const line = JSON.parse(text) as { msg?: string; port?: number };
      if (line.msg === "webhook serving") {
        port = line.port;
        break;
      }
    }
    expect(port).toBeGreaterThan(0);

    const status = await new Promise<number | undefined>((resolve, reject) =>
      get({ host: "127.0.0.1", servername: "localhost", port, path: "/healthz", ca: ca.certPem }, (res) => {
        res.resume();
        resolve(res.statusCode);
      }).on("error", reject),
    );
    expect(status).toBe(200);

    const exited = once(child, "exit");
    child.kill("SIGTERM");
    expect(await exited).toEqual([0, null]);
  });
});
