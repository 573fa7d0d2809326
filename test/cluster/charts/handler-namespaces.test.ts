// coordinator-ha with handler.namespaces on the real apiserver: the handler holds its rights
// through a Role in the Coordinator's namespace alone (no ClusterRole), still marks a second
// replica recovered there, and `kubectl auth can-i` as its ServiceAccount shows what it may
// not do: patch pods/status in another namespace, or list pods cluster-wide.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RECOVERED_CONDITION } from "../../../src/names.ts";
import { CHARTS, run, runOk, selects, withValues, type K8sObject } from "../../charts/helm.ts";
import { createNamespace, deleteNamespace, kubeConfig } from "../kube.ts";
import { paths } from "../launcher/config.ts";
import { setThenRecoverSecondReplica } from "./second-replica.ts";

const env = { KUBECONFIG: paths.kubeconfig };
const kubectl = (args: string[]) => run("kubectl", args, { env });
const kubectlOk = (args: string[]) => runOk("kubectl", args, { env });
const getJson = (args: string[]) => JSON.parse(kubectlOk(["get", ...args, "-o", "json"])) as K8sObject;

describe("helm install with handler.namespaces", () => {
  const kc = kubeConfig();
  // A release name of its own, so that cluster-scoped objects never meet another run's.
  const release = `cha-${randomBytes(3).toString("hex")}`;
  const handler = `${release}-coordinator-ha-handler`;
  let system: string;
  let app: string;
  let other: string;
  let serviceAccount: string;

  /** `kubectl auth can-i` as the handler's ServiceAccount: "yes" or "no". */
  const canI = (...args: string[]) => {
    const r = kubectl(["auth", "can-i", ...args, `--as=${serviceAccount}`]);
    // can-i exits 1 for "no"; anything else is a failure of the command itself.
    if (r.status !== 0 && r.stdout.trim() !== "no")
      throw new Error(`kubectl auth can-i failed:\n${r.stderr}`);
    return r.stdout.trim();
  };

  beforeAll(async () => {
    system = await createNamespace(kc, "cha-ns-system");
    app = await createNamespace(kc, "cha-ns-app");
    other = await createNamespace(kc, "cha-ns-other");
    serviceAccount = `system:serviceaccount:${system}:${handler}`;
  });

  afterAll(async () => {
    run("helm", ["uninstall", "coordinator", "-n", app, "--wait"], { env });
    run("helm", ["uninstall", release, "-n", system, "--wait"], { env });
    for (const ns of [app, other, system]) if (ns) await deleteNamespace(kc, ns);
  });

  it("installs with a Role in the watched namespace only, and the webhook confined to it", () => {
    // handler.namespaces alone confines this release's webhook to the test's namespace, so
    // that other test files' Coordinator pods never depend on it.
    const r = withValues({ handler: { namespaces: [app] } }, (args) =>
      run(
        "helm",
        ["install", release, CHARTS.coordinatorHa, "-n", system, "--wait", "--timeout=3m", ...args],
        {
          env,
        },
      ),
    );
    if (r.status !== 0) {
      const pods = kubectl(["get", "pods", "-n", system, "-o", "wide"]).stdout;
      const logs = kubectl(["logs", "-n", system, `deployment/${handler}`, "--tail=30"]).stdout;
      throw new Error(`helm install failed:\n${r.stderr}\n${pods}\n${logs}`);
    }
    const selector = `app.kubernetes.io/instance=${release}`;
    for (const kind of ["clusterroles", "clusterrolebindings"]) {
      expect(kubectlOk(["get", kind, "-l", selector, "-o", "name"]).trim(), kind).toBe("");
    }
    expect(
      kubectlOk(["get", "roles,rolebindings", "-A", "-l", selector, "-o", "name"]).trim().split("\n"),
    ).toEqual([
      `role.rbac.authorization.k8s.io/${handler}`,
      `rolebinding.rbac.authorization.k8s.io/${handler}`,
    ]);
    expect(getJson(["role", "-n", app, handler]).metadata.namespace).toBe(app);

    const webhook = getJson(["mutatingwebhookconfiguration", `${release}-coordinator-ha`]).webhooks[0];
    const ns = (name: string) => ({ "kubernetes.io/metadata.name": name });
    expect(selects(webhook.namespaceSelector, ns(app))).toBe(true);
    expect(selects(webhook.namespaceSelector, ns(other))).toBe(false);
    expect(selects(webhook.namespaceSelector, ns("default"))).toBe(false);
    expect(getJson(["deployment", "-n", system, handler]).status.readyReplicas).toBe(2);
  });

  it("lets the handler patch pods/status in that namespace, and nowhere else", () => {
    expect(canI("patch", "pods", "--subresource=status", "-n", app)).toBe("yes");
    expect(canI("watch", "pods", "-n", app)).toBe("yes");
    expect(canI("create", "events", "-n", app)).toBe("yes");
    expect(canI("patch", "pods", "--subresource=status", "-n", other)).toBe("no");
    expect(canI("get", "pods", "-n", other)).toBe("no");
    expect(canI("list", "pods", "--all-namespaces")).toBe("no");
    expect(canI("watch", "pods", "--all-namespaces")).toBe("no");
  });

  it("marks a second replica recovered in the watched namespace: gate True, Ready", async () => {
    runOk("helm", ["install", "coordinator", CHARTS.coordinator, "-n", app], { env });
    const { conditions } = await setThenRecoverSecondReplica(
      app,
      "handler-namespaces",
      () => kubectl(["logs", "-n", system, `deployment/${handler}`, "--tail=30"]).stdout,
    );
    expect(conditions.find((c) => c.type === RECOVERED_CONDITION)).toMatchObject({
      status: "True",
      reason: "RecoveredFromPeer",
    });
    expect(conditions.find((c) => c.type === "Ready")?.status).toBe("True");
  });
});
