// `coordinator-ha probe startup|liveness` as the kubelet runs it in an exec probe: a process
// that asks the sidecar's probe endpoint on loopback and answers with its exit code and a
// line of output. The endpoint here is the sidecar's own listener (http/probes.ts).
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probeListener } from "../../../src/http/probes.ts";
import { SidecarEnv } from "../../../src/recovery/sidecar-env.ts";

const cli = fileURLToPath(new URL("../../../src/cli.ts", import.meta.url));

async function probe(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [cli, "probe", ...args], { env: { ...process.env, ...env } });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const [code] = (await once(child, "exit")) as [number];
  return { code, stdout, stderr };
}

describe("coordinator-ha probe", () => {
  let server: Server;
  let port: number;
  let waiting: string | undefined = "waiting for a peer: the handler has not answered yet";

  beforeAll(async () => {
    server = createServer(probeListener({ "/startupz": () => waiting, "/healthz": () => undefined }));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => server.close());

  it("fails the startup probe while the sidecar waits, with its reason, and passes once it is ready", async () => {
    const before = await probe(["startup", "--port", String(port)]);
    expect(before).toMatchObject({
      code: 1,
      stdout: "503 waiting for a peer: the handler has not answered yet\n",
    });
    waiting = undefined;
    expect(await probe(["startup", "--port", String(port)])).toMatchObject({ code: 0, stdout: "200 ok\n" });
  });

  it("takes the port from the sidecar's env, as the exec action inherits it", async () => {
    const r = await probe(["liveness"], { [SidecarEnv.probePort]: String(port) });
    expect(r).toMatchObject({ code: 0, stdout: "200 ok\n" });
  });

  it("fails, saying so, when nothing listens", async () => {
    const closed = createServer();
    closed.listen(0, "127.0.0.1");
    await once(closed, "listening");
    const free = (closed.address() as AddressInfo).port;
    closed.close();
    const r = await probe(["startup", "--port", String(free)]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`the sidecar's probe port 127.0.0.1:${free} did not answer`);
  });

  it("exits 2 on a probe it does not know", async () => {
    const r = await probe(["readiness"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('probe "readiness" is not one of startup, liveness');
  });
});
