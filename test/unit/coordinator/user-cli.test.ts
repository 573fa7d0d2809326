import { spawn } from "node:child_process";
import { once } from "node:events";
import { createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtemp, rm, unlink, writeFile } from "node:fs/promises";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startCoordinator, type RunningCoordinator } from "../../../src/coordinator/server.ts";
import { coordinatorUrl, ExitCode, runSet, runVerify } from "../../../src/coordinator/user-cli.ts";
import { ownerKeyDigest } from "../../../src/coordinator/owner-key.ts";
import { manifestDigest } from "../../../src/coordinator/state.ts";
import { bundleDigest } from "../../../src/state/bundle.ts";
import { writeBundle } from "../../../src/state/store.ts";

let root: string;
let coordinator: RunningCoordinator;
let url: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "cha-cli-"));
  coordinator = await startCoordinator({
    stateDir: join(root, "state"),
    apiPort: 0,
    probePort: 0,
    host: "127.0.0.1",
    logger: pino({ level: "silent" }),
    // What the sidecar does once a quorum holds the update: swap it in, then answer.
    commit: async (_parent, bundle) => {
      await unlink(join(root, "state", "coordinator.json"));
      await writeBundle(join(root, "state"), bundle);
      return { kind: "committed", digest: bundleDigest(bundle) };
    },
  });
  url = `127.0.0.1:${coordinator.apiPort}`;
});
afterEach(async () => {
  await coordinator.close();
  await rm(root, { recursive: true, force: true });
});

function terminal() {
  const lines = { out: [] as string[], err: [] as string[] };
  return { lines, io: { out: (l: string) => lines.out.push(l), err: (l: string) => lines.err.push(l) } };
}

async function manifestFile(content: string): Promise<string> {
  const file = join(root, `manifest-${Math.random()}.json`);
  await writeFile(file, content);
  return file;
}

async function publicKeyOf(): Promise<string> {
  const res = await fetch(`http://${url}/v1/manifest`);
  return ((await res.json()) as { publicKey: string }).publicKey;
}

describe("coordinator-ha set", () => {
  it("sets the manifest and prints the digest and the public key", async () => {
    const t = terminal();
    const code = await runSet({ coordinator: url, manifestFile: await manifestFile('{"a":1}') }, t.io);
    expect(code).toBe(ExitCode.Ok);
    expect(t.lines.out[0]).toMatch(/Manifest set/);
    expect(t.lines.out.join("\n")).toContain((await publicKeyOf()).split("\n")[1]);
  });

  it("succeeds again for the same manifest, and fails for another one", async () => {
    const file = await manifestFile('{"a":1,"b":[2]}');
    expect(await runSet({ coordinator: url, manifestFile: file }, terminal().io)).toBe(ExitCode.Ok);
    const same = terminal();
    // Same content, other key order: still the same manifest.
    const reordered = await manifestFile('{"b":[2],"a":1}');
    expect(await runSet({ coordinator: url, manifestFile: reordered }, same.io)).toBe(ExitCode.Ok);
    expect(same.lines.out[0]).toMatch(/already holds this manifest/);
    const other = terminal();
    expect(await runSet({ coordinator: url, manifestFile: await manifestFile('{"a":2}') }, other.io)).toBe(
      ExitCode.Failed,
    );
    expect(other.lines.err[0]).toMatch(/already initialized with another manifest/);
  });

  it.each([
    ["a missing file", null, /cannot read the manifest .*ENOENT/],
    ["broken JSON", "{", /is not JSON/],
    ["a JSON array", "[]", /must be a JSON object/],
  ])("refuses %s without asking the Coordinator", async (_name, content, reason) => {
    const file = content === null ? join(root, "missing.json") : await manifestFile(content);
    const t = terminal();
    expect(await runSet({ coordinator: url, manifestFile: file }, t.io)).toBe(ExitCode.CannotAsk);
    expect(t.lines.err[0]).toMatch(reason);
    expect((await fetch(`http://${url}/v1/manifest`)).status).toBe(503);
  });

  it("waits for an unreachable Coordinator until its deadline", async () => {
    // A port that was free a moment ago: connections are refused.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const t = terminal();
    const code = await runSet(
      {
        coordinator: `127.0.0.1:${port}`,
        manifestFile: await manifestFile("{}"),
        timeoutMs: 50,
        retryIntervalMs: 10,
      },
      t.io,
    );
    expect(code).toBe(ExitCode.CannotAsk);
    expect(t.lines.out[0]).toMatch(/Waiting for the Coordinator .*ECONNREFUSED/);
    expect(t.lines.err[0]).toMatch(/did not answer in time/);
  });
});

describe("coordinator-ha set --workload-owner-key", () => {
  const owner = generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey;
  const keyFile = async (key: KeyObject) => {
    const file = join(root, `key-${Math.random()}.pem`);
    await writeFile(file, key.export({ format: "pem", type: "sec1" }));
    return file;
  };
  const manifest = (policy: string) =>
    manifestFile(JSON.stringify({ policy, workloadOwnerKeyDigests: [ownerKeyDigest(owner)] }));

  it("initializes an uninitialized Coordinator, then updates it; verify shows the history", async () => {
    const key = await keyFile(owner);
    const first = terminal();
    expect(
      await runSet({ coordinator: url, manifestFile: await manifest("v1"), ownerKeyFile: key }, first.io),
    ).toBe(ExitCode.Ok);
    expect(first.lines.out[0]).toMatch(/Manifest set/);
    const publicKey = await publicKeyOf();

    const second = terminal();
    expect(
      await runSet({ coordinator: url, manifestFile: await manifest("v2"), ownerKeyFile: key }, second.io),
    ).toBe(ExitCode.Ok);
    expect(second.lines.out[0]).toMatch(/Manifest updated at .* \(committed; it replaced state sha256:/);
    expect(second.lines.out).toContain("  history: 2 transitions");
    expect(await publicKeyOf()).toBe(publicKey);

    const shown = terminal();
    expect(await runVerify({ coordinator: url }, shown.io)).toBe(ExitCode.Ok);
    const v1 = manifestDigest({ policy: "v1", workloadOwnerKeyDigests: [ownerKeyDigest(owner)] });
    const v2 = manifestDigest({ policy: "v2", workloadOwnerKeyDigests: [ownerKeyDigest(owner)] });
    expect(shown.lines.out).toContain("  history: 2 transitions");
    expect(shown.lines.out).toContain(`  latest transition: ${v1} -> ${v2}`);

    // Again: the Coordinator holds it already.
    const again = terminal();
    expect(
      await runSet({ coordinator: url, manifestFile: await manifest("v2"), ownerKeyFile: key }, again.io),
    ).toBe(ExitCode.Ok);
    expect(again.lines.out[0]).toMatch(/already holds this manifest/);
  });

  it("says that an update whose answer was lost may still be committed", async () => {
    const key = await keyFile(owner);
    await runSet({ coordinator: url, manifestFile: await manifest("v1"), ownerKeyFile: key }, terminal().io);
    // Reads reach the Coordinator; an update's connection breaks before its answer (a network
    // cut, a restart), after the Coordinator may have started to commit it.
    const lossy = createServer((client: Socket) => {
      client.once("data", (head: Buffer) => {
        if (head.toString("latin1").startsWith("POST ")) {
          client.destroy();
          return;
        }
        const upstream = connect(coordinator.apiPort, "127.0.0.1", () => {
          upstream.write(head);
          client.pipe(upstream).pipe(client);
        });
        upstream.on("error", () => client.destroy());
      });
      client.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => lossy.listen(0, "127.0.0.1", resolve));
    try {
      const t = terminal();
      const code = await runSet(
        {
          coordinator: `127.0.0.1:${(lossy.address() as { port: number }).port}`,
          manifestFile: await manifest("v2"),
          ownerKeyFile: key,
          timeoutMs: 50,
          retryIntervalMs: 10,
        },
        t.io,
      );
      expect(code).toBe(ExitCode.CannotAsk);
      expect(t.lines.err[0]).toMatch(/did not answer in time/);
      expect(t.lines.err[1]).toMatch(/An update was sent and its answer lost: it may still be committed/);
    } finally {
      await new Promise<void>((resolve) => lossy.close(() => resolve()));
    }
  });

  it("fails with the Coordinator's reason for a key the manifest does not list", async () => {
    await runSet({ coordinator: url, manifestFile: await manifest("v1") }, terminal().io);
    const t = terminal();
    const stranger = await keyFile(generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey);
    expect(
      await runSet({ coordinator: url, manifestFile: await manifest("v2"), ownerKeyFile: stranger }, t.io),
    ).toBe(ExitCode.Failed);
    expect(t.lines.err[0]).toMatch(
      /refused the workload owner key: the workload owner key [0-9a-f]{64} is not listed/,
    );
  });

  it.each([
    ["a missing key file", null, /cannot read the workload owner key .*ENOENT/],
    ["a public key", "public", /not a PEM private key/],
    ["an Ed25519 key", "ed25519", /ECDSA P-256 or P-384 key, not ed25519/],
  ])("refuses %s without asking the Coordinator", async (_name, kind, reason) => {
    const file = join(root, "owner.pem");
    if (kind === "public") await writeFile(file, publicPem(owner));
    if (kind === "ed25519") {
      await writeFile(
        file,
        generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }),
      );
    }
    const t = terminal();
    expect(
      await runSet({ coordinator: url, manifestFile: await manifest("v1"), ownerKeyFile: file }, t.io),
    ).toBe(ExitCode.CannotAsk);
    expect(t.lines.err[0]).toMatch(reason);
  });
});

function publicPem(key: KeyObject): string {
  return createPublicKey(key).export({ format: "pem", type: "spki" }).toString();
}

describe("coordinator-ha verify", () => {
  it("fails on an uninitialized Coordinator", async () => {
    const t = terminal();
    expect(await runVerify({ coordinator: url }, t.io)).toBe(ExitCode.Failed);
    expect(t.lines.err[0]).toMatch(/not initialized/);
  });

  it("shows the state and checks the expected public key, as PEM text or as a file", async () => {
    await runSet({ coordinator: url, manifestFile: await manifestFile('{"a":1}') }, terminal().io);
    const key = await publicKeyOf();
    const shown = terminal();
    expect(await runVerify({ coordinator: url }, shown.io)).toBe(ExitCode.Ok);
    expect(shown.lines.out.join("\n")).toMatch(/state digest: sha256:[0-9a-f]{64}/);
    expect(await runVerify({ coordinator: `http://${url}`, expectPublicKey: key }, terminal().io)).toBe(
      ExitCode.Ok,
    );
    expect(
      await runVerify({ coordinator: url, expectPublicKey: await manifestFile(key) }, terminal().io),
    ).toBe(ExitCode.Ok);
  });

  it("fails when the public key is another one", async () => {
    await runSet({ coordinator: url, manifestFile: await manifestFile("{}") }, terminal().io);
    const other =
      "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
    const t = terminal();
    expect(await runVerify({ coordinator: url, expectPublicKey: other }, t.io)).toBe(ExitCode.Failed);
    expect(t.lines.err[0]).toMatch(/not the expected key/);
  });

  it("refuses an expected key that is no key", async () => {
    const t = terminal();
    expect(await runVerify({ coordinator: url, expectPublicKey: "nonsense" }, t.io)).toBe(ExitCode.CannotAsk);
    expect(t.lines.err[0]).toMatch(/neither a PEM public key nor a readable file/);
  });
});

describe("coordinatorUrl", () => {
  it("accepts host:port and URLs, and refuses other schemes", () => {
    expect(coordinatorUrl("coordinator:1313").href).toBe("http://coordinator:1313/");
    expect(coordinatorUrl("https://c.example:1313").href).toBe("https://c.example:1313/");
    expect(() => coordinatorUrl("ftp://c:1313")).toThrow(/host:port/);
  });
});

describe("set and verify with a closed stdout (`coordinator-ha verify … | head -1`)", () => {
  const cli = fileURLToPath(new URL("../../../src/cli.ts", import.meta.url));

  /** Runs the CLI with the reading end of its stdout closed from the start. */
  async function runWithClosedStdout(args: string[]): Promise<{ code: number | null; stderr: string }> {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.destroy();
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const [code] = (await once(child, "close")) as [number | null];
    return { code, stderr };
  }

  it("verify exits with its own code, quietly", async () => {
    await runSet({ coordinator: url, manifestFile: await manifestFile('{"a":1}') }, terminal().io);
    expect(await runWithClosedStdout(["verify", "-c", url])).toEqual({ code: ExitCode.Ok, stderr: "" });
  });

  it("set still sets the manifest and exits 0", async () => {
    const file = await manifestFile('{"a":1}');
    expect(await runWithClosedStdout(["set", "-c", url, "-m", file])).toEqual({
      code: ExitCode.Ok,
      stderr: "",
    });
    expect((await fetch(`http://${url}/v1/manifest`)).status).toBe(200);
  });

  it("set keeps waiting for the Coordinator after its first line could not be written", async () => {
    // The first two connections fail, so `set` prints "Waiting …" into the closed pipe and
    // retries; later ones reach the Coordinator.
    let connections = 0;
    const sockets = new Set<Socket>();
    const flaky = createServer((socket) => {
      sockets.add(socket);
      if (++connections <= 2) {
        socket.destroy();
        return;
      }
      const upstream = connect(coordinator.apiPort, "127.0.0.1");
      sockets.add(upstream);
      socket.pipe(upstream).pipe(socket);
      socket.on("error", () => upstream.destroy());
      upstream.on("error", () => socket.destroy());
    });
    await new Promise<void>((resolve) => flaky.listen(0, "127.0.0.1", resolve));
    try {
      const port = (flaky.address() as { port: number }).port;
      const file = await manifestFile('{"a":1}');
      const run = await runWithClosedStdout([
        "set",
        "-c",
        `127.0.0.1:${port}`,
        "-m",
        file,
        "--timeout",
        "60",
      ]);
      expect(run).toEqual({ code: ExitCode.Ok, stderr: "" });
      expect(connections).toBeGreaterThan(2);
      expect((await fetch(`http://${url}/v1/manifest`)).status).toBe(200);
    } finally {
      flaky.close();
      for (const socket of sockets) socket.destroy();
    }
  });
});
