// `coordinator-ha inject` at run time: settings from the flags (or the installed webhook),
// manifests from files, a directory or stdin, and the result to stdout, a file, a directory,
// or as a diff. Exit codes: 0 done; 1 a template that the webhook would refuse (nothing is
// written then, so that no half-injected set of manifests is applied); 2 bad flags or input.
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, posix, relative } from "node:path";
import type { Readable } from "node:stream";
import { ConfigError, Problems } from "../config/problems.ts";
import { parseLabelSelector } from "../kube/label-selector.ts";
import { DEFAULT_POD_SELECTOR, DEFAULT_STATE_DIR } from "../names.ts";
import { handlerUrlProblem, PULL_POLICIES } from "../webhook/config.ts";
import { readBundle } from "../webhook/handler-ca.ts";
import {
  SIDECAR_PROBES,
  type InjectionParams,
  type PullPolicy,
  type SidecarProbes,
} from "../webhook/sidecar.ts";
import type { InstalledWebhook } from "./from-cluster.ts";
import { injectManifest, ManifestError, type InjectOptions, type TemplateReport } from "./manifest.ts";
import { unifiedDiff } from "./unified-diff.ts";

export interface InjectFlags {
  filename: string;
  output?: string;
  diff?: boolean;
  fromCluster?: boolean;
  kubeconfig?: string;
  sidecarImage?: string;
  sidecarImagePullPolicy?: string;
  handlerUrl?: string;
  handlerCaFile?: string;
  stateDir?: string;
  sidecarProbes?: string;
  selector?: string;
  reinject?: boolean;
}

export interface Terminal {
  stdin: Readable;
  out(text: string): void;
  err(line: string): void;
}

export const InjectExit = { Ok: 0, Refused: 1, BadInput: 2 } as const;

/** Reads the installed webhook's settings; replaced in tests. */
export type ClusterReader = (kubeconfig?: string) => Promise<InstalledWebhook>;

export async function runInject(
  flags: InjectFlags,
  term: Terminal,
  readCluster: ClusterReader = readInstalledWebhook,
): Promise<number> {
  let options: InjectOptions;
  try {
    const installed = flags.fromCluster ? await readCluster(flags.kubeconfig) : undefined;
    if (installed) term.err(`settings from the installed webhook: ${installed.source}`);
    options = injectOptions(flags, installed);
  } catch (err) {
    term.err(`error: ${(err as Error).message}`);
    return InjectExit.BadInput;
  }

  let inputs: Input[];
  try {
    inputs = await readInputs(flags.filename, term.stdin);
  } catch (err) {
    term.err(`error: ${(err as Error).message}`);
    return InjectExit.BadInput;
  }

  const results: { input: Input; text: string }[] = [];
  let refused = false;
  for (const input of inputs) {
    let result;
    try {
      result = injectManifest(input.text, options);
    } catch (err) {
      if (!(err instanceof ManifestError)) throw err;
      term.err(`error: ${input.name}: ${err.message}`);
      return InjectExit.BadInput;
    }
    for (const report of result.reports) term.err(`${input.name}: ${describe(report)}`);
    refused ||= result.reports.some((r) => r.outcome === "refused");
    results.push({ input, text: result.text });
  }
  if (refused) {
    term.err("nothing written: fix the refused templates (or opt them out) and run again");
    return InjectExit.Refused;
  }

  if (flags.diff) {
    for (const { input, text } of results) term.out(unifiedDiff(input.text, text, input.name, input.name));
  } else if (flags.output === undefined) {
    term.out(results.map((r) => r.text).join("---\n"));
  } else if (inputs.length === 1 && !inputs[0]!.relative) {
    writeFileSync(flags.output, results[0]!.text);
  } else {
    for (const { input, text } of results) {
      const file = join(flags.output, input.relative!);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, text);
    }
  }
  return InjectExit.Ok;
}

function describe(report: TemplateReport): string {
  if (report.outcome === "injected") return `${report.owner}: injected`;
  return `${report.owner}: ${report.outcome} (${report.reason}): ${report.message}`;
}

/** The injection settings: flags first, then the installed webhook's, then the defaults. */
export function injectOptions(flags: InjectFlags, installed?: InstalledWebhook): InjectOptions {
  const problems = new Problems();
  const from = installed?.params;
  const image = flags.sidecarImage ?? from?.image;
  if (!image) problems.add("--sidecar-image is required (or --from-cluster)");
  else if (/\s/.test(image)) problems.add(`--sidecar-image ${JSON.stringify(image)} contains whitespace`);

  const pullPolicy = flags.sidecarImagePullPolicy ?? from?.imagePullPolicy;
  if (pullPolicy !== undefined && !PULL_POLICIES.includes(pullPolicy as PullPolicy)) {
    problems.add(
      `--sidecar-image-pull-policy ${JSON.stringify(pullPolicy)} is not one of ${PULL_POLICIES.join(", ")}`,
    );
  }

  const handlerUrl = flags.handlerUrl ?? from?.handlerUrl;
  if (!handlerUrl) problems.add("--handler-url is required (or --from-cluster)");
  else {
    const problem = handlerUrlProblem(handlerUrl);
    if (problem) problems.add(`--handler-url ${JSON.stringify(handlerUrl)} ${problem}`);
  }

  let handlerCa = from?.handlerCa ?? "";
  if (flags.handlerCaFile !== undefined) {
    try {
      handlerCa = readBundle(flags.handlerCaFile);
    } catch (err) {
      problems.add((err as Error).message);
    }
  }

  const stateDirText = flags.stateDir ?? from?.stateDir ?? DEFAULT_STATE_DIR;
  const stateDir = posix.normalize(stateDirText).replace(/(.)\/$/, "$1");
  if (!posix.isAbsolute(stateDirText) || stateDir === "/") {
    problems.add(`--state-dir ${JSON.stringify(stateDirText)} is not an absolute directory path below /`);
  }

  const probes = flags.sidecarProbes ?? from?.probes ?? "http";
  if (!SIDECAR_PROBES.includes(probes as SidecarProbes)) {
    problems.add(`--sidecar-probes ${JSON.stringify(probes)} is not one of ${SIDECAR_PROBES.join(", ")}`);
  }

  const selectorText =
    flags.selector ??
    installed?.selector ??
    Object.entries(DEFAULT_POD_SELECTOR)
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
  let selector;
  try {
    selector = parseLabelSelector(selectorText);
  } catch (err) {
    problems.add(`--selector: ${(err as Error).message}`);
  }
  problems.throwIfAny();

  const params: InjectionParams = { image: image!, handlerUrl: handlerUrl!, handlerCa, stateDir };
  // Only when not the default, as the webhook's params: the same pod either way.
  if (probes !== "http") params.probes = probes as SidecarProbes;
  if (pullPolicy !== undefined) params.imagePullPolicy = pullPolicy as PullPolicy;
  return { params, selector: selector!, ...(flags.reinject ? { reinject: true } : {}) };
}

interface Input {
  /** For messages and diffs: the path as given, or "stdin". */
  name: string;
  /** Below a directory given with -f: the path inside it. */
  relative?: string;
  text: string;
}

const MANIFEST = /\.(ya?ml|json)$/i;

async function readInputs(filename: string, stdin: Readable): Promise<Input[]> {
  if (filename === "-") {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(Buffer.from(chunk as Buffer));
    return [{ name: "stdin", text: Buffer.concat(chunks).toString("utf8") }];
  }
  let isDirectory: boolean;
  try {
    isDirectory = statSync(filename).isDirectory();
  } catch (err) {
    throw new ConfigError(`cannot read ${filename}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (!isDirectory) return [{ name: filename, text: readFileSync(filename, "utf8") }];
  const files = (readdirSync(filename, { recursive: true }) as string[])
    .filter((f) => MANIFEST.test(f) && statSync(join(filename, f)).isFile())
    .sort();
  if (files.length === 0) throw new ConfigError(`${filename} holds no .yaml, .yml or .json file`);
  return files.map((f) => ({
    name: join(filename, f),
    relative: relative(filename, join(filename, f)),
    text: readFileSync(join(filename, f), "utf8"),
  }));
}

async function readInstalledWebhook(kubeconfig?: string): Promise<InstalledWebhook> {
  const [{ AdmissionregistrationV1Api, AppsV1Api }, { loadKubeConfig }, { findWebhook, installedWebhook }] =
    await Promise.all([
      import("@kubernetes/client-node"),
      import("../kube/client.ts"),
      import("./from-cluster.ts"),
    ]);
  const kc = loadKubeConfig(kubeconfig);
  const configurations = await kc
    .makeApiClient(AdmissionregistrationV1Api)
    .listMutatingWebhookConfiguration();
  const { configuration, service } = findWebhook(configurations.items);
  // The chart names the webhook's Deployment as its Service.
  const deployment = await kc.makeApiClient(AppsV1Api).readNamespacedDeployment(service);
  return installedWebhook(configuration, deployment);
}
