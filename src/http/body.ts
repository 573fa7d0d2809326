// Reads a request body as it came over the wire, with a hard limit, and nothing else. No
// Content-Encoding is decoded: a compressed body would let a few hundred bytes expand into
// megabytes of parsing, answer and log (a 147-byte brotli body became a 3 MiB parse), and
// none of our clients (the apiserver, the sidecars) compresses. Such a body gets 415; one
// over the limit gets 413 as soon as its Content-Length says so, before a byte is read.
// Errors are shaped like body-parser's ({status, type, limit}) so that bodyReadProblem in
// errors.ts turns them into the answer, and every one closes the connection: a client that
// is told no stops costing us here, instead of having the rest of its body read and dropped.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { RequestHandler } from "express";

interface BodyError extends Error {
  status: number;
  type: string;
  limit?: number;
}

export function rawBody(limit: number): RequestHandler {
  return (req, res, next) => {
    readRawBody(req, limit).then(
      (body) => {
        req.body = body;
        next();
      },
      (err: unknown) => {
        closeAfterAnswer(res);
        next(err);
      },
    );
  };
}

/**
 * The body of `req`, at most `limit` bytes; rejects with a BodyError (415, 413, 400) that
 * bodyReadProblem (errors.ts) turns into the answer. The caller closes the connection with it.
 */
export function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const fail = (status: number, type: string, message: string) =>
      reject(Object.assign(new Error(message), { status, type, limit }) as BodyError);
    const encoding = (req.headers["content-encoding"] ?? "identity").trim().toLowerCase();
    if (encoding !== "identity") {
      fail(
        415,
        "encoding.unsupported",
        `Content-Encoding ${JSON.stringify(encoding.slice(0, 40))} is not accepted; send the body uncompressed`,
      );
      return;
    }
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > limit) {
      fail(413, "entity.too.large", "request entity too large");
      return;
    }

    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err?: { status: number; type: string; message: string }) => {
      if (done) return;
      done = true;
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
      if (err) {
        req.pause();
        fail(err.status, err.type, err.message);
        return;
      }
      resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit)
        finish({ status: 413, type: "entity.too.large", message: "request entity too large" });
      else chunks.push(chunk);
    };
    const onEnd = () => finish();
    const onError = () => finish({ status: 400, type: "request.aborted", message: "request aborted" });
    const onClose = () => {
      if (!req.complete) finish({ status: 400, type: "request.aborted", message: "request aborted" });
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}

/** The answer ends the connection: Node then neither reads the rest of the body nor keeps it alive. */
export function closeAfterAnswer(res: ServerResponse): void {
  if (!res.headersSent) res.setHeader("connection", "close");
}
