// The parts of the kubelet's HTTPS API that kubectl's logs, exec and port-forward reach
// through the apiserver, on the node's address, port 10250. The apiserver authenticates
// with a client certificate from the cluster CA.
//   GET /containerLogs/<ns>/<pod>/<container>  follow, previous, tailLines, limitBytes
//   /exec/<ns>/<pod>/<container>               SPDY/3.1, v4.channel.k8s.io (no attach)
//   /portForward/<ns>/<pod>                     SPDY/3.1, portforward.k8s.io
import { createReadStream, statSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { createCa, issueServingCert } from "../../../../webhook-certs/x509.ts";
import type { LogRange } from "../pod/worker.ts";
import { SpdyServerConnection } from "./spdy.ts";
import { execOptions, serveExec, servePortForward, type ExecTarget } from "./streaming.ts";

export const KUBELET_PORT = 10250;
const FOLLOW_POLL_MS = 200;

export interface KubeletServerOptions {
  address: string;
  nodeName: string;
  /** The cluster CA (PEM): client certificates must chain to it. */
  clientCA: string;
  logRange: (
    namespace: string,
    pod: string,
    container: string,
    previous: boolean,
  ) => LogRange | string | undefined;
  /** Where a command for the container runs; a string says why it cannot. */
  execTarget: (namespace: string, pod: string, container: string) => ExecTarget | string | undefined;
  podIP: (namespace: string, pod: string) => string | undefined;
  log: Logger;
}

/** The last `lines` lines of text (the kubelet's tailLines). */
export function tailLines(text: string, lines: number): string {
  if (lines <= 0) return "";
  const parts = text.split("\n");
  const trailingNewline = parts.at(-1) === "";
  if (trailingNewline) parts.pop();
  return parts.slice(-lines).join("\n") + (trailingNewline && parts.length ? "\n" : "");
}

function readRange(file: string, start: number, end: number): Promise<Buffer> {
  if (end <= start) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    createReadStream(file, { start, end: end - 1 })
      .on("data", (c) => chunks.push(c as Buffer))
      .on("end", () => resolve(Buffer.concat(chunks)))
      .on("error", reject);
  });
}

const size = (file: string) => {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
};

async function serveLogs(
  range: LogRange,
  query: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const tail = query.has("tailLines") ? Number(query.get("tailLines")) : undefined;
  let budget = query.has("limitBytes") ? Number(query.get("limitBytes")) : Infinity;
  res.writeHead(200, { "Content-Type": "text/plain" });
  const write = (buf: Buffer) => {
    const part = buf.subarray(0, Math.min(buf.length, budget));
    budget -= part.length;
    if (part.length) res.write(part);
  };
  let position = range.start;
  const end = range.end ?? size(range.file);
  let first = await readRange(range.file, position, end);
  position = end;
  if (tail !== undefined) first = Buffer.from(tailLines(first.toString("utf8"), tail));
  write(first);

  if (query.get("follow") === "true" && range.running && range.end === undefined) {
    let closed = false;
    req.on("close", () => (closed = true));
    // Until the client goes away or the budget is spent; the apiserver closes the stream
    // when kubectl stops.
    while (!closed && budget > 0) {
      await new Promise((r) => setTimeout(r, FOLLOW_POLL_MS));
      const now = size(range.file);
      if (now > position) {
        write(await readRange(range.file, position, now));
        position = now;
      }
    }
  }
  res.end();
}

/** The protocol both sides speak: the first the client offers that the server accepts. */
export function negotiate(
  offered: string | string[] | undefined,
  accepted: readonly string[],
): string | undefined {
  const list = (Array.isArray(offered) ? offered.join(",") : (offered ?? "")).split(",").map((p) => p.trim());
  return list.find((p) => accepted.includes(p));
}

function refuse(socket: Duplex, code: number, reason: string, message: string): void {
  socket.end(
    `HTTP/1.1 ${code} ${reason}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(message)}\r\nConnection: close\r\n\r\n${message}`,
  );
}

/** Switches an exec or port-forward request to SPDY and serves it. */
function upgrade(opts: KubeletServerOptions, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const url = new URL(req.url ?? "/", "https://node");
  const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  if (!/spdy\/3\.1/i.test(req.headers.upgrade ?? "")) {
    return refuse(socket, 400, "Bad Request", "the node agent streams over SPDY/3.1 only");
  }
  let protocol: string | undefined;
  let start: (conn: SpdyServerConnection) => void;
  if (parts[0] === "portForward" && (parts.length === 3 || parts.length === 4)) {
    const [, namespace, pod] = parts as [string, string, string];
    const ip = opts.podIP(namespace, pod);
    if (!ip)
      return refuse(
        socket,
        404,
        "Not Found",
        `pod "${pod}" in namespace "${namespace}" is not running on node ${opts.nodeName}`,
      );
    protocol = negotiate(req.headers["x-stream-protocol-version"], ["portforward.k8s.io"]);
    start = (conn) => servePortForward(conn, ip, `${namespace}/${pod}`);
  } else if (parts[0] === "exec" && (parts.length === 4 || parts.length === 5)) {
    const [namespace, pod] = [parts[1]!, parts[2]!];
    const container = parts.at(-1)!;
    const target = opts.execTarget(namespace, pod, container);
    if (target === undefined)
      return refuse(
        socket,
        404,
        "Not Found",
        `pod "${pod}" in namespace "${namespace}" is not on node ${opts.nodeName}`,
      );
    if (typeof target === "string") return refuse(socket, 400, "Bad Request", target);
    const exec = execOptions(url.searchParams);
    if (typeof exec === "string") return refuse(socket, 400, "Bad Request", exec);
    protocol = negotiate(req.headers["x-stream-protocol-version"], ["v4.channel.k8s.io"]);
    start = (conn) =>
      void serveExec(conn, target, exec).catch((err: unknown) => {
        opts.log.warn({ err: String(err) }, "exec failed");
        conn.close();
      });
  } else {
    return refuse(socket, 404, "Not Found", `${url.pathname} is not served by the node agent`);
  }
  if (!protocol) return refuse(socket, 403, "Forbidden", "unable to upgrade: unable to negotiate protocol");
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${protocol}\r\n\r\n`,
  );
  if (head.length) socket.unshift(head);
  start(new SpdyServerConnection(socket));
}

export async function startKubeletServer(opts: KubeletServerOptions): Promise<Server> {
  // A self-signed serving certificate, as a kubelet without a signed one has.
  const ca = await createCa({ commonName: `${opts.nodeName}-ca@${Math.floor(Date.now() / 1000)}` });
  const serving = await issueServingCert(ca, { dnsNames: [opts.nodeName], ips: [opts.address] });
  const server = createServer(
    {
      cert: `${serving.certPem.trim()}\n${ca.certPem.trim()}\n`,
      key: serving.keyPem,
      ca: opts.clientCA,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const url = new URL(req.url ?? "/", "https://node");
      const reply = (code: number, text: string) => {
        res.writeHead(code, { "Content-Type": "text/plain" });
        res.end(text);
      };
      if (url.pathname === "/healthz") return reply(200, "ok");
      const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
      if (req.method !== "GET" || !m) return reply(404, `${url.pathname} is not served by the node agent`);
      const [, namespace, pod, container] = m.map(decodeURIComponent) as [string, string, string, string];
      const range = opts.logRange(namespace, pod, container, url.searchParams.get("previous") === "true");
      if (range === undefined)
        return reply(404, `pod "${pod}" in namespace "${namespace}" is not on node ${opts.nodeName}`);
      if (typeof range === "string") return reply(400, range);
      serveLogs(range, url.searchParams, req, res).catch((err: unknown) => {
        opts.log.warn({ err: String(err) }, "serving container logs failed");
        res.destroy();
      });
    },
  );
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) =>
    upgrade(opts, req, socket, head),
  );
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(KUBELET_PORT, opts.address, () => resolve());
  });
  return server;
}
