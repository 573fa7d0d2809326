// Runs the Helm and kubectl that test/cluster/build.sh builds, and parses what they render.
// Shared by the chart tests (test/charts) and the live-cluster chart tests (test/cluster).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");
export const CHARTS = {
  coordinatorHa: join(REPO_ROOT, "charts/coordinator-ha"),
  coordinator: join(REPO_ROOT, "charts/coordinator"),
} as const;

export const PACKAGE_VERSION = (
  JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }
).version;

/** Where build.sh caches what it builds and fetches. */
function cacheRoot(): string {
  return join(process.env["XDG_CACHE_HOME"] || join(homedir(), ".cache"), "coordinator-ha");
}

/** The directory where build.sh caches the binaries of the pinned Kubernetes release. */
export function binDir(): string {
  const gomod = readFileSync(join(REPO_ROOT, "test/cluster/k8s/go.mod"), "utf8");
  const version = /^\s*k8s\.io\/kubernetes\s+(v\S+)/m.exec(gomod)?.[1];
  if (!version) throw new Error("test/cluster/k8s/go.mod does not require k8s.io/kubernetes");
  return join(cacheRoot(), "k8s", version);
}

/** The CustomResourceDefinition files of test/cluster/crds.txt, as build.sh caches them. */
export function crdFiles(): string[] {
  const list = readFileSync(join(REPO_ROOT, "test/cluster/crds.txt"), "utf8");
  const files = list
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter(([source]) => source && !source.startsWith("#"))
    .flatMap(([source, ...paths]) =>
      paths.map((path) => join(cacheRoot(), "crds", source!.split("/").pop()!, path.split("/").pop()!)),
    );
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length > 0) {
    throw new Error(`${missing.join(", ")} missing: fetch them with \`bash test/cluster/build.sh\``);
  }
  return files;
}

/** The path of helm or kubectl: $HELM / $KUBECTL, else build.sh's cache. */
export function tool(name: "helm" | "kubectl"): string {
  const override = process.env[name.toUpperCase()];
  if (override) return override;
  const path = join(binDir(), name);
  if (!existsSync(path)) {
    throw new Error(
      `${name} is not at ${path}: build it with \`bash test/cluster/build.sh\` (or set $${name.toUpperCase()})`,
    );
  }
  return path;
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string>;
  /** Written to the command's stdin. */
  input?: string;
}

export function run(name: "helm" | "kubectl", args: string[], opts: RunOptions = {}): RunResult {
  const r = spawnSync(tool(name), args, {
    encoding: "utf8",
    env: { ...process.env, ...opts.env },
    input: opts.input ?? "",
    maxBuffer: 64 * 1024 * 1024,
    timeout: 300_000,
  });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Like run, but throws with the command's stderr when it fails. */
export function runOk(name: "helm" | "kubectl", args: string[], opts: RunOptions = {}): string {
  const r = run(name, args, opts);
  if (r.status !== 0) throw new Error(`${name} ${args.join(" ")} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

/** Writes values to a temporary file and calls fn with `-f FILE`. */
export function withValues<T>(values: object, fn: (args: string[]) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "cha-values-"));
  try {
    const file = join(dir, "values.json");
    writeFileSync(file, JSON.stringify(values));
    return fn(["-f", file]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// Rendered objects are read by path in the tests; `any` keeps those reads short.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Field = any;
export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; [k: string]: Field };
  [k: string]: Field;
};

export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]!.message}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

export interface TemplateOptions {
  release?: string;
  namespace?: string;
  values?: object;
  extraArgs?: string[];
}

/** `helm template`: the rendered objects, or the error when rendering fails. */
export function template(chart: string, opts: TemplateOptions = {}): RunResult {
  return withValues(opts.values ?? {}, (valueArgs) =>
    run("helm", [
      "template",
      opts.release ?? "cha",
      chart,
      "--namespace",
      opts.namespace ?? "cha-system",
      ...valueArgs,
      ...(opts.extraArgs ?? []),
    ]),
  );
}

export function render(chart: string, opts: TemplateOptions = {}): K8sObject[] {
  const r = template(chart, opts);
  if (r.status !== 0) throw new Error(`helm template failed:\n${r.stderr}`);
  return parseManifests(r.stdout);
}

export function find(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) {
    throw new Error(`expected one ${kind}${name ? ` ${name}` : ""}, found ${found.length}`);
  }
  return found[0]!;
}

export function kinds(objects: K8sObject[]): string[] {
  return objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
}

type Requirement = { key: string; operator: string; values?: string[] };
type Selector = { matchLabels?: Record<string, string>; matchExpressions?: Requirement[] };

/** Evaluates a Kubernetes label selector as the apiserver does. */
export function selects(selector: Selector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const r of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, r.key);
    const inValues = has && (r.values ?? []).includes(labels[r.key]!);
    const ok =
      r.operator === "In"
        ? inValues
        : r.operator === "NotIn"
          ? !inValues
          : r.operator === "Exists"
            ? has
            : r.operator === "DoesNotExist"
              ? !has
              : false;
    if (!ok) return false;
  }
  return true;
}
