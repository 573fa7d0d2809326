// `coordinator-ha inject` as a user runs it: real files, a directory, stdin, -o, --diff, the
// reasons on stderr and the exit codes; --from-cluster with a stand-in for the cluster read.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { parse } from "yaml";
import { afterAll, describe, expect, it } from "vitest";
import { InjectExit, runInject, type InjectFlags } from "../../../src/inject/run.ts";
import { unifiedDiff } from "../../../src/inject/unified-diff.ts";
import { SIDECAR_NAME } from "../../../src/names.ts";

const dir = mkdtempSync(join(tmpdir(), "cha-inject-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const coordinator = `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: coordinator
spec:
  template:
    metadata:
      labels:
        app.kubernetes.io/name: coordinator # selected
    spec:
      containers:
        - name: coordinator
          image: coordinator:1
`;
const web = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    metadata:
      labels: {app: web}
    spec:
      containers: [{name: web, image: nginx}]
`;
const required = { sidecarImage: "coordinator-ha:1", handlerUrl: "https://handler.cha.svc" };

async function inject(flags: Partial<InjectFlags>, stdin = "") {
  let out = "";
  const err: string[] = [];
  const code = await runInject({ filename: "-", ...required, ...flags } as InjectFlags, {
    stdin: Readable.from([Buffer.from(stdin)]),
    out: (text) => (out += text),
    err: (line) => err.push(line),
  });
  return { code, out, err };
}

const sidecarOf = (text: string) =>
  (parse(text) as { spec: { template: { spec: { initContainers: { name: string }[] } } } }).spec.template.spec
    .initContainers[0]!;

describe("coordinator-ha inject", () => {
  it("reads stdin and writes stdout, with a line per template on stderr", async () => {
    const r = await inject({}, `${coordinator}---\n${web}`);
    expect(r.code).toBe(InjectExit.Ok);
    expect(sidecarOf(r.out.split(/^---\n/m)[0]!).name).toBe(SIDECAR_NAME);
    expect(r.out).toContain("app.kubernetes.io/name: coordinator # selected");
    expect(r.out.endsWith(web)).toBe(true);
    expect(r.err).toEqual([
      "stdin: StatefulSet/coordinator: injected",
      "stdin: Deployment/web: skipped (not_selected): its labels do not match the selector app.kubernetes.io/name=coordinator",
    ]);
  });

  it("writes -o FILE, and a directory into a directory, keeping the names", async () => {
    const file = join(dir, "one.yaml");
    writeFileSync(file, coordinator);
    expect((await inject({ filename: file, output: join(dir, "one.out.yaml") })).code).toBe(0);
    expect(sidecarOf(readFileSync(join(dir, "one.out.yaml"), "utf8")).name).toBe(SIDECAR_NAME);

    const tree = join(dir, "tree");
    mkdirSync(join(tree, "apps"), { recursive: true });
    writeFileSync(join(tree, "apps", "coordinator.yaml"), coordinator);
    writeFileSync(join(tree, "web.json"), JSON.stringify(parse(web), null, 2));
    writeFileSync(join(tree, "README.md"), "not a manifest");
    const r = await inject({ filename: tree, output: join(dir, "out") });
    expect(r.code).toBe(0);
    expect(sidecarOf(readFileSync(join(dir, "out", "apps", "coordinator.yaml"), "utf8")).name).toBe(
      SIDECAR_NAME,
    );
    expect(readFileSync(join(dir, "out", "web.json"), "utf8")).toBe(
      readFileSync(join(tree, "web.json"), "utf8"),
    );
    expect(r.err.map((l) => l.split(":")[0])).toEqual([
      join(tree, "apps/coordinator.yaml"),
      join(tree, "web.json"),
    ]);
  });

  it("prints a unified diff with --diff, the same that diff -u prints", async () => {
    const file = join(dir, "diff.yaml");
    writeFileSync(file, coordinator);
    const r = await inject({ filename: file, diff: true });
    expect(r.code).toBe(0);
    const injected = join(dir, "diff.injected.yaml");
    await inject({ filename: file, output: injected });
    let expected = "";
    try {
      execFileSync("diff", ["-u", "--label", file, "--label", file, file, injected], { encoding: "utf8" });
    } catch (err) {
      expected = (err as { stdout: string }).stdout;
    }
    expect(r.out).toBe(expected);
    // Nothing to do: no diff at all.
    expect((await inject({ filename: injected, diff: true })).out).toBe("");
  });

  it("writes nothing and exits 1 when the webhook would refuse a template", async () => {
    const clash = coordinator.replace(
      "image: coordinator:1",
      `image: x\n          volumeMounts: [{name: d, mountPath: /var/run/coordinator-ha/state}]`,
    );
    const out = join(dir, "refused.yaml");
    const r = await inject({ output: out }, clash);
    expect(r.code).toBe(InjectExit.Refused);
    expect(r.err[0]).toMatch(
      /^stdin: StatefulSet\/coordinator: refused \(state_dir_conflict\): container "coordinator" mounts volume "d"/,
    );
    expect(r.err.at(-1)).toContain("nothing written");
    expect(() => readFileSync(out)).toThrow();
  });

  it("exits 2 naming every bad flag, or an input it cannot read", async () => {
    const r = await inject(
      { sidecarImage: undefined, handlerUrl: "http://handler", stateDir: "state" },
      coordinator,
    );
    expect(r.code).toBe(InjectExit.BadInput);
    expect(r.err).toEqual([
      'error: --sidecar-image is required (or --from-cluster); --handler-url "http://handler" must be an https URL (sidecars send their token there); --state-dir "state" is not an absolute directory path below /',
    ]);
    expect((await inject({ filename: join(dir, "missing.yaml") })).err).toEqual([
      `error: cannot read ${join(dir, "missing.yaml")}: ENOENT`,
    ]);
    expect((await inject({}, "a: [\n")).err[0]).toMatch(/^error: stdin: document 1 is not valid YAML/);
    expect((await inject({ selector: "a in b" })).err[0]).toContain("--selector: selector requirement");
  });

  it("takes the installed webhook's settings with --from-cluster, flags first", async () => {
    const installed = {
      params: {
        image: "registry.example/coordinator-ha:2",
        imagePullPolicy: "IfNotPresent" as const,
        handlerUrl: "https://cha-handler.cha.svc:443",
        handlerCa: "",
        stateDir: "/state",
      },
      selector: "app=vault,coordinator-ha.io/inject notin (false)",
      source: "cha (deployment cha/cha-webhook)",
    };
    const vault = coordinator.replace("app.kubernetes.io/name: coordinator # selected", "app: vault");
    let out = "";
    const err: string[] = [];
    const code = await runInject(
      { filename: "-", fromCluster: true, sidecarImage: "mine:1" },
      { stdin: Readable.from([Buffer.from(vault)]), out: (t) => (out += t), err: (l) => err.push(l) },
      () => Promise.resolve(installed),
    );
    expect(code).toBe(0);
    expect(err[0]).toBe("settings from the installed webhook: cha (deployment cha/cha-webhook)");
    const sidecar = sidecarOf(out) as unknown as {
      image: string;
      imagePullPolicy: string;
      env: { name: string; value?: string }[];
    };
    expect(sidecar.image).toBe("mine:1");
    expect(sidecar.imagePullPolicy).toBe("IfNotPresent");
    expect(sidecar.env).toContainEqual({ name: "CHA_STATE_DIR", value: "/state" });
    expect(sidecar.env).toContainEqual({ name: "CHA_HANDLER_URL", value: "https://cha-handler.cha.svc:443" });
  });
});

describe("unifiedDiff", () => {
  it("merges close changes into one hunk, and keeps far ones apart", () => {
    const a = Array.from({ length: 20 }, (_, i) => `line ${i}`).join("\n") + "\n";
    const b = a
      .replace("line 2\n", "line 2b\n")
      .replace("line 4\n", "")
      .replace("line 17\n", "line 17\nnew\n");
    expect(unifiedDiff(a, b, "a", "b")).toBe(
      [
        "--- a",
        "+++ b",
        "@@ -1,8 +1,7 @@",
        " line 0",
        " line 1",
        "-line 2",
        "+line 2b",
        " line 3",
        "-line 4",
        " line 5",
        " line 6",
        " line 7",
        "@@ -16,5 +15,6 @@",
        " line 15",
        " line 16",
        " line 17",
        "+new",
        " line 18",
        " line 19",
        "",
      ].join("\n"),
    );
  });
});

describe("coordinator-ha inject --reinject", () => {
  it("brings an injected manifest to new settings, with one sidecar, and is idempotent", async () => {
    const once = await inject({}, coordinator);
    const skipped = await inject({ sidecarImage: "coordinator-ha:2" }, once.out);
    expect(skipped.out).toBe(once.out);
    expect(skipped.err[0]).toContain("skipped (already_injected)");

    const upgraded = await inject({ sidecarImage: "coordinator-ha:2", reinject: true }, once.out);
    expect(upgraded.err).toEqual(["stdin: StatefulSet/coordinator: injected"]);
    const spec = (
      parse(upgraded.out) as {
        spec: { template: { spec: Record<string, { name: string; image?: string }[]> } };
      }
    ).spec.template.spec;
    expect(spec["initContainers"]!.filter((c) => c.name === SIDECAR_NAME).map((c) => c.image)).toEqual([
      "coordinator-ha:2",
    ]);
    expect(spec["volumes"]!.map((v) => v.name)).toEqual(["coordinator-ha-state", "coordinator-ha-token"]);
    const again = await inject({ sidecarImage: "coordinator-ha:2", reinject: true }, upgraded.out);
    expect(again.out).toBe(upgraded.out);
  });
});
