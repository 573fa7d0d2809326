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

export function registerProbeCommand(program: Command): void {
  program
    .command("probe")
    .description(
      "ask the recovery sidecar's startup or liveness probe over loopback; exit 0 when it passes (an exec probe for pods whose network is closed to the kubelet)",
    )
    .argument("<kind>", "startup or liveness")
    .option("--port <port>", "the sidecar's probe port (default: CHA_PROBE_PORT, else 7444)")
    .option("--timeout <ms>", "how long to wait for the answer", "2000")
    .action(async function (this: Command, kind: string, flags: { port?: string; timeout: string }) {
      const { askProbe, probePort, PROBE_PATHS } = await import("./probe-client.ts");
      if (!Object.hasOwn(PROBE_PATHS, kind)) {
        this.error(
          `error: probe ${JSON.stringify(kind)} is not one of ${Object.keys(PROBE_PATHS).join(", ")}`,
          {
            exitCode: 2,
          },
        );
      }
      const port = flags.port === undefined ? probePort(process.env) : Number(flags.port);
      const timeout = Number(flags.timeout);
      if (!Number.isInteger(port) || port < 1 || port > 65535 || !(timeout > 0)) {
        this.error(`error: --port ${flags.port} or --timeout ${flags.timeout} is not valid`, { exitCode: 2 });
      }
      const answer = await askProbe(kind as "startup" | "liveness", port, timeout);
      process.stdout.write(`${answer.text}\n`);
      process.exitCode = answer.ok ? 0 : 1;
    });
}
