// One prom-client registry per server (not the global one), so that several servers can
// live in one process, as they do in tests.
import type { RequestHandler } from "express";
import { collectDefaultMetrics, Registry } from "prom-client";

/** A registry with the process metrics (CPU, memory, event loop lag, GC). */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

export function metricsRoute(registry: Registry): RequestHandler {
  return async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  };
}
