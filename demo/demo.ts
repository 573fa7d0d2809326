// npm run demo [-- --keep] [-- --image REF]
//
// Plays the operator guide's workflow and shows every command with its real output: it builds
// what is missing, starts the local cluster (or uses the one that runs), installs coordinator-ha
// and the reference Coordinator with helm, initializes coordinator-0 with `coordinator-ha set`,
// scales to 3, shows `kubectl describe` of a pod that recovered from a peer, and rolls the
// StatefulSet while a client keeps calling the Coordinator. Then it removes what it installed
// and stops the cluster if it started it. With --image, the same runs on the cluster that
// KUBECONFIG points at.
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { REPO_ROOT, tool } from "../test/charts/helm.ts";
import { down, requireRoot, up } from "../test/cluster/launcher/cluster.ts";
import {
  UserFiles,
  parseState,
  verify,
  type CoordinatorState,
} from "../test/cluster/workflow/coordinator.ts";
import { formatReport, startProbe, type Probe } from "../test/cluster/workflow/probe.ts";
import { CLI, Shell, type Echo } from "../test/cluster/workflow/shell.ts";
import { portForward, type PortForward } from "./port-forward.ts";
import { parseImage, type ImageRef } from "./image.ts";

const USAGE = `usage: npm run demo [-- --keep] [-- --image REF]

  --keep        leave the cluster and both releases running, and print how to reach them
  --image REF   run on the cluster that KUBECONFIG points at (not the local one), with the
                coordinator-ha image REF (repository:tag or repository@sha256:...)`;

const SYSTEM_NAMESPACE = "coordinator-ha";
const GET_PODS = "kubectl get pods -l app.kubernetes.io/name=coordinator";
const REPLICAS = 3;

// ---- output -----------------------------------------------------------------------------

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);
const say = (line = "") => process.stdout.write(`${line}\n`);

/** Commands as the guide shows them: `$ command`, then its output as it comes. */
const terminal: Echo = {
  command: (line) => say(bold(`$ ${line}`)),
  output: (chunk) => process.stdout.write(chunk),
  done: (r) => {
    // jsonpath output has no final newline.
    if (r.output && !r.output.endsWith("\n")) say();
    say(dim(`  (${seconds(r.ms)}${r.code ? `, exit code ${r.code}` : ""})`));
  },
};

function seconds(ms: number): string {
  const s = ms / 1000;
  return s < 60 ? `${s.toFixed(1)}s` : `${Math.floor(s / 60)}m ${Math.round(s % 60)}s`;
}

const interrupt = new AbortController();

const timings: [string, number][] = [];
async function phase<T>(title: string, fn: () => Promise<T>, { always = false } = {}): Promise<T> {
  if (!always) interrupt.signal.throwIfAborted();
  say();
  say(bold(`== ${title}`));
  const started = Date.now();
  try {
    return await fn();
  } finally {
    timings.push([title, Date.now() - started]);
  }
}

// ---- options ----------------------------------------------------------------------------

interface Options {
  keep: boolean;
  /** Set: a real cluster from KUBECONFIG; unset: the local cluster. */
  image?: ImageRef;
  kubeconfig?: string;
}

function options(): Options {
  let values: { keep?: boolean; image?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        keep: { type: "boolean" },
        image: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    fail(`${(err as Error).message}\n${USAGE}`, 2);
  }
  if (values.help) {
    say(USAGE);
    process.exit(0);
  }
  if (values.image === undefined) return { keep: values.keep ?? false };
  const kubeconfig = process.env["KUBECONFIG"];
  if (!kubeconfig) {
    fail(
      "--image runs the demo on the cluster that KUBECONFIG points at: set KUBECONFIG (and check its current context).",
      2,
    );
  }
  try {
    return { keep: values.keep ?? false, image: parseImage(values.image), kubeconfig };
  } catch (err) {
    fail(`--image ${values.image}: ${(err as Error).message}`, 2);
  }
}

function fail(message: string, code = 1): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(code);
}

// ---- build ------------------------------------------------------------------------------

/** The newest modification time under dir, of files with one of the extensions. */
function newest(dir: string, ext: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith(ext)) {
      latest = Math.max(latest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
    }
  }
  return latest;
}

async function buildCli(): Promise<void> {
  const cli = join(REPO_ROOT, "dist/cli.js");
  if (existsSync(cli) && statSync(cli).mtimeMs >= newest(join(REPO_ROOT, "src"), ".ts")) {
    say("dist/ is up to date with src/ (the CLI that the local cluster runs as the coordinator-ha image)");
    return;
  }
  say(bold("$ npm run build"));
  const tsc = spawn(join(REPO_ROOT, "node_modules/.bin/tsc"), ["-p", "tsconfig.build.json"], {
    cwd: REPO_ROOT,
    stdio: "inherit",
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    tsc.on("error", reject);
    tsc.on("close", resolve);
  });
  if (code !== 0) throw new Error(`npm run build failed (exit code ${code})`);
}

// ---- where the demo runs ----------------------------------------------------------------

/** How the user's CLI reaches the Coordinator: Service and pod addresses, or port-forwards. */
interface Reach {
  service(name: string): Promise<string>;
  pod(name: string): Promise<string>;
  /** Ends what the addresses handed out so far needed. */
  close(): void;
}

/** On the local cluster the host reaches ClusterIPs (a node's kube-proxy rules) and pod IPs. */
function localReach(sh: Shell): Reach {
  const jsonpath = async (line: string) => (await sh.run(line)).stdout.trim();
  return {
    service: async (name) =>
      `${await jsonpath(`kubectl get service ${name} -o jsonpath='{.spec.clusterIP}'`)}:1313`,
    pod: async (name) => `${await jsonpath(`kubectl get pod ${name} -o jsonpath='{.status.podIP}'`)}:1313`,
    close: () => undefined,
  };
}

/** Elsewhere, through `kubectl port-forward`, as docs/helm.md does it. */
function forwardedReach(kubectl: string, env: Record<string, string>): Reach {
  const forwards: PortForward[] = [];
  const forward = async (target: string) => {
    const f = await portForward(kubectl, target, 1313, env, terminal);
    forwards.push(f);
    return f.address;
  };
  return {
    service: (name) => forward(`service/${name}`),
    pod: (name) => forward(`pod/${name}`),
    close: () => forwards.splice(0).forEach((f) => f.stop()),
  };
}

// ---- the workflow -----------------------------------------------------------------------

async function main(): Promise<void> {
  const opts = options();
  const demoStarted = Date.now();
  const files = new UserFiles();
  let startedCluster = false;
  /** The commands that undo what the demo installed, in the order of what they undo. */
  const installed: string[] = [];
  let sh: Shell | undefined;
  let kubeconfig = opts.kubeconfig;
  let binDir: string | undefined;
  let reach: Reach | undefined;

  // Ctrl-C: the running command gets the signal from the terminal too, and the cluster's
  // start is aborted; then the demo cleans up. A second Ctrl-C leaves at once.
  process.on("SIGINT", () => {
    if (interrupt.signal.aborted) process.exit(130);
    interrupt.abort(new Error("interrupted"));
    say("\ninterrupted: cleaning up (Ctrl-C again to leave everything as it is)");
  });

  try {
    // Before minutes of building, not after.
    if (!opts.image) requireRoot();
    await phase("Build what is missing", async () => {
      await buildCli();
      if (!opts.image) {
        // cluster:up builds the Kubernetes binaries (test/cluster/build.sh) when it starts the
        // cluster; a running cluster has them already.
        say("The Kubernetes binaries and helm: built by test/cluster/build.sh when the cluster starts.");
      }
    });

    if (!opts.image) {
      await phase("Start the local cluster (npm run cluster:up)", async () => {
        const log = (msg: string) => say(dim(`[cluster] ${msg}`));
        const result = await up({ log, signal: interrupt.signal });
        startedCluster = !result.reused;
        kubeconfig = result.kubeconfig;
        binDir = result.binDir;
        if (!startedCluster)
          say("A local cluster was already running: the demo uses it and leaves it running.");
      });
    }

    const programs = {
      kubectl: [binDir ? join(binDir, "kubectl") : (onPath("kubectl") ?? tool("kubectl"))],
      helm: [binDir ? join(binDir, "helm") : (onPath("helm") ?? tool("helm"))],
      "coordinator-ha": CLI,
    };
    const env = { KUBECONFIG: kubeconfig! };
    sh = new Shell({ programs, env, echo: terminal });
    reach = opts.image ? forwardedReach(programs.kubectl[0]!, env) : localReach(sh);

    if (opts.image) {
      await phase("The cluster that KUBECONFIG points at", async () => {
        await sh!.run("kubectl config current-context");
        await sh!.run("kubectl version");
      });
    }

    await phase("Install coordinator-ha and the reference Coordinator with helm", async () => {
      await install(sh!, opts, installed);
    });

    let state: CoordinatorState;
    await phase("coordinator-0 waits for its user; `coordinator-ha set` initializes it", async () => {
      // Until its app runs and the handler has told it what it waits for (image pulls may take a while).
      await until(
        sh!,
        `kubectl get pod coordinator-0 -o jsonpath='{.status.conditions[?(@.type=="coordinator-ha.io/recovered")].reason}{" "}{.status.containerStatuses[*].started}'`,
        (out) => out.startsWith("AwaitingState ") && !out.includes("false"),
        300_000,
      );
      await sh!.run(GET_PODS);
      await sh!.run(
        `kubectl get pod coordinator-0 -o jsonpath='{.status.conditions[?(@.type=="coordinator-ha.io/recovered")].message}'`,
      );
      say();
      const manifest = JSON.stringify({ policy: "demo" });
      files.write("manifest.json", `${manifest}\n`);
      say(dim(`The user's manifest.json: ${manifest}`));
      const address = await reach!.service("coordinator");
      const set = await sh!.run(`coordinator-ha set -c ${address} -m manifest.json`, { cwd: files.dir });
      reach!.close();
      state = parseState(set.stdout);
      files.write("public-key.pem", state.publicKey);
      await sh!.run("kubectl wait pod/coordinator-0 --for=condition=Ready --timeout=1m");
      await sh!.run(GET_PODS);
    });

    await phase(
      `Scale to ${REPLICAS}: each new pod recovers from a peer, then the next one starts`,
      async () => {
        await sh!.run(`kubectl scale statefulset/coordinator --replicas ${REPLICAS}`);
        await sh!.run(
          `kubectl wait statefulset/coordinator --for=jsonpath='{.status.readyReplicas}=${REPLICAS}' --timeout=2m`,
          { timeoutMs: 150_000 },
        );
        await sh!.run(GET_PODS);
        await verifyAll(sh!, reach!, files, state!);
        // One look at the set: every pod, its gate, the state it holds, where it came from.
        await sh!.run("coordinator-ha status");
      },
    );

    await phase("A pod that recovered from a peer", async () => {
      await sh!.run("kubectl describe pod coordinator-1");
    });

    await phase("kubectl rollout restart: the Coordinator stays available", async () => {
      // The probe reaches ClusterIPs and pod IPs from this machine: on the local cluster only.
      if (opts.image)
        say(dim("(The availability probe calls ClusterIPs and pod IPs: it runs on the local cluster only.)"));
      const probe = opts.image ? undefined : await startLocalProbe(kubeconfig!, reach!, state!);
      try {
        await sh!.run("kubectl rollout restart statefulset/coordinator");
        await sh!.run("kubectl rollout status statefulset/coordinator -w", { timeoutMs: 300_000 });
      } finally {
        if (probe) {
          const report = await probe.stop();
          say();
          say(bold(`Availability during the rollout: ${formatReport(report)}`));
          for (const f of report.failures.slice(0, 10))
            say(`  failed: ${f.at} ${f.via} ${f.target}: ${f.error}`);
          if (report.failures.length > 0 || report.minReadyEndpoints < 1) {
            say("✘ The Coordinator was not available throughout the rollout.");
            process.exitCode = 1;
          }
        }
      }
      await sh!.run(GET_PODS);
      await verifyAll(sh!, reach!, files, state!);
    });
  } catch (err) {
    say();
    say(`error: ${(err as Error).message}`);
    process.exitCode = 1;
  } finally {
    reach?.close();
    if (installed.length > 0 || startedCluster || opts.keep) {
      await phase(
        opts.keep ? "Leave everything running (--keep)" : "Tear down",
        async () => {
          if (opts.keep) return;
          for (const line of installed.reverse()) await sh?.run(line, { check: false });
          if (startedCluster) {
            say(bold("$ npm run cluster:down"));
            await down((msg) => say(dim(`[cluster] ${msg}`)));
          }
        },
        { always: true },
      ).catch((err: Error) => {
        say(`error while tearing down: ${err.message}`);
        process.exitCode = 1;
      });
    }
    files.remove();
    say();
    say(bold("Timings"));
    for (const [title, ms] of timings) say(`  ${seconds(ms).padStart(8)}  ${title}`);
    say(bold(`  ${seconds(Date.now() - demoStarted).padStart(8)}  total`));
    if (opts.keep && kubeconfig) {
      say();
      say("The cluster keeps running. Point kubectl at it with:");
      say(`  export KUBECONFIG=${kubeconfig}`);
      if (binDir) say(`  export PATH=${binDir}:$PATH`);
      if (!opts.image) say("Stop it with: npm run cluster:down");
    }
  }
}

/** Installs both charts, and adds to `undo` the commands that remove each thing installed. */
async function install(sh: Shell, opts: Options, undo: string[]): Promise<void> {
  const images = opts.image ? imageValues(opts.image) : "";
  const uninstall = [
    `helm uninstall coordinator-ha --namespace ${SYSTEM_NAMESPACE} --wait`,
    "helm uninstall coordinator --wait",
  ];
  const existing = [
    (
      await sh.run(`helm status coordinator-ha --namespace ${SYSTEM_NAMESPACE}`, {
        check: false,
        quiet: true,
      })
    ).code === 0,
    (await sh.run("helm status coordinator", { check: false, quiet: true })).code === 0,
  ];
  if (existing.some(Boolean)) {
    if (opts.image) {
      throw new Error(
        "this cluster already has the Helm releases that the demo installs. If they are an earlier " +
          `demo's, remove them first: ${uninstall.filter((_, i) => existing[i]).join("; ")}`,
      );
    }
    say("The local cluster still has the releases of an earlier demo (--keep): removing them first.");
    for (const i of [1, 0]) if (existing[i]) await sh.run(uninstall[i]!);
  }
  // The namespace goes at the end too, unless it was there before on a cluster not the demo's own.
  const namespaceExisted =
    (await sh.run(`kubectl get namespace ${SYSTEM_NAMESPACE}`, { check: false, quiet: true })).code === 0;
  if (!opts.image || !namespaceExisted) undo.push(`kubectl delete namespace ${SYSTEM_NAMESPACE}`);
  await sh.run(
    `helm install coordinator-ha charts/coordinator-ha --namespace ${SYSTEM_NAMESPACE} --create-namespace --wait --timeout 3m${images}`,
    { timeoutMs: 200_000 },
  );
  undo.push(uninstall[0]!);
  // Not --wait: coordinator-0 becomes Ready only once its user has initialized it.
  await sh.run(`helm install coordinator charts/coordinator${images}`);
  undo.push(uninstall[1]!);
}

function imageValues(image: ImageRef): string {
  const pin = image.digest
    ? ` --set image.digest=${image.digest}`
    : image.tag
      ? ` --set image.tag=${image.tag}`
      : "";
  return ` --set image.repository=${image.repository}${pin}`;
}

/** Repeats a command quietly until its output satisfies ok. */
async function until(
  sh: Shell,
  line: string,
  ok: (stdout: string) => boolean,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await sh.run(line, { check: false, quiet: true });
    if (r.code === 0 && ok(r.stdout.trim())) return;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs / 1000}s: \`${line}\` says: ${r.output.trim()}`);
    await sleep(1000);
  }
}

async function verifyAll(sh: Shell, reach: Reach, files: UserFiles, state: CoordinatorState): Promise<void> {
  say();
  say(dim("Every replica holds the same state: the same digest and public key."));
  for (let i = 0; i < REPLICAS; i++) {
    const address = await reach.pod(`coordinator-${i}`);
    const { state: got } = await verify(sh, address, { cwd: files.dir, expectKeyFile: "public-key.pem" });
    reach.close();
    if (got?.digest !== state.digest) throw new Error(`coordinator-${i} holds another state: ${got?.digest}`);
  }
}

async function startLocalProbe(kubeconfig: string, reach: Reach, state: CoordinatorState): Promise<Probe> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const namespace = kc.getContextObject(kc.currentContext)?.namespace ?? "default";
  say(
    dim(
      "A client keeps calling the Coordinator through the coordinator-ready Service and at its ready endpoints:",
    ),
  );
  return startProbe({
    kc,
    namespace,
    service: "coordinator-ready",
    serviceAddress: await reach.service("coordinator-ready"),
    publicKey: state.publicKey,
  });
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env["PATH"] ?? "").split(":")) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

await main();
