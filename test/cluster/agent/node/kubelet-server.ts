// The part of the kubelet's HTTPS API that `kubectl logs` needs: the apiserver proxies
// GET /containerLogs/<namespace>/<pod>/<container> to the node's address on port 10250,
// authenticating with a client certificate from the cluster CA. Supported parameters:
// follow, previous, tailLines, limitBytes. exec, attach and port-forward are not served.
import { createReadStream, statSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { createCa, issueServingCert } from "../../../../webhook-certs/x509.ts";
import type { LogRange } from "../pod/worker.ts";

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
      if (req.method !== "GET" || !m)
        return reply(404, `${url.pathname} is not served by the node agent (only container logs are)`);
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
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(KUBELET_PORT, opts.address, () => resolve());
  });
  return server;
}
