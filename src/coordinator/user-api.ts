// The reference Coordinator's user API (port 1313):
//
//   POST /v1/manifest {"manifest": {...}}  initialize: 201, or 409 when it already holds state
//   POST /v1/manifest {"manifest": {...}, "update": {parent, ownerKey, signature}}
//                                          update (workload owner): 200 once committed by a
//                                          quorum; 409 conflict, 403 key/proof, 400, 503
//   GET  /v1/manifest                      200 {manifest, digest, publicKey, history}, 503 while it holds none
//
// Plain HTTP, like Contrast's HTTP API behind its own attestation: the reference has no
// attestation to offer, and the user compares the public key instead (`coordinator-ha verify`).
import express, { type Express, type Response } from "express";
import type { Logger } from "pino";
import { errorHandler, unmatchedRoute, sendError } from "../http/errors.ts";
import type { Initialized, StateHolder, Status } from "./state-holder.ts";
import type { Transition } from "./state.ts";
import { parseManifestRequest } from "./update.ts";

/** A manifest is configuration, not data; 1 MiB is generous. */
const BODY_LIMIT = "1mb";

/** What GET and a successful POST answer; the seed never leaves the Coordinator. */
export interface ManifestResponse {
  manifest: Record<string, unknown>;
  digest: string;
  publicKey: string;
  /** Every `set` so far, oldest first. */
  history: Transition[];
}

export function userApi(holder: StateHolder, logger: Logger): Express {
  const app = express();
  app.disable("x-powered-by");
  app.use(express.json({ limit: BODY_LIMIT }));

  app.post("/v1/manifest", async (req, res) => {
    const request = parseManifestRequest(req.body);
    if (typeof request === "string") {
      sendError(res, 400, request);
      return;
    }
    if (holder.status().kind !== "initialized") {
      const result = await holder.initialize(request.manifest);
      if (result.kind === "initialized") {
        res.status(201).json(manifestResponse(result.value));
        return;
      }
      if (result.status.kind !== "initialized") {
        answerNotInitialized(res, result.status);
        return;
      }
      // State appeared meanwhile (a recovery, a concurrent `set`): an update, if anything.
    }
    const result = await holder.update(request);
    switch (result.kind) {
      case "updated":
      case "same":
        res.status(200).json(manifestResponse(result.value));
        return;
      case "refused":
        // `digest`: the state the Coordinator holds, so that `set` can tell "already set".
        res
          .status(result.status)
          .json({ error: result.error, ...(result.head ? { digest: result.head } : {}) });
        return;
      case "not-initialized":
        answerNotInitialized(res, result.status);
        return;
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
  return {
    manifest: value.state.manifest,
    digest: value.digest,
    publicKey: value.publicKey,
    history: value.state.history,
  };
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
