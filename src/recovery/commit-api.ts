// The sidecar's local commit API (DESIGN.md, "State that changes"): plain HTTP on 127.0.0.1
// only, so that nothing outside the pod reaches it (the app shares the pod's loopback).
//
//   POST /v1/commit {"parent": "sha256:…" | null, "files": [{"path": "…", "content": "<base64>"}]}
//     200 {"digest"}          a quorum holds it, and it is the live state in the directory now
//     409 {"error", "head"}   refused: another state is the head; the live state is unchanged
//     400 {"error"}           malformed (the path rules of a bundle, an empty bundle, a bad parent)
//     413                     larger than a bundle may be
//     503 {"error"}           nothing committed: the handler or a quorum were not there in time
import express, { type Express } from "express";
import type { Logger } from "pino";
import { errorHandler, sendError, unmatchedRoute } from "../http/errors.ts";
import { sendJson } from "../http/json.ts";
import { BundleError, createBundle, isDigest, MAX_BUNDLE_BYTES, type Bundle } from "../state/bundle.ts";
import type { CommitResult } from "./updater.ts";

/** A bundle in base64 and JSON: 4/3 of the bundle limit and the framing of its files. */
const BODY_LIMIT = Math.ceil((MAX_BUNDLE_BYTES * 4) / 3) + 1024 * 1024;

export interface CommitApiOptions {
  commit(parent: string | null, bundle: Bundle): Promise<CommitResult>;
  logger: Logger;
}

/** The bundle and parent of a commit request, or what is wrong with it. */
export function parseCommitRequest(body: unknown): { parent: string | null; bundle: Bundle } | string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return 'expected a JSON body {"parent": "sha256:…" | null, "files": [{"path": "…", "content": "<base64>"}]}';
  }
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => k !== "parent" && k !== "files");
  if (unknown.length > 0) return `unknown field(s): ${unknown.join(", ")}`;
  const parent = fields["parent"];
  if (parent !== null && !isDigest(parent)) {
    return "parent must be the digest of the live state the update replaces (sha256:<64 hex>), or null for a first state";
  }
  const files = fields["files"];
  if (!Array.isArray(files) || files.length === 0)
    return "files must be a non-empty list: an empty bundle is no state";
  const decoded = [];
  for (const [i, file] of files.entries()) {
    const f = file as Record<string, unknown> | null;
    if (
      typeof f !== "object" ||
      f === null ||
      typeof f["path"] !== "string" ||
      typeof f["content"] !== "string"
    ) {
      return `files[${i}] must be {"path": "…", "content": "<base64>"}`;
    }
    const content = Buffer.from(f["content"], "base64");
    if (content.toString("base64") !== f["content"]) return `files[${i}].content is not canonical base64`;
    decoded.push({ path: f["path"], content });
  }
  try {
    return { parent, bundle: createBundle(decoded) };
  } catch (err) {
    if (err instanceof BundleError) return err.message;
    throw err;
  }
}

export function commitApi(opts: CommitApiOptions): Express {
  const { logger } = opts;
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.post("/v1/commit", express.json({ limit: BODY_LIMIT }), async (req, res) => {
    const request = parseCommitRequest(req.body);
    if (typeof request === "string") {
      logger.warn({ reason: request }, "refused a commit request of the app");
      sendError(res, 400, request);
      return;
    }
    const result = await opts.commit(request.parent, request.bundle);
    if (result.status === 200) sendJson(res, 200, { digest: result.digest });
    else if (result.status === 409) sendJson(res, 409, { error: result.error, head: result.head });
    else sendError(res, 503, result.error);
  });
  app.use(unmatchedRoute({ "/v1/commit": ["POST"] }));
  app.use(errorHandler(logger));
  return app;
}
