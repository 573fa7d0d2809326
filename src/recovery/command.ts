// `coordinator-ha recover`: the CLI edge of the recovery sidecar. Its configuration is the
// env that the webhook injects (config.ts); its identity checks use the cluster's
// service-account issuer (in-cluster-verifier.ts).
import type { Command } from "commander";
import { createLogger } from "../log.ts";
import { serveUntilSignal } from "../serve.ts";
import { ConfigError, parseSidecarConfig } from "./config.ts";

export function registerRecoverCommand(program: Command): void {
  program
    .command("recover")
    .description("run the recovery sidecar (configured by the CHA_* env that the webhook injects)")
    .action(async function (this: Command) {
      let config;
      try {
        config = parseSidecarConfig(process.env);
      } catch (err) {
        if (err instanceof ConfigError) this.error(`error: ${err.message}`, { exitCode: 2 });
        throw err;
      }
      const logger = createLogger("recovery");
      await serveUntilSignal("recovery sidecar", logger, async () => {
        const [{ startSidecar }, { inClusterVerifier }] = await Promise.all([
          import("./sidecar.ts"),
          import("./in-cluster-verifier.ts"),
        ]);
        return startSidecar(config, { verifier: inClusterVerifier(logger), logger });
      });
    });
}
