// One probe or lifecycle-hook action, run as the kubelet's prober runs it
// (pkg/probe/http, tcp, exec): httpGet (HTTPS without certificate verification; 2xx and
// 3xx succeed), tcpSocket (a connection is success), exec (inside the container's network,
// mount and UTS namespaces, with the container's environment; exit 0 is success).
import { spawn } from "node:child_process";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import type { Container } from "../kube/wire.ts";

export type ProbeResult = "Success" | "Failure";

export interface ProbeOutcome {
  result: ProbeResult;
  /** Why it failed, in the kubelet's words (goes into the Unhealthy event). */
  output: string;
}

type Handler = NonNullable<Container["readinessProbe"]>;
type LifecycleHandler = NonNullable<NonNullable<Container["lifecycle"]>["preStop"]>;

export interface ProbeTarget {
  podIP: string;
  container: Container;
  /** The container's main process, whose namespaces exec actions enter. */
  pid: number;
  env: Record<string, string>;
  nsenter: string;
}

const KUBE_VERSION_MINOR = "1.35";

function resolvePort(port: number | string | undefined, c: Container): number {
  if (typeof port === "number") return port;
  const n = Number(port);
  if (Number.isInteger(n) && n > 0) return n;
  const named = c.ports?.find((p) => p.name === port);
  if (!named) throw new Error(`couldn't find port "${port}" in container ${c.name}`);
  return named.containerPort;
}

function httpProbe(
  h: NonNullable<Handler["httpGet"]>,
  t: ProbeTarget,
  timeoutMs: number,
): Promise<ProbeOutcome> {
  const scheme = (h.scheme ?? "HTTP").toLowerCase();
  const host = h.host || t.podIP;
  const port = resolvePort(h.port, t.container);
  const path = h.path ? (h.path.startsWith("/") ? h.path : `/${h.path}`) : "/";
  const url = `${scheme}://${host}:${port}${path}`;
  const headers: Record<string, string> = { "User-Agent": `kube-probe/${KUBE_VERSION_MINOR}`, Accept: "*/*" };
  for (const hh of h.httpHeaders ?? []) headers[hh.name] = hh.value;
  return new Promise((resolve) => {
    const req = (scheme === "https" ? httpsRequest : httpRequest)(
      url,
      {
        method: "GET",
        headers,
        timeout: timeoutMs,
        ...(scheme === "https" ? { rejectUnauthorized: false } : {}),
      },
      (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 400) resolve({ result: "Success", output: "" });
        else resolve({ result: "Failure", output: `HTTP probe failed with statuscode: ${code}` });
      },
    );
    req.on("timeout", () => {
      req.destroy();
      resolve({
        result: "Failure",
        output: `Get "${url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`,
      });
    });
    req.on("error", (err: NodeJS.ErrnoException) => {
      const why = err.code === "ECONNREFUSED" ? "connect: connection refused" : err.message;
      resolve({ result: "Failure", output: `Get "${url}": dial tcp ${host}:${port}: ${why}` });
    });
    req.end();
  });
}

function tcpProbe(
  h: NonNullable<Handler["tcpSocket"]>,
  t: ProbeTarget,
  timeoutMs: number,
): Promise<ProbeOutcome> {
  const host = h.host || t.podIP;
  const port = resolvePort(h.port, t.container);
  return new Promise((resolve) => {
    const sock = connect({ host, port, timeout: timeoutMs });
    sock.on("connect", () => {
      sock.destroy();
      resolve({ result: "Success", output: "" });
    });
    sock.on("timeout", () => {
      sock.destroy();
      resolve({ result: "Failure", output: `dial tcp ${host}:${port}: i/o timeout` });
    });
    sock.on("error", (err: NodeJS.ErrnoException) => {
      const why = err.code === "ECONNREFUSED" ? "connect: connection refused" : err.message;
      resolve({ result: "Failure", output: `dial tcp ${host}:${port}: ${why}` });
    });
  });
}

/** Runs a command in the container's namespaces; resolves with its exit code and output. */
export function execInContainer(
  t: ProbeTarget,
  command: readonly string[],
  timeoutMs: number,
): Promise<{ code: number; output: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(
      t.nsenter,
      ["--target", String(t.pid), "--net", "--mount", "--uts", "--", ...command],
      {
        env: t.env,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let output = "";
    const collect = (d: Buffer) => (output = (output + d.toString()).slice(-10 * 1024));
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      resolve({ code: 127, output: err.message, timedOut: false });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 137, output, timedOut });
    });
  });
}

async function execProbe(
  h: NonNullable<Handler["exec"]>,
  t: ProbeTarget,
  timeoutMs: number,
): Promise<ProbeOutcome> {
  const r = await execInContainer(t, h.command ?? [], timeoutMs);
  if (r.timedOut) return { result: "Failure", output: `command timed out after ${timeoutMs / 1000}s` };
  return r.code === 0 ? { result: "Success", output: "" } : { result: "Failure", output: r.output.trim() };
}

/** Runs a probe's (or a lifecycle hook's) handler once. */
export async function runHandler(
  h: Handler | LifecycleHandler,
  t: ProbeTarget,
  timeoutMs: number,
): Promise<ProbeOutcome> {
  try {
    if ("sleep" in h && h.sleep) {
      await new Promise((r) => setTimeout(r, Math.min(h.sleep!.seconds * 1000, timeoutMs)));
      return { result: "Success", output: "" };
    }
    if (h.httpGet) return await httpProbe(h.httpGet, t, timeoutMs);
    if (h.tcpSocket) return await tcpProbe(h.tcpSocket, t, timeoutMs);
    if (h.exec) return await execProbe(h.exec, t, timeoutMs);
    return {
      result: "Failure",
      output: "the node agent supports httpGet, tcpSocket, exec and sleep handlers",
    };
  } catch (err) {
    return { result: "Failure", output: err instanceof Error ? err.message : String(err) };
  }
}
