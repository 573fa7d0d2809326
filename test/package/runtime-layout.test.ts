// The container image's runtime stage, replayed without Docker (this machine has no engine):
// the production dependencies that the Dockerfile's `deps` stage installs
// (`npm ci --omit=dev --ignore-scripts`), plus dist/ and package.json, in a directory of their
// own, run with NODE_ENV=production as the image's entrypoint runs them. It catches what only
// the image would show: a runtime import of a devDependency, a module that needs an install
// script, a CLI that cannot find its package.json.
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AdmissionResponse } from "../../src/webhook/review.ts";
import { createCa, issueServingCert } from "../../webhook-certs/x509.ts";
import { decodePatch, podReview, readJson } from "../unit/webhook/fixtures.ts";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string };

let app: string;
const env = { ...process.env, NODE_ENV: "production" };

/** Runs the CLI the way the image's ENTRYPOINT does: node /app/dist/cli.js. */
function cli(args: string[], extraEnv: Record<string, string> = {}) {
  return spawnSync(process.execPath, [join(app, "dist/cli.js"), ...args], {
    cwd: app,
    env: { ...env, ...extraEnv },
    encoding: "utf8",
  });
}

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return jsFiles(path);
    return entry.name.endsWith(".js") ? [path] : [];
  });
}

beforeAll(() => {
  const dist = join(REPO_ROOT, "dist");
  if (!existsSync(join(dist, "cli.js"))) throw new Error("dist/ is missing: run `npm run build` first");
  app = mkdtempSync(join(tmpdir(), "cha-runtime-"));
  for (const file of ["package.json", "package-lock.json", "LICENSE"]) {
    cpSync(join(REPO_ROOT, file), join(app, file));
  }
  const install = spawnSync("npm", ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"], {
    cwd: app,
    env,
    encoding: "utf8",
  });
  if (install.status !== 0) throw new Error(`npm ci --omit=dev failed:\n${install.stderr}`);
  cpSync(dist, join(app, "dist"), { recursive: true });
}, 240_000);

afterAll(() => {
  if (app) rmSync(app, { recursive: true, force: true });
});

describe("the image's runtime stage (production dependencies, dist/, package.json)", () => {
  it("holds no package that only the devDependencies need", () => {
    // package-lock.json marks those "dev": true (typescript, vitest, the node binary package …).
    const lock = JSON.parse(readFileSync(join(app, "package-lock.json"), "utf8")) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const devOnly = Object.entries(lock.packages)
      .filter(([path, entry]) => entry.dev === true && path.startsWith("node_modules/"))
      .map(([path]) => path);
    expect(devOnly).toContain("node_modules/typescript");
    expect(devOnly.filter((path) => existsSync(join(app, path)))).toEqual([]);
    expect(existsSync(join(app, "node_modules/express"))).toBe(true);
  });

  it("loads every module of dist/ with the production dependencies alone", () => {
    // The entry points run the CLI when loaded; the CLI's own tests below run them.
    const entryPoints = ["/cli.js", "/kubectl-plugin.js"];
    const modules = jsFiles(join(app, "dist")).filter((file) => !entryPoints.some((e) => file.endsWith(e)));
    expect(modules.length).toBeGreaterThan(50);
    const script = join(app, "load-all.mjs");
    writeFileSync(
      script,
      `for (const m of ${JSON.stringify(modules.map((m) => pathToFileURL(m).href))}) await import(m);\n` +
        `console.log("loaded", ${modules.length});\n`,
    );
    const r = spawnSync(process.execPath, [script], { cwd: app, env, encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe(`loaded ${modules.length}`);
  });

  it("answers --version and --help for every subcommand", () => {
    expect(cli(["--version"])).toMatchObject({ status: 0, stdout: `${pkg.version}\n` });
    for (const command of ["webhook", "handler", "recover", "coordinator", "set", "verify"]) {
      const r = cli([command, "--help"]);
      expect(r.status, `${command} --help: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain(`Usage: coordinator-ha ${command}`);
    }
  });

  it("refuses a sidecar without its injected env with exit code 2 and a readable error", () => {
    const r = cli(["recover"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error: .*CHA_/);
  });

  it("serves the webhook: an injected AdmissionReview over TLS, then a clean stop on SIGTERM", async () => {
    const ca = await createCa({ commonName: "runtime layout test CA" });
    const serving = await issueServingCert(ca, { dnsNames: ["localhost"], ips: ["127.0.0.1"] });
    writeFileSync(join(app, "tls.crt"), serving.certPem);
    writeFileSync(join(app, "tls.key"), serving.keyPem);
    const args = ["--tls-cert", "tls.crt", "--tls-key", "tls.key", "--port", "0"];
    const webhook = spawn(
      process.execPath,
      [
        join(app, "dist/cli.js"),
        "webhook",
        ...args,
        ...["--sidecar-image", `ghcr.io/coordinator-ha/coordinator-ha:${pkg.version}`],
        ...["--handler-url", "https://coordinator-ha-handler.coordinator-ha.svc"],
      ],
      { cwd: app, env, stdio: ["ignore", "pipe", "pipe"] },
    );
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = "";
        webhook.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          const line = out.split("\n").find((l) => l.includes('"webhook serving"'));
          if (line) resolve((JSON.parse(line) as { port: number }).port);
        });
        webhook.once("exit", (code) => reject(new Error(`webhook exited with ${code}: ${out}`)));
      });
      const review = podReview(readJson("minimal.in.json"));
      const answer = await new Promise<string>((resolve, reject) => {
        const req = request(
          {
            host: "127.0.0.1",
            servername: "localhost",
            port,
            method: "POST",
            path: "/mutate",
            ca: ca.certPem,
          },
          (res) => {
            let body = "";
            res.on("data", (d: Buffer) => (body += d.toString()));
            res.on("end", () => resolve(body));
          },
        );
        req.on("error", reject);
        req.setHeader("content-type", "application/json");
        req.end(JSON.stringify(review));
      });
      const { response } = JSON.parse(answer) as { response: AdmissionResponse };
      expect(response).toMatchObject({ uid: (review["request"] as { uid: string }).uid, allowed: true });
      expect(decodePatch(response).map((op) => op.path)).toContain("/spec/initContainers");
    } finally {
      const exited = new Promise<number | null>((resolve) => webhook.once("exit", resolve));
      webhook.kill("SIGTERM");
      expect(await exited).toBe(0);
    }
  });
});
