// `coordinator-ha coordinator`, `set` and `verify`: the CLI edge of the reference
// Coordinator and of its user.
import type { Command } from "commander";
import { createLogger } from "../log.ts";
import { serveUntilSignal } from "../serve.ts";
import {
  COMMIT_API_URL,
  COORDINATOR_API_PORT,
  COORDINATOR_PROBE_PORT,
  DEFAULT_STATE_DIR,
  SELF_RECOVERY_PERIOD_SECONDS,
  SELF_RECOVERY_PORT,
} from "../names.ts";
import type { RecoveryMode } from "./server.ts";
import { ExitCode, runSet, runVerify, type Output } from "./user-cli.ts";

/**
 * The user's terminal. Its stdout may be a pipe whose reader stops early
 * (`coordinator-ha verify … | head -1`). A write then fails with EPIPE, which Node reports as
 * an 'error' event that would crash the CLI with a stack trace and exit code 1 ("failed").
 * Instead, the rest of the output is dropped, and the command still finishes what it was
 * asked to do (a `set` that has printed "Waiting …" keeps waiting) and exits with its own code.
 */
function terminal(): Output {
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE") throw err;
  });
  return {
    // The failed write has already destroyed the stream (the 'error' event comes later):
    // later lines are not even attempted.
    out: (line) => {
      if (!process.stdout.destroyed) process.stdout.write(`${line}\n`);
    },
    err: (line) => process.stderr.write(`${line}\n`),
  };
}

export function registerCoordinatorCommands(program: Command): void {
  program
    .command("coordinator")
    .description("run the reference Coordinator (user API and probes; state only in --state-dir)")
    .option("--state-dir <dir>", "the state directory", DEFAULT_STATE_DIR)
    .option("--api-port <port>", "user API port", String(COORDINATOR_API_PORT))
    .option("--probe-port <port>", "probe port", String(COORDINATOR_PROBE_PORT))
    .option("--commit-api <url>", "the recovery sidecar's local commit API", COMMIT_API_URL)
    .option(
      "--recovery <mode>",
      "how a new pod gets the state: sidecar (coordinator-ha), self (asks its Ready peers itself, the guide's mechanism), floor (none; ready at start)",
      "sidecar",
    )
    .option(
      "--recovery-period <seconds>",
      "self: seconds between rounds",
      String(SELF_RECOVERY_PERIOD_SECONDS),
    )
    .option("--self-recovery-port <port>", "self: the peer endpoint's port", String(SELF_RECOVERY_PORT))
    .option(
      "--pod-selector <selector>",
      "self: the StatefulSet's pod label selector",
      "app.kubernetes.io/name=coordinator",
    )
    .action(async function (
      this: Command,
      flags: {
        stateDir: string;
        apiPort: string;
        probePort: string;
        commitApi: string;
        recovery: string;
        recoveryPeriod: string;
        selfRecoveryPort: string;
        podSelector: string;
      },
    ) {
      const apiPort = port(this, "--api-port", flags.apiPort);
      const probePort = port(this, "--probe-port", flags.probePort);
      const commitUrl = URL.parse(flags.commitApi);
      if (commitUrl?.protocol !== "http:") {
        this.error(`error: --commit-api ${flags.commitApi} is not an http:// URL`, {
          exitCode: ExitCode.CannotAsk,
        });
      }
      if (!["sidecar", "self", "floor"].includes(flags.recovery)) {
        this.error(`error: --recovery ${flags.recovery} is not one of sidecar, self, floor`, {
          exitCode: ExitCode.CannotAsk,
        });
      }
      const period = Number(flags.recoveryPeriod);
      if (!Number.isFinite(period) || period <= 0) {
        this.error(`error: --recovery-period ${flags.recoveryPeriod} is not a positive number of seconds`, {
          exitCode: ExitCode.CannotAsk,
        });
      }
      const selfPort = port(this, "--self-recovery-port", flags.selfRecoveryPort);
      const logger = createLogger("coordinator");
      await serveUntilSignal("coordinator", logger, async () => {
        const { startCoordinator } = await import("./server.ts");
        let recovery: RecoveryMode = { mode: flags.recovery as "sidecar" | "floor" };
        if (flags.recovery === "self") {
          const { inClusterSelfRecovery, selfIdentity } = await import("./self-recovery-kube.ts");
          const self = selfIdentity();
          recovery = {
            mode: "self",
            self,
            port: selfPort,
            periodMs: period * 1000,
            ...inClusterSelfRecovery(self, flags.podSelector, logger),
          };
        }
        return startCoordinator({
          stateDir: flags.stateDir,
          apiPort,
          probePort,
          commitUrl,
          logger,
          recovery,
        });
      });
    });

  program
    .command("set")
    .description(
      "initialize a Coordinator with a manifest (a fresh seed is generated), or update it as a workload owner",
    )
    .requiredOption("-c, --coordinator <url>", "the Coordinator's user API, host:port or URL")
    .requiredOption("-m, --manifest <file>", "the manifest, a JSON object")
    .option(
      "--workload-owner-key <file>",
      "update an initialized Coordinator: an ECDSA P-256/P-384 private key (PEM) whose digest its manifest lists",
    )
    .option("--timeout <seconds>", "how long to wait for an unreachable Coordinator", "180")
    .action(async function (
      this: Command,
      flags: { coordinator: string; manifest: string; timeout: string; workloadOwnerKey?: string },
    ) {
      const seconds = Number(flags.timeout);
      if (!Number.isFinite(seconds) || seconds < 0) {
        this.error(`error: --timeout ${flags.timeout} is not a number of seconds`, {
          exitCode: ExitCode.CannotAsk,
        });
      }
      process.exitCode = await runSet(
        {
          coordinator: flags.coordinator,
          manifestFile: flags.manifest,
          ownerKeyFile: flags.workloadOwnerKey,
          timeoutMs: seconds * 1000,
        },
        terminal(),
      );
    });

  program
    .command("verify")
    .description("show a Coordinator's manifest, history, state digest and public key, and check the key")
    .requiredOption("-c, --coordinator <url>", "the Coordinator's user API, host:port or URL")
    .option("--expect-public-key <pem-or-file>", "fail unless the Coordinator presents this public key")
    .action(async (flags: { coordinator: string; expectPublicKey?: string }) => {
      process.exitCode = await runVerify(
        { coordinator: flags.coordinator, expectPublicKey: flags.expectPublicKey },
        terminal(),
      );
    });
}

function port(cmd: Command, flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    cmd.error(`error: ${flag} ${value} is not a port number`, { exitCode: ExitCode.CannotAsk });
  }
  return n;
}
