// kubectl exec and port-forward over SPDY, as the kubelet's streaming server serves them
// (k8s.io/kubelet/pkg/cri/streaming): exec with the v4 channel protocol (stdin, stdout,
// stderr, error with a JSON status, resize), port-forward with the portforward.k8s.io
// protocol (a data and an error stream per port and request id).
import { spawn } from "node:child_process";
import { connect } from "node:net";
import type { SpdyServerConnection, SpdyStream } from "./spdy.ts";

/** Streams must arrive this quickly after the upgrade (the kubelet's streamCreationTimeout). */
const STREAM_CREATION_TIMEOUT_MS = 30_000;

export interface ExecTarget {
  /** The container's main process, whose namespaces the command enters. */
  pid: number;
  env: Record<string, string>;
  workingDir: string;
  nsenter: string;
}

export interface ExecOptions {
  command: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** The exec options of a kubelet /exec request (tty excludes a separate stderr). */
export function execOptions(query: URLSearchParams): ExecOptions | string {
  const tty = query.get("tty") === "1";
  const opts = {
    command: query.getAll("command"),
    stdin: query.get("input") === "1",
    stdout: query.get("output") === "1",
    stderr: query.get("error") === "1" && !tty,
    tty,
  };
  if (!opts.stdin && !opts.stdout && !opts.stderr)
    return "you must specify at least 1 of stdin, stdout, stderr";
  if (opts.command.length === 0) return "you must specify a command";
  return opts;
}

/** The metav1.Status that ends an exec on the error stream (protocol v4). */
export function execStatus(exitCode: number, command: readonly string[]): object {
  if (exitCode === 0) return { metadata: {}, status: "Success" };
  return {
    metadata: {},
    status: "Failure",
    message: `command terminated with non-zero exit code: error executing command [${command.join(" ")}], exit code ${exitCode}`,
    reason: "NonZeroExitCode",
    details: { causes: [{ reason: "ExitCode", message: String(exitCode) }] },
  };
}

const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** Collects the streams the client is expected to open, keyed by their streamType. */
function awaitStreams(
  conn: SpdyServerConnection,
  wanted: readonly string[],
): Promise<Map<string, SpdyStream>> {
  return new Promise((resolve, reject) => {
    const got = new Map<string, SpdyStream>();
    const timer = setTimeout(
      () => reject(new Error("timed out waiting for client streams")),
      STREAM_CREATION_TIMEOUT_MS,
    );
    const onStream = (s: SpdyStream) => {
      got.set(s.headers["streamtype"] ?? "", s);
      if (wanted.every((w) => got.has(w))) {
        clearTimeout(timer);
        conn.off("stream", onStream);
        resolve(got);
      }
    };
    conn.on("stream", onStream);
    conn.once("close", () => {
      clearTimeout(timer);
      reject(new Error("the client closed the connection"));
    });
  });
}

/** Runs a command in a container's namespaces with the client's streams as its stdio. */
export async function serveExec(
  conn: SpdyServerConnection,
  target: ExecTarget,
  opts: ExecOptions,
): Promise<void> {
  const wanted = ["error", ...(opts.stdin ? ["stdin"] : []), ...(opts.stdout ? ["stdout"] : [])];
  if (opts.stderr) wanted.push("stderr");
  if (opts.tty) wanted.push("resize");
  const streams = await awaitStreams(conn, wanted).catch(() => undefined);
  if (!streams) return conn.close();

  // With a TTY, util-linux `script` gives the command a pseudo-terminal (sizes are not applied).
  const argv = opts.tty
    ? [
        "script",
        "--quiet",
        "--flush",
        "--return",
        "--command",
        opts.command.map(shellQuote).join(" "),
        "/dev/null",
      ]
    : opts.command;
  const child = spawn(
    target.nsenter,
    ["--target", String(target.pid), "--net", "--mount", "--uts", `--wd=${target.workingDir}`, "--", ...argv],
    {
      env: target.env,
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
  const stdin = streams.get("stdin");
  if (stdin) {
    stdin.on("data", (d: Buffer) => child.stdin.write(d));
    stdin.on("end", () => child.stdin.end());
  } else {
    child.stdin.end();
  }
  child.stdin.on("error", () => {});
  const out = streams.get("stdout");
  const err = streams.get("stderr");
  child.stdout.on("data", (d: Buffer) => out?.write(d));
  child.stderr.on("data", (d: Buffer) => (err ?? out)?.write(d));
  conn.once("close", () => child.kill("SIGKILL"));

  const exitCode = await new Promise<number>((resolve) => {
    child.on("error", () => resolve(127));
    child.on("close", (code, signal) => resolve(code ?? (signal ? 128 + 9 : 1)));
  });
  streams.get("error")!.write(Buffer.from(JSON.stringify(execStatus(exitCode, opts.command))));
  for (const s of streams.values()) s.end();
  conn.close();
}

/** Forwards each (data, error) stream pair to the pod's port. */
export function servePortForward(conn: SpdyServerConnection, podIP: string, describe: string): void {
  const pairs = new Map<string, { data?: SpdyStream; error?: SpdyStream }>();
  conn.on("stream", (s: SpdyStream) => {
    const id = s.headers["requestid"] ?? "";
    const pair = pairs.get(id) ?? {};
    if (s.headers["streamtype"] === "data") pair.data = s;
    else if (s.headers["streamtype"] === "error") pair.error = s;
    pairs.set(id, pair);
    if (!pair.data || !pair.error) return;
    pairs.delete(id);
    forward(pair.data, pair.error, podIP, Number(pair.data.headers["port"]), describe);
  });
}

function forward(data: SpdyStream, error: SpdyStream, podIP: string, port: number, describe: string): void {
  const socket = connect({ host: podIP, port });
  data.on("data", (d: Buffer) => socket.write(d));
  data.on("end", () => socket.end());
  data.on("reset", () => socket.destroy());
  socket.on("data", (d: Buffer) => data.write(d));
  socket.on("end", () => {
    data.end();
    error.end();
  });
  socket.on("error", (err) => {
    error.write(Buffer.from(`error forwarding port ${port} to pod ${describe}: ${err.message}`));
    data.reset();
    error.reset();
  });
}
