// The handler's HTTP surface: routes, body parsing and error bodies. Every decision is
// made in service.ts.
import express, { type NextFunction, type Request, type RequestHandler, type Response } from "express";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { bodyReadProblem, errorHandler, unmatchedRoute, sendError } from "../http/errors.ts";
import { healthRoutes, type ReadinessCheck } from "../http/health.ts";
import { metricsRoute } from "../http/metrics.ts";
import { rawBody } from "../http/body.ts";
import type { PodIdentity } from "../identity/index.ts";
import type { Call, HandlerService } from "./service.ts";

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

  // The token first, the body after: a caller without a valid token never gets a byte of
  // its body read (the connection is closed with the refusal, so Node does not drain it).
  const authenticated =
    (call: Call): RequestHandler =>
    async (req, res, next) => {
      const result = await service.authenticate(call, req.headers.authorization);
      if (!result.ok) {
        res.setHeader("connection", "close");
        res.status(result.answer.status).json(result.answer.body);
        return;
      }
      res.locals["who"] = result.who;
      next();
    };
  const who = (res: Response) => res.locals["who"] as PodIdentity;
  const bodyProblem = (err: unknown, req: Request, res: Response, next: NextFunction) => {
    const problem = bodyReadProblem(err);
    if (!problem) {
      next(err);
      return;
    }
    logger.warn({ path: req.path, status: problem.status, ...podOf(res) }, problem.message);
    sendError(res, problem.status, problem.message);
  };
  const text = (req: Request) => (Buffer.isBuffer(req.body) ? req.body.toString("utf8") : "");

  app.post(
    "/v1/recovered",
    authenticated("confirmation"),
    rawBody(MAX_BODY_BYTES),
    async (req: Request, res: Response) => {
      const answer = await service.confirm(who(res), text(req));
      res.status(answer.status).json(answer.body);
    },
    bodyProblem,
  );
  app.get("/v1/peers", authenticated("peers"), async (_req: Request, res: Response) => {
    const answer = await service.peers(who(res));
    res.status(answer.status).json(answer.body);
  });
  app.post(
    "/v1/peer-access",
    authenticated("peer-access"),
    rawBody(MAX_BODY_BYTES),
    async (req: Request, res: Response) => {
      const answer = await service.peerAccess(who(res), text(req));
      res.status(answer.status).json(answer.body);
    },
    bodyProblem,
  );
  app.post(
    "/v1/proposals",
    authenticated("proposal"),
    rawBody(MAX_BODY_BYTES),
    async (req: Request, res: Response) => {
      const answer = await service.propose(who(res), text(req));
      res.status(answer.status).json(answer.body);
    },
    bodyProblem,
  );
  app.post(
    "/v1/holds",
    authenticated("hold"),
    rawBody(MAX_BODY_BYTES),
    async (req: Request, res: Response) => {
      const answer = await service.hold(who(res), text(req));
      res.status(answer.status).json(answer.body);
    },
    bodyProblem,
  );
  app.get("/v1/head", authenticated("head"), async (req: Request, res: Response) => {
    // The long-poll ends early when the caller hangs up.
    const gone = new AbortController();
    res.on("close", () => gone.abort());
    const answer = await service.head(who(res), req.query as Record<string, unknown>, gone.signal);
    if (!res.writableEnded && !gone.signal.aborted) res.status(answer.status).json(answer.body);
  });
  app.use(healthRoutes(opts.readiness));
  app.get("/metrics", metricsRoute(opts.registry));
  app.use(
    unmatchedRoute({
      "/v1/recovered": ["POST"],
      "/v1/peers": ["GET"],
      "/v1/peer-access": ["POST"],
      "/v1/proposals": ["POST"],
      "/v1/holds": ["POST"],
      "/v1/head": ["GET"],
      "/healthz": ["GET"],
      "/readyz": ["GET"],
      "/metrics": ["GET"],
    }),
  );
  app.use(errorHandler(logger));
  return app;
}

function podOf(res: Response): { namespace?: string; pod?: string } {
  const who = res.locals["who"] as PodIdentity | undefined;
  return who ? { namespace: who.namespace, pod: who.podName } : {};
}
