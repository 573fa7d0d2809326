#!/usr/bin/env node
// The one CLI of coordinator-ha: every component is a subcommand of it, so that one
// container image runs the webhook, the handler, the sidecar and the reference Coordinator.
// Each subcommand imports its implementation only when it runs: the webhook never loads the
// Kubernetes client, and `--help` answers without loading any server.
import { Command } from "commander";
import { readFileSync } from "node:fs";
import { registerCoordinatorCommands } from "./coordinator/command.ts";
import { registerProbeCommand, registerRecoverCommand } from "./recovery/command.ts";
import { registerWebhookCommand } from "./webhook/command.ts";
import { registerHandlerCommand } from "./handler/command.ts";
import { registerInjectCommand } from "./inject/command.ts";
import { registerStatusCommand } from "./status/command.ts";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  version: string;
};

// package.json says Node >= 22 (the Kubernetes client's HTTP stack needs it); npm scripts and
// npx run the project's own Node 24. A bare `node` may be older: say so before anything fails.
const MIN_NODE_MAJOR = 22;
if (Number(process.versions.node.split(".")[0]) < MIN_NODE_MAJOR) {
  process.stderr.write(
    `warning: coordinator-ha needs Node.js ${MIN_NODE_MAJOR} or later, and this is ${process.version}; ` +
      `run it through npm (npx coordinator-ha …), which uses the project's Node 24\n`,
  );
}

const program = new Command("coordinator-ha")
  .description("Run a stateful Coordinator highly available on Kubernetes")
  .version(pkg.version)
  .showHelpAfterError()
  .enablePositionalOptions();

// Each component registers its own subcommand (one line each).
registerWebhookCommand(program);
registerHandlerCommand(program);
registerCoordinatorCommands(program);
registerRecoverCommand(program);
registerProbeCommand(program);
registerInjectCommand(program);
registerStatusCommand(program);

await program.parseAsync(process.argv);
