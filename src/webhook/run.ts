// Wires the webhook together: configuration in, a serving HTTPS server out.
import type { Logger } from "pino";
import { createRegistry } from "../http/metrics.ts";
import { startTlsServer } from "../http/tls-server.ts";
import type { WebhookConfig } from "./config.ts";
import { watchHandlerCa, type HandlerCa } from "./handler-ca.ts";
import { webhookMetrics } from "./metrics.ts";
import { createWebhookApp } from "./server.ts";
import type { InjectionParams } from "./sidecar.ts";
import { WEBHOOK_LIMITS } from "../http/limits.ts";

export interface RunningWebhook {
  /** The port actually bound (config.port may be 0). */
  port: number;
  /** Stops taking requests, lets those in flight finish (up to drainMs), then closes. */
  close(drainMs?: number): Promise<void>;
}

export async function startWebhook(config: WebhookConfig, logger: Logger): Promise<RunningWebhook> {
  const handlerCa =
    config.handlerCaFile === undefined ? undefined : watchHandlerCa(config.handlerCaFile, logger);
  const fixed: Omit<InjectionParams, "handlerCa"> = {
    image: config.sidecarImage,
    imagePullPolicy: config.sidecarImagePullPolicy,
    handlerUrl: config.handlerUrl,
    stateDir: config.stateDir,
    probes: config.sidecarProbes,
  };

  const registry = createRegistry();
  const app = createWebhookApp({
    logger,
    registry,
    metrics: webhookMetrics(registry),
    params: currentParams(fixed, handlerCa),
    // Nothing to wait for: once it listens, the webhook can answer. (A pod being deleted
    // leaves the Service's endpoints on its own; the drain below covers the requests
    // that are already on their way.)
    readiness: {},
  });

  const server = await startTlsServer({
    port: config.port,
    certFile: config.tlsCertFile,
    keyFile: config.tlsKeyFile,
    handler: app,
    logger,
    limits: WEBHOOK_LIMITS,
  }).catch((err: unknown) => {
    handlerCa?.close();
    throw err;
  });
  logger.info(
    {
      port: server.port,
      sidecarImage: config.sidecarImage,
      handlerUrl: config.handlerUrl,
      stateDir: config.stateDir,
    },
    "webhook serving",
  );

  return {
    port: server.port,
    close: async (drainMs = 5000) => {
      await server.close(drainMs);
      handlerCa?.close();
    },
  };
}

/**
 * The injection parameters as of now. Only the handler CA can change while the webhook
 * runs, so a new object is made when it does, not on every request.
 */
function currentParams(
  fixed: Omit<InjectionParams, "handlerCa">,
  handlerCa: HandlerCa | undefined,
): () => InjectionParams {
  let params: InjectionParams = { ...fixed, handlerCa: handlerCa?.current() ?? "" };
  return () => {
    const pem = handlerCa?.current() ?? "";
    if (pem !== params.handlerCa) params = { ...fixed, handlerCa: pem };
    return params;
  };
}
