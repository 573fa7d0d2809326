#!/usr/bin/env node
// The one CLI of coordinator-ha: every component is a subcommand of it, so that one
// container image runs the webhook, the handler, the sidecar and the reference Coordinator.
import { Command } from "commander";
import { readFileSync } from "node:fs";
import { registerCoordinatorCommands } from "./coordinator/command.ts";
import { registerRecoverCommand } from "./recovery/command.ts";
import { registerWebhookCommand } from "./webhook/command.ts";
import { registerHandlerCommand } from "./handler/command.ts";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  version: string;
};

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

await program.parseAsync(process.argv);
