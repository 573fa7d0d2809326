// Which packages the recovery sidecar loads while it waits, from the built CLI as the image
// runs it: none of those that cost every Coordinator pod tens of MB of resident memory
// (docs/performance.md). The Kubernetes client and an X.509 library are not needed at all,
// express (the peer API) only on the first peer request, and Node's bundled undici never.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SidecarEnv } from "../../src/recovery/sidecar-env.ts";
import { SIDECAR_NODE_OPTIONS } from "../../src/webhook/sidecar.ts";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const NOT_LOADED = [
  "@kubernetes/client-node",
  "@peculiar/x509",
  "reflect-metadata",
  "tsyringe",
  "express",
  "prom-client",
  "undici",
];

// Records every module that resolves into node_modules, and prints the packages and Node's
// own modules at exit.
const HOOK = `
import { registerHooks } from "node:module";
const packages = new Set();
registerHooks({
  resolve(specifier, context, next) {
    const result = next(specifier, context);
    const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(result.url);
    if (m) packages.add(m[1]);
    return result;
  },
});
process.on("exit", () => {
  process.stderr.write("PACKAGES " + JSON.stringify([...packages].sort()) + "\\n");
  const builtins = process.moduleLoadList.filter((m) => m.startsWith("NativeModule ")).map((m) => m.slice(13));
  process.stderr.write("BUILTINS " + JSON.stringify(builtins) + "\\n");
});
`;

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "cha-sidecar-packages-"));
  mkdirSync(join(dir, "state"));
  writeFileSync(join(dir, "token"), "t");
  writeFileSync(join(dir, "peer-token"), "p");
  writeFileSync(join(dir, "hook.mjs"), HOOK);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the recovery sidecar", () => {
  it("loads neither the Kubernetes client, nor an X.509 library, nor express while it waits", async () => {
    const child = spawn(
      process.execPath,
      ["--import", join(dir, "hook.mjs"), join(REPO_ROOT, "dist/cli.js"), "recover"],
      {
        env: {
          ...process.env,
          // As the webhook runs it: without a JIT, and so without WebAssembly (see sidecar.ts).
          NODE_OPTIONS: SIDECAR_NODE_OPTIONS,
          [SidecarEnv.podName]: "coordinator-0",
          [SidecarEnv.podNamespace]: "default",
          [SidecarEnv.podUid]: "uid-0",
          [SidecarEnv.serviceAccount]: "coordinator",
          // Nobody listens there: the sidecar starts and keeps asking.
          [SidecarEnv.handlerUrl]: "https://127.0.0.1:9",
          [SidecarEnv.stateDir]: join(dir, "state"),
          [SidecarEnv.tokenFile]: join(dir, "token"),
          [SidecarEnv.peerTokenFile]: join(dir, "peer-token"),
          [SidecarEnv.peerPort]: "0",
          [SidecarEnv.probePort]: "0",
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => {
        stdout += d.toString();
        // Past the first round of asking the handler: every module of the waiting path ran.
        if (stdout.includes("no answer from the handler about peers")) resolve();
      });
      void exited.then((code) => reject(new Error(`the sidecar exited with ${code}: ${stdout}${stderr}`)));
    });
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    const line = stderr.split("\n").find((l) => l.startsWith("PACKAGES "));
    const packages = JSON.parse(line!.slice("PACKAGES ".length)) as string[];
    expect(packages).toContain("pino");
    expect(packages.filter((p) => NOT_LOADED.includes(p))).toEqual([]);
    // An ESM import of node:http loads Node's bundled undici (src/http/node-http.ts says why).
    const builtins = JSON.parse(
      stderr
        .split("\n")
        .find((l) => l.startsWith("BUILTINS "))!
        .slice("BUILTINS ".length),
    ) as string[];
    expect(builtins).toContain("https");
    expect(builtins.filter((m) => m.includes("undici") || m === "http2")).toEqual([]);
  });
});
