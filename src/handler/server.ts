// The handler's HTTP surface: routes, body parsing and error bodies. Every decision is
// made in service.ts.
import express, { type NextFunction, type Request, type Response } from "express";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { bodyReadProblem, errorHandler, unmatchedRoute, sendError } from "../http/errors.ts";
import { healthRoutes, type ReadinessCheck } from "../http/health.ts";
import { metricsRoute } from "../http/metrics.ts";
import type { HandlerService } from "./service.ts";

/** A RecoveredRequest is about 200 bytes; anything near this limit is not one. */
export const MAX_BODY_BYTES = 16 * 1024;

export interface HandlerAppOptions {
  service: HandlerService;
  logger: Logger;
  registry: Registry;
  readiness: Record<string, ReadinessCheck>;
}

export function createHandlerApp(opts: HandlerAppOptions): express.Express {
  const { service, logger } = opts;
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);

  app.post(
    "/v1/recovered",
    // Any content type: a body that is not JSON deserves "not JSON", not an empty body.
    express.raw({ type: () => true, limit: MAX_BODY_BYTES }),
    async (req: Request, res: Response) => {
      const body = Buffer.isBuffer(req.body) ? req.body.toString("utf8") : "";
      const answer = await service.confirm(req.headers.authorization, body);
      res.status(answer.status).json(answer.body);
    },
    (err: unknown, req: Request, res: Response, next: NextFunction) => {
      const problem = bodyReadProblem(err);
      if (!problem) {
        next(err);
        return;
      }
      logger.warn({ path: req.path, status: problem.status }, problem.message);
      sendError(res, problem.status, problem.message);
    },
  );
  app.get("/v1/peers", async (req: Request, res: Response) => {
    const answer = await service.peers(req.headers.authorization);
    res.status(answer.status).json(answer.body);
  });
  app.use(healthRoutes(opts.readiness));
  app.get("/metrics", metricsRoute(opts.registry));
  app.use(
    unmatchedRoute({
      "/v1/recovered": ["POST"],
      "/v1/peers": ["GET"],
      "/healthz": ["GET"],
      "/readyz": ["GET"],
      "/metrics": ["GET"],
    }),
  );
  app.use(errorHandler(logger));
  return app;
}
