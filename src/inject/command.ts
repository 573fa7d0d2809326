// `coordinator-ha inject`: the webhook's mutation applied to manifests, for installs where a
// pod must carry its sidecar before it reaches the cluster (a Contrast runtime policy that
// lists every container, GitOps review). The CLI edge only: flags, files, stdout/stderr.
import type { Command } from "commander";
import { DEFAULT_POD_SELECTOR, DEFAULT_STATE_DIR } from "../names.ts";
import type { InjectFlags } from "./run.ts";

export function registerInjectCommand(program: Command): void {
  program
    .command("inject")
    .description(
      "add the recovery sidecar and the readiness gate to the Coordinator pod templates of manifests, as the webhook would",
    )
    .requiredOption("-f, --filename <file>", "a YAML or JSON manifest, a directory of them, or - for stdin")
    .option("-o, --output <file>", "write the result here (a directory when -f is one) instead of stdout")
    .option("--diff", "print a unified diff of what would change instead of the result")
    .option(
      "--reinject",
      "inject templates that are already injected again, with the settings given (after an upgrade of coordinator-ha)",
    )
    .option("--from-cluster", "take the settings below from the coordinator-ha installed in the cluster")
    .option(
      "--kubeconfig <file>",
      "with --from-cluster: the kubeconfig (default: KUBECONFIG, ~/.kube/config)",
    )
    .option("--sidecar-image <image>", "image of the recovery sidecar")
    .option("--sidecar-image-pull-policy <policy>", "Always, IfNotPresent or Never (default: the cluster's)")
    .option("--handler-url <url>", "https URL of the event handler, handed to every sidecar")
    .option(
      "--handler-ca-file <file>",
      "PEM bundle that sidecars use to verify the handler (default: system trust)",
    )
    .option(
      "--state-dir <dir>",
      `state directory in the sidecar and the app containers (default: ${DEFAULT_STATE_DIR})`,
    )
    .option(
      "--sidecar-probes <kind>",
      "http (default) or exec: how the kubelet probes the sidecar, as the webhook's flag",
    )
    .option(
      "-l, --selector <selector>",
      `the pod templates to inject, by their labels (default: ${Object.entries(DEFAULT_POD_SELECTOR)
        .map(([k, v]) => `${k}=${v}`)
        .join(",")}, or the installed webhook's objectSelector)`,
    )
    .action(async function (this: Command, flags: InjectFlags) {
      const { runInject } = await import("./run.ts");
      process.exitCode = await runInject(flags, {
        stdin: process.stdin,
        out: (text) => process.stdout.write(text),
        err: (line) => process.stderr.write(`${line}\n`),
      });
    });
}
