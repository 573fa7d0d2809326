// `coordinator-ha inject --from-cluster` against the installed chart on the real apiserver:
// the reference chart's StatefulSet, injected by the CLI before it reaches the cluster, makes
// the same pod as the webhook makes of the un-injected StatefulSet, the webhook leaves it
// alone (one sidecar, not two), and the handler treats it as any injected pod: after the
// user's set, a second replica recovers and turns Ready.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RECOVERED_CONDITION, SIDECAR_NAME, STATUS_ANNOTATION } from "../../../src/names.ts";
import { CHARTS, REPO_ROOT, run, runOk, withValues, type K8sObject } from "../../charts/helm.ts";
import { createNamespace, deleteNamespace, eventually, kubeConfig } from "../kube.ts";
import { paths } from "../launcher/config.ts";
import { setThenRecoverSecondReplica } from "./second-replica.ts";

const env = { KUBECONFIG: paths.kubeconfig };
const kubectl = (args: string[], input?: string) =>
  run("kubectl", args, { env, ...(input ? { input } : {}) });
/** The built CLI, as a user runs it, with the test cluster's kubeconfig. */
const status = (args: string[]) =>
  spawnSync(process.execPath, [join(REPO_ROOT, "dist/cli.js"), ...args, "--kubeconfig", paths.kubeconfig], {
    encoding: "utf8",
  });
const getPod = (namespace: string, name: string) =>
  JSON.parse(runOk("kubectl", ["get", "pod", "-n", namespace, name, "-o", "json"], { env })) as K8sObject;

describe("coordinator-ha inject --from-cluster, then kubectl apply", () => {
  const kc = kubeConfig();
  const release = `cha-${randomBytes(3).toString("hex")}`;
  let system: string;
  let injected: string;
  let webhooked: string;

  /** The reference chart's objects for a namespace, as `helm template` renders them. */
  const referenceChart = (namespace: string) =>
    runOk("helm", ["template", "coordinator", CHARTS.coordinator, "-n", namespace], { env });

  beforeAll(async () => {
    system = await createNamespace(kc, "cha-inject-system");
    injected = await createNamespace(kc, "cha-inject-cli");
    webhooked = await createNamespace(kc, "cha-inject-webhook");
    const values = {
      webhook: {
        replicas: 1,
        namespaceSelector: {
          matchExpressions: [
            { key: "kubernetes.io/metadata.name", operator: "In", values: [injected, webhooked] },
          ],
        },
      },
      handler: { replicas: 1 },
    };
    const r = withValues(values, (args) =>
      run(
        "helm",
        ["install", release, CHARTS.coordinatorHa, "-n", system, "--wait", "--timeout=3m", ...args],
        {
          env,
        },
      ),
    );
    if (r.status !== 0) throw new Error(`helm install failed:\n${r.stderr}`);
  });

  afterAll(async () => {
    for (const ns of [injected, webhooked])
      if (ns) kubectl(["delete", "statefulset", "--all", "-n", ns, "--wait"]);
    run("helm", ["uninstall", release, "-n", system, "--wait"], { env });
    for (const ns of [injected, webhooked, system]) if (ns) await deleteNamespace(kc, ns);
  });

  it("injects the reference chart with the installed webhook's settings", () => {
    const cli = spawnSync(
      process.execPath,
      [
        join(REPO_ROOT, "dist/cli.js"),
        "inject",
        "-f",
        "-",
        "--from-cluster",
        "--kubeconfig",
        paths.kubeconfig,
      ],
      { input: referenceChart(injected), encoding: "utf8" },
    );
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.stderr).toContain(`settings from the installed webhook: ${release}-coordinator-ha`);
    expect(cli.stderr).toContain("StatefulSet/coordinator: injected");
    const apply = kubectl(["apply", "-n", injected, "-f", "-"], cli.stdout);
    expect(apply.status, apply.stderr).toBe(0);
    const plain = kubectl(["apply", "-n", webhooked, "-f", "-"], referenceChart(webhooked));
    expect(plain.status, plain.stderr).toBe(0);
  });

  it("makes the pod that the webhook makes, and the webhook leaves it alone", async () => {
    const [cli, webhook] = await Promise.all(
      [injected, webhooked].map((ns) =>
        eventually(`coordinator-0 in ${ns}`, async () => {
          const r = kubectl(["get", "pod", "-n", ns, "coordinator-0", "-o", "json"]);
          return r.status === 0 ? (JSON.parse(r.stdout) as K8sObject) : undefined;
        }),
      ),
    );
    for (const pod of [cli!, webhook!]) {
      expect(pod.metadata.annotations[STATUS_ANNOTATION]).toBe("injected");
      expect(pod.spec.initContainers.filter((c: { name: string }) => c.name === SIDECAR_NAME)).toHaveLength(
        1,
      );
    }
    // Everything but the namespace-specific parts of the spec is the same.
    const comparable = (pod: K8sObject) => ({
      initContainers: pod.spec.initContainers,
      containers: pod.spec.containers,
      volumes: pod.spec.volumes.filter((v: { name: string }) => v.name.startsWith("coordinator-ha-")),
      readinessGates: pod.spec.readinessGates,
    });
    expect(comparable(cli!)).toEqual(comparable(webhook!));
    expect(cli!.spec.readinessGates).toEqual([{ conditionType: RECOVERED_CONDITION }]);
    // The webhook saw the injected pod and skipped it.
    const logs = kubectl(["logs", "-n", system, `deployment/${release}-coordinator-ha-webhook`]).stdout;
    const skipped = logs
      .split("\n")
      .filter((l) => l.includes(`"namespace":"${injected}"`) && l.includes('"already_injected"'));
    expect(skipped.length, logs).toBeGreaterThan(0);
  });

  it("status: the set waits for its user's set, exit 1 with the reason", async () => {
    await eventually("coordinator-0 waiting for its user's set", async () => {
      const gate = getPod(injected, "coordinator-0").status.conditions?.find(
        (c: { type: string }) => c.type === RECOVERED_CONDITION,
      );
      return gate?.reason === "AwaitingState" ? true : undefined;
    });
    const r = status(["status", "-n", injected]);
    // The transcript, as the e2e tests keep theirs.
    console.log(`$ coordinator-ha status -n ${injected}\n${r.stdout}${r.stderr}(exit ${r.status})`);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/^coordinator-0 +\S+ +False +False +AwaitingState +- +- +\S+$/m);
    expect(r.stdout).toContain(
      "coordinator: 0/1 Ready; no committed head; 1 waiting for state: coordinator-0 (AwaitingState) (unhealthy)",
    );
  });

  it("recovers a second replica of the injected StatefulSet: the handler treats it as any injected pod", async () => {
    const { conditions } = await setThenRecoverSecondReplica(
      injected,
      "inject-cli",
      () =>
        kubectl(["logs", "-n", injected, "coordinator-1", "-c", SIDECAR_NAME, "--tail=30"]).stdout +
        kubectl(["logs", "-n", system, `deployment/${release}-coordinator-ha-handler`, "--tail=30"]).stdout,
    );
    expect(conditions.find((c) => c.type === RECOVERED_CONDITION)).toMatchObject({
      status: "True",
      reason: "RecoveredFromPeer",
    });
    const second = getPod(injected, "coordinator-1");
    expect(second.spec.initContainers.filter((c: { name: string }) => c.name === SIDECAR_NAME)).toHaveLength(
      1,
    );
  });

  it("status, also as the kubectl plugin: the set is healthy, both pods hold the head, coordinator-1 from coordinator-0", () => {
    const r = status(["status", "-n", injected, "coordinator", "-o", "json"]);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as {
      healthy: boolean;
      statefulSets: {
        head: { committed: string };
        pods: { pod: string; digest: string; source: string | null }[];
      }[];
    };
    expect(report.healthy).toBe(true);
    const [set] = report.statefulSets;
    expect(set!.head.committed).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(set!.pods.map((p) => [p.pod, p.digest, p.source])).toEqual([
      ["coordinator-0", set!.head.committed, null],
      ["coordinator-1", set!.head.committed, "coordinator-0"],
    ]);

    // kubectl finds the plugin on PATH by its name and runs it with the arguments after it.
    const bin = mkdtempSync(join(tmpdir(), "cha-plugin-"));
    symlinkSync(join(REPO_ROOT, "dist/kubectl-plugin.js"), join(bin, "kubectl-coordinator_ha"));
    const path = `${bin}:${dirname(process.execPath)}:${process.env["PATH"]}`;
    const plugin = run("kubectl", ["coordinator-ha", "status", "-n", injected], {
      env: { ...env, PATH: path },
    });
    rmSync(bin, { recursive: true });
    console.log(
      `$ kubectl coordinator-ha status -n ${injected}\n${plugin.stdout}${plugin.stderr}(exit ${plugin.status})`,
    );
    expect(plugin.status, plugin.stderr).toBe(0);
    expect(plugin.stdout).toMatch(
      /^coordinator-1 +\S+ +True +True +RecoveredFromPeer +sha256:[0-9a-f]{8} +coordinator-0 /m,
    );
    expect(plugin.stdout).toContain("coordinator: 2/2 Ready; 2 hold the head sha256:");
  });
});
