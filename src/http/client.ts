// A small JSON-over-HTTP(S) client for the sidecar's calls, with the TLS modes it needs:
// - `ca`: verify the server against a CA bundle and the URL's host name (the handler);
// - `pinSha256`: trust exactly one certificate, by the SHA-256 of its DER encoding (a peer's
//   self-signed certificate, whose fingerprint the handler hands out). The connection is
//   made and the pin checked before the request, and with it any token, is written;
// - `insecure`: no verification, for the app's own readiness endpoint on loopback, which
//   the kubelet does not verify either.
// Every call has a deadline and a response size limit: a peer is not trusted to behave.
import { createHash } from "node:crypto";
import type { ClientRequest, IncomingMessage } from "node:http";
import { request as httpRequest } from "./node-http.ts";
import { request as httpsRequest, type Agent } from "node:https";
import { isIP } from "node:net";
import { connect, createSecureContext, type SecureContext, type TLSSocket } from "node:tls";

export interface JsonRequest {
  url: URL;
  method: "GET" | "POST";
  headers?: Record<string, string>;
  /** Sent as JSON. */
  body?: unknown;
  ca?: string;
  pinSha256?: string;
  insecure?: boolean;
  /**
   * HTTPS with `ca` only: the agent that keeps the connection for the next call (keep-alive),
   * for a caller that calls again at once, such as a long-poll loop. Default: a new connection.
   */
  agent?: Agent;
  timeoutMs: number;
  maxResponseBytes: number;
}

export interface JsonResponse {
  status: number;
  /** The parsed JSON body; undefined when the body is empty or not JSON. */
  body: unknown;
}

/** The call did not produce a response: unreachable, timed out, refused pin, oversized. */
export class RequestError extends Error {
  override name = "RequestError";
}

/**
 * The TLS context of each CA bundle, made once: parsing the bundle into a new context took about
 * 2 ms of CPU in every call, the largest part of a handshake's cost in the sidecar's idle CPU.
 * A process talks to one or two CAs, so the map stays small.
 */
const contexts = new Map<string, SecureContext>();
function contextOf(ca: string): SecureContext {
  let context = contexts.get(ca);
  if (!context) {
    context = createSecureContext({ ca });
    contexts.set(ca, context);
  }
  return context;
}

export async function requestJson(req: JsonRequest): Promise<JsonResponse> {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new RequestError(`no answer within ${req.timeoutMs} ms`)),
    req.timeoutMs,
  );
  try {
    return await send(req, controller.signal);
  } finally {
    clearTimeout(timer);
  }
}

async function send(req: JsonRequest, signal: AbortSignal): Promise<JsonResponse> {
  const { url } = req;
  // URL keeps the brackets of an IPv6 literal; sockets want the bare address.
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const https = url.protocol === "https:";
  const port = Number(url.port) || (https ? 443 : 80);
  const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
  const headers: Record<string, string> = { accept: "application/json", ...req.headers };
  if (payload) {
    headers["content-type"] = "application/json";
    headers["content-length"] = String(payload.length);
  }
  const common = { host, port, path: `${url.pathname}${url.search}`, method: req.method, headers, signal };

  let clientRequest: ClientRequest;
  if (https && req.pinSha256 !== undefined) {
    const socket = await connectPinned(host, port, req.pinSha256, signal);
    clientRequest = httpRequest({ ...common, createConnection: () => socket });
  } else if (https) {
    clientRequest = httpsRequest({
      ...common,
      agent: req.agent ?? false,
      ...(req.ca === undefined ? {} : { ca: req.ca, secureContext: contextOf(req.ca) }),
      rejectUnauthorized: req.insecure !== true,
      servername: isIP(host) ? undefined : host,
    });
  } else {
    clientRequest = httpRequest({ ...common, agent: false });
  }

  return new Promise<JsonResponse>((resolve, reject) => {
    const fail = (err: unknown) => {
      clientRequest.destroy();
      reject(signal.aborted ? signal.reason : new RequestError(describe(err)));
    };
    clientRequest.on("error", fail);
    clientRequest.on("response", (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > req.maxResponseBytes) {
          res.destroy();
          fail(new RequestError(`response is larger than ${req.maxResponseBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on("error", fail);
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: parseJson(Buffer.concat(chunks)) }));
    });
    clientRequest.end(payload);
  });
}

/** A TLS connection to the one server whose certificate has the SHA-256 `pin`. */
async function connectPinned(
  host: string,
  port: number,
  pin: string,
  signal: AbortSignal,
): Promise<TLSSocket> {
  const socket = connect({
    host,
    port,
    // The pin replaces chain and name verification: the certificate is self-signed.
    rejectUnauthorized: false,
    servername: isIP(host) ? undefined : host,
    minVersion: "TLSv1.3",
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      socket.once("secureConnect", () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      });
      socket.once("error", (err) => {
        signal.removeEventListener("abort", onAbort);
        reject(new RequestError(describe(err)));
      });
    });
    const raw = socket.getPeerCertificate().raw as Buffer | undefined;
    const actual = raw ? createHash("sha256").update(raw).digest("hex") : "none";
    if (actual !== pin.toLowerCase()) {
      throw new RequestError(`the server's certificate ${actual} is not the pinned certificate ${pin}`);
    }
    return socket;
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

function parseJson(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
}

function describe(err: unknown): string {
  if (err instanceof RequestError) return err.message;
  const { code, message } = err as { code?: string; message?: string };
  return code && message && !message.includes(code) ? `${code}: ${message}` : (message ?? String(err));
}
