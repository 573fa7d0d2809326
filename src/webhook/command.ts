// `coordinator-ha webhook`: the CLI edge of the webhook.
import type { Command } from "commander";
import { createLogger } from "../log.ts";
import { serveUntilSignal } from "../serve.ts";
import { DEFAULT_STATE_DIR } from "../names.ts";
import { ConfigError, parseWebhookConfig, type WebhookConfig, type WebhookFlags } from "./config.ts";

export function registerWebhookCommand(program: Command): void {
  program
    .command("webhook")
    .description("serve the mutating admission webhook that injects recovery into Coordinator pods")
    .option("--port <port>", "HTTPS port", "8443")
    .option("--tls-cert <file>", "serving certificate (PEM); reloaded when the file changes")
    .option("--tls-key <file>", "serving key (PEM); reloaded when the file changes")
    .option("--sidecar-image <image>", "image of the injected recovery sidecar")
    .option("--sidecar-image-pull-policy <policy>", "Always, IfNotPresent or Never (default: the cluster's)")
    .option("--handler-url <url>", "https URL of the event handler, handed to every sidecar")
    .option(
      "--handler-ca-file <file>",
      "PEM bundle that sidecars use to verify the handler; reloaded when the file changes (default: system trust)",
    )
    .option("--state-dir <dir>", "state directory in the sidecar and the app containers", DEFAULT_STATE_DIR)
    .option(
      "--sidecar-probes <kind>",
      "http: the kubelet probes the sidecar over the pod network; exec: it runs `coordinator-ha probe` inside the sidecar (pods closed to inbound connections)",
      "http",
    )
    .option(
      "--log-level <level>",
      "fatal, error, warn, info, debug or trace",
      process.env["LOG_LEVEL"] ?? "info",
    )
    .action(async function (this: Command, flags: WebhookFlags) {
      let config: WebhookConfig;
      try {
        config = parseWebhookConfig(flags);
      } catch (err) {
        if (err instanceof ConfigError) this.error(`error: ${err.message}`, { exitCode: 2 });
        throw err;
      }

      const logger = createLogger("webhook");
      logger.level = config.logLevel;
      await serveUntilSignal("webhook", logger, async () => {
        const { startWebhook } = await import("./run.ts");
        return startWebhook(config, logger);
      });
    });
}
