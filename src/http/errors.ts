// Every error answer of our HTTP servers is `{"error": "..."}` (see src/handler/api.ts,
// ErrorBody), never express's HTML page, and says what was wrong.
import type { ServerResponse } from "node:http";
import type { ErrorRequestHandler, RequestHandler } from "express";
import type { Logger } from "pino";
import { sendJson } from "./json.ts";

export function sendError(res: ServerResponse, status: number, message: string): void {
  sendJson(res, status, { error: message });
}

/** A server's routes: path -> the methods it answers there (express answers HEAD for GET). */
export type Routes = Readonly<Record<string, readonly string[]>>;

/**
 * The last route: a known path asked with another method gets 405 and the Allow header
 * (RFC 9110 requires it), anything else 404; both say what the server has.
 */
export function unmatchedRoute(routes: Routes): RequestHandler {
  return (req, res) => answerUnmatched(routes, req.method, req.path, res);
}

/** unmatchedRoute's answer, for a server without express. */
export function answerUnmatched(routes: Routes, method: string, path: string, res: ServerResponse): void {
  const all = Object.entries(routes).flatMap(([p, methods]) => methods.map((m) => `${m} ${p}`));
  const listing = all.length > 1 ? `${all.slice(0, -1).join(", ")} and ${all.at(-1)}` : (all[0] ?? "nothing");
  const methods = Object.hasOwn(routes, path) ? routes[path] : undefined;
  if (methods) {
    const allowed = methods.includes("GET") ? [...methods, "HEAD"] : methods;
    res.setHeader("allow", allowed.join(", "));
    sendError(res, 405, `${method} is not allowed on ${path}; this server has ${listing}`);
    return;
  }
  sendError(res, 404, `no route ${method} ${path}; this server has ${listing}`);
}

/**
 * A client-side problem with reading the body (too large, aborted, bad encoding) as raised
 * by express's body parsers, or undefined for any other error.
 */
export function bodyReadProblem(err: unknown): { status: number; message: string } | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const { type, status, limit, message } = err as {
    type?: unknown;
    status?: unknown;
    limit?: unknown;
    message?: unknown;
  };
  if (typeof type !== "string" || typeof status !== "number" || status < 400 || status > 499)
    return undefined;
  if (type === "entity.too.large")
    return { status, message: `body is larger than the limit of ${String(limit)} bytes` };
  return { status, message: `cannot read the body: ${String(message)}` };
}

/** The last handler: body problems become 4xx, anything else a logged 500. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const problem = bodyReadProblem(err);
    if (problem) {
      logger.warn({ method: req.method, path: req.path, status: problem.status }, problem.message);
      sendError(res, problem.status, problem.message);
      return;
    }
    logger.error({ err, method: req.method, path: req.path }, "request failed");
    sendError(res, 500, "internal error; see the server log");
  };
}
