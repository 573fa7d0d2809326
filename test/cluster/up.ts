// npm run cluster:up [-- --no-nodes]
// Starts the local cluster (or finds it running) and prints, on stdout, the shell lines that
// point kubectl at it. Progress goes to stderr.
import { parseArgs } from "node:util";
import { up } from "./launcher/cluster.ts";

const usage = "usage: npm run cluster:up [-- --no-nodes]";
let nodes = true;
try {
  const { values } = parseArgs({ options: { "no-nodes": { type: "boolean" }, help: { type: "boolean" } } });
  if (values.help) {
    console.error(usage);
    process.exit(0);
  }
  nodes = !values["no-nodes"];
} catch (err) {
  console.error(`error: ${(err as Error).message}\n${usage}`);
  process.exit(2);
}

const log = (msg: string) => console.error(`[cluster] ${msg}`);
const controller = new AbortController();
// Our components run in their own sessions, so a Ctrl-C reaches only us: stop what we started.
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    log(`${sig}: aborting`);
    controller.abort(new Error(`interrupted by ${sig}`));
  });
}

const started = Date.now();
try {
  const result = await up({ nodes, log, signal: controller.signal });
  log(
    result.reused
      ? "the cluster was already up"
      : `the cluster is up (${((Date.now() - started) / 1000).toFixed(0)}s). Stop it with: npm run cluster:down`,
  );
  console.log(`export KUBECONFIG=${result.kubeconfig}`);
  console.log(`export PATH=${result.binDir}:$PATH`);
} catch (err) {
  const reason = controller.signal.aborted ? (controller.signal.reason as Error) : (err as Error);
  console.error(`error: ${reason.message}`);
  process.exit(1);
}
