// Entry point of `npm run certs`. Prints the caBundle alone on stdout, so that
// `CA_BUNDLE=$(npm run -s certs -- …)` works; everything for humans goes to stderr.
import { Command } from "commander";
import {
  CertsOptionsError,
  DEFAULT_OUT_DIR,
  parseCertsOptions,
  summary,
  writeCerts,
  type CertsFlags,
} from "./certs.ts";

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

const program = new Command("npm run certs --")
  .description(
    "Write a CA and a serving certificate for in-cluster Services (ca.crt, ca.key, tls.crt, " +
      "tls.key), and print the CA as a base64 caBundle.",
  )
  .option("--service <name>", "Service name to cover (repeatable)", collect)
  .option("--namespace <ns>", "namespace of the Services")
  .option("--ip <address>", "IP address to cover as well, for local runs (repeatable)", collect)
  .option("--out <dir>", "output directory; a CA already there is reused", DEFAULT_OUT_DIR)
  .option("--days <n>", "validity of the serving certificate in days", "365")
  .option("--ca-days <n>", "validity of a new CA in days", "3650")
  .option("--cluster-domain <domain>", "the cluster's DNS domain", "cluster.local")
  .option("--new-ca", "replace a CA found in --out instead of reusing it")
  .showHelpAfterError("(run with --help for usage)")
  .addHelpText(
    "after",
    "\nExample, for the coordinator-ha chart released as coordinator-ha in namespace coordinator-ha:\n" +
      "  npm run certs -- --service coordinator-ha-webhook --service coordinator-ha-handler --namespace coordinator-ha",
  )
  .action(async (flags: CertsFlags) => {
    let opts;
    try {
      opts = parseCertsOptions(flags);
    } catch (err) {
      if (err instanceof CertsOptionsError)
        program.error(`error: ${err.message.replaceAll("\n", "\nerror: ")}`);
      throw err;
    }
    try {
      const result = await writeCerts(opts);
      process.stderr.write(summary(opts, result) + "\n");
      process.stdout.write(result.caBundle + "\n");
    } catch (err) {
      process.stderr.write(`error: ${(err as Error).message}\n`);
      process.exitCode = 1;
    }
  });

await program.parseAsync(process.argv);
