// `coordinator-ha handler`: the CLI edge of the event handler.
import type { Command } from "commander";
import { createLogger } from "../log.ts";
import { serveUntilSignal } from "../serve.ts";
import {
  collect,
  ConfigError,
  DEFAULT_POD_SELECTOR_TEXT,
  parseHandlerConfig,
  type HandlerConfig,
  type HandlerFlags,
} from "./config.ts";

export function registerHandlerCommand(program: Command): void {
  program
    .command("handler")
    .description("serve the event handler that marks Coordinator pods recovered once they hold the state")
    .option("--port <port>", "HTTPS port (API, /healthz, /readyz, /metrics)", "8443")
    .option("--tls-cert <file>", "serving certificate (PEM); reloaded when the file changes")
    .option("--tls-key <file>", "serving key (PEM); reloaded when the file changes")
    .option("--pod-selector <selector>", "label selector of the Coordinator pods", DEFAULT_POD_SELECTOR_TEXT)
    .option("--issuer <url>", "service-account token issuer (default: discovered from the apiserver)")
    .option(
      "--namespace <ns>",
      "watch and serve only this namespace (repeatable, or a comma-separated list; default: all namespaces)",
      collect,
    )
    .option("--kubeconfig <file>", "kubeconfig (default: KUBECONFIG, ~/.kube/config or in-cluster)")
    .option(
      "--log-level <level>",
      "fatal, error, warn, info, debug or trace",
      process.env["LOG_LEVEL"] ?? "info",
    )
    .action(async function (this: Command, flags: HandlerFlags) {
      let config: HandlerConfig;
      try {
        config = parseHandlerConfig(flags);
      } catch (err) {
        if (err instanceof ConfigError) this.error(`error: ${err.message}`, { exitCode: 2 });
        throw err;
      }

      const logger = createLogger("handler");
      logger.level = config.logLevel;
      await serveUntilSignal("handler", logger, async () => {
        const { startHandler } = await import("./run.ts");
        return startHandler(config, logger);
      });
    });
}
