// /healthz says "the process serves HTTP" (restart me if not); /readyz says "send me
// traffic" and lists what is missing when not.
import { Router } from "express";

/** A readiness check: a problem in the user's words, or undefined when fine. */
export type ReadinessCheck = () => string | undefined;

export function healthRoutes(readiness: Record<string, ReadinessCheck>): Router {
  const router = Router();
  router.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  router.get("/readyz", (_req, res) => {
    const problems = Object.fromEntries(
      Object.entries(readiness).flatMap(([name, check]) => {
        const problem = check();
        return problem === undefined ? [] : [[name, problem]];
      }),
    );
    if (Object.keys(problems).length === 0) res.json({ status: "ready" });
    else res.status(503).json({ status: "not ready", problems });
  });
  return router;
}
