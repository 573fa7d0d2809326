// `coordinator-ha status [-n NS | -A] [STATEFULSET]`, also `kubectl coordinator-ha status`:
// one look at every Coordinator StatefulSet (exit codes: run.ts).
import type { Command } from "commander";

interface StatusFlags {
  namespace?: string;
  allNamespaces?: boolean;
  output: string;
  kubeconfig?: string;
  context?: string;
}

export function registerStatusCommand(program: Command): void {
  program
    .command("status")
    .description(
      "show each Coordinator StatefulSet: its pods, their gate, the state they hold and where it came from; exit 1 when a set is unhealthy",
    )
    .argument("[statefulset]", "only this StatefulSet")
    .option("-n, --namespace <namespace>", "the namespace (default: the kubeconfig context's)")
    .option("-A, --all-namespaces", "every namespace")
    .option("-o, --output <format>", "table or json", "table")
    .option("--kubeconfig <file>", "the kubeconfig (default: KUBECONFIG, ~/.kube/config)")
    .option("--context <name>", "the kubeconfig context to use")
    .action(async function (this: Command, statefulSet: string | undefined, flags: StatusFlags) {
      if (flags.output !== "table" && flags.output !== "json") {
        this.error(`error: -o ${JSON.stringify(flags.output)} is not one of table, json`, { exitCode: 2 });
      }
      if (flags.allNamespaces && flags.namespace) {
        this.error("error: give -n NAMESPACE or -A, not both", { exitCode: 2 });
      }
      const { runStatus } = await import("./run.ts");
      process.exitCode = await runStatus(
        { ...flags, output: flags.output as "table" | "json", statefulSet },
        { out: (text) => process.stdout.write(text), err: (line) => process.stderr.write(`${line}\n`) },
      );
    });
}
