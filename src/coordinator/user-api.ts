// The reference Coordinator's user API (port 1313):
//
//   POST /v1/manifest {"manifest": {...}}  initialize: 201, or 409 when it already holds state
//   GET  /v1/manifest                      200 {manifest, digest, publicKey}, 503 while it holds none
//
// Plain HTTP, like Contrast's HTTP API behind its own attestation: the reference has no
// attestation to offer, and the user compares the public key instead (`coordinator-ha verify`).
import express, { type Express, type Response } from "express";
import type { Logger } from "pino";
import { errorHandler, unmatchedRoute, sendError } from "../http/errors.ts";
import type { Initialized, StateHolder, Status } from "./state-holder.ts";
import { isManifest } from "./state.ts";

/** A manifest is configuration, not data; 1 MiB is generous. */
const BODY_LIMIT = "1mb";

/** What GET and a successful POST answer; the seed never leaves the Coordinator. */
export interface ManifestResponse {
  manifest: Record<string, unknown>;
  digest: string;
  publicKey: string;
}

export function userApi(holder: StateHolder, logger: Logger): Express {
  const app = express();
  app.disable("x-powered-by");
  app.use(express.json({ limit: BODY_LIMIT }));

  app.post("/v1/manifest", async (req, res) => {
    const body: unknown = req.body;
    if (!isManifest(body) || !("manifest" in body)) {
      sendError(res, 400, 'expected a JSON body {"manifest": {...}} with Content-Type application/json');
      return;
    }
    if (!isManifest(body["manifest"])) {
      sendError(res, 400, "the manifest must be a JSON object");
      return;
    }
    const result = await holder.initialize(body["manifest"]);
    if (result.kind === "initialized") {
      res.status(201).json(manifestResponse(result.value));
      return;
    }
    logger.warn(
      { status: result.status.kind },
      "refused to set a manifest: the coordinator already holds state",
    );
    if (result.status.kind === "initialized") {
      res.status(409).json({
        error: "the Coordinator is already initialized; a manifest is set only once",
        digest: result.status.value.digest,
      });
    } else {
      answerNotInitialized(res, result.status);
    }
  });

  app.get("/v1/manifest", (_req, res) => {
    const status = holder.status();
    if (status.kind === "initialized") res.json(manifestResponse(status.value));
    else answerNotInitialized(res, status);
  });

  app.use(unmatchedRoute({ "/v1/manifest": ["POST", "GET"] }));
  app.use(errorHandler(logger));
  return app;
}

function manifestResponse(value: Initialized): ManifestResponse {
  return { manifest: value.state.manifest, digest: value.digest, publicKey: value.publicKey };
}

function answerNotInitialized(res: Response, status: Exclude<Status, { kind: "initialized" }>): void {
  if (status.kind === "uninitialized") {
    sendError(
      res,
      503,
      "the Coordinator holds no state yet: initialize it with `coordinator-ha set`, or wait for it to recover from a peer",
    );
  } else {
    sendError(res, 500, `the Coordinator cannot use its state directory: ${status.reason}`);
  }
}
