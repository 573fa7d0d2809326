// The webhook's HTTP surface. It reads the body, hands it to review.ts, and writes,
// counts and logs the answer; every decision is made in review.ts.
import express, { type NextFunction, type Request, type Response } from "express";
import type { Registry } from "prom-client";
import type { Logger } from "pino";
import { rawBody } from "../http/body.ts";
import { bodyReadProblem, errorHandler, unmatchedRoute, sendError } from "../http/errors.ts";
import { sendJson } from "../http/json.ts";
import { healthRoutes, type ReadinessCheck } from "../http/health.ts";
import { metricsRoute } from "../http/metrics.ts";
import type { WebhookMetrics } from "./metrics.ts";
import { reviewBody, type ReviewResult } from "./review.ts";
import type { InjectionParams } from "./sidecar.ts";

/** The apiserver's own limit for a request body; no valid pod is larger. */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

export interface WebhookAppOptions {
  logger: Logger;
  metrics: WebhookMetrics;
  registry: Registry;
  /** The injection parameters as of now (the handler CA may have been rotated). */
  params: () => InjectionParams;
  readiness: Record<string, ReadinessCheck>;
}

export function createWebhookApp(opts: WebhookAppOptions): express.Express {
  const { logger, metrics } = opts;
  // The line about each admission request has a fixed set of fields (who the request is
  // about and what became of it), none of them secret. It skips the wildcard redaction that
  // createLogger applies to every line, which adds about two thirds to the cost of a line.
  const requestLog = logger.child({}, { redact: [] });
  const app = express();
  app.disable("x-powered-by");
  // Every answer is unique to its request: hashing it for an ETag is wasted work.
  app.set("etag", false);

  type Entry = Pick<ReviewResult, "outcome" | "reason" | "message" | "subject">;
  const record = (entry: Entry, status: number, res: Response): void => {
    const seconds = (performance.now() - (res.locals["startedAt"] as number)) / 1000;
    metrics.observe(entry.outcome, entry.reason, seconds);
    const line = {
      ...entry.subject,
      outcome: entry.outcome,
      reason: entry.reason || undefined,
      durationMs: Math.round(seconds * 1e4) / 10,
    };
    if (status === 200) requestLog.info(line, entry.message);
    else requestLog.warn({ ...line, status }, entry.message);
  };

  app.post(
    "/mutate",
    (_req: Request, res: Response, next: NextFunction) => {
      res.locals["startedAt"] = performance.now();
      next();
    },
    // Any content type: the apiserver sends application/json, and a body that is not JSON
    // deserves "not JSON", not an empty body. Never a compressed one (see body.ts).
    rawBody(MAX_BODY_BYTES),
    (req: Request, res: Response) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const result = reviewBody(body, opts.params());
      record(result, result.status, res);
      if (result.status === 200) sendJson(res, 200, result.review);
      else sendError(res, result.status, result.message);
    },
    (err: unknown, _req: Request, res: Response, next: NextFunction) => {
      const problem = bodyReadProblem(err);
      if (!problem) {
        next(err);
        return;
      }
      const reason =
        problem.status === 413
          ? "body_too_large"
          : problem.status === 415
            ? "encoded_body"
            : "unreadable_body";
      record({ outcome: "rejected", reason, message: problem.message, subject: {} }, problem.status, res);
      sendError(res, problem.status, problem.message);
    },
  );
  app.use(healthRoutes(opts.readiness));
  app.get("/metrics", metricsRoute(opts.registry));
  app.use(
    unmatchedRoute({ "/mutate": ["POST"], "/healthz": ["GET"], "/readyz": ["GET"], "/metrics": ["GET"] }),
  );
  app.use(errorHandler(logger));
  return app;
}
