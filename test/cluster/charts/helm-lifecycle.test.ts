// The charts on the real apiserver, with the real helm and kubectl: the rendered manifests
// pass server-side validation; `helm install` brings the webhook and the handler up and a
// Coordinator pod gets injected; `helm upgrade` keeps the CA and the caBundle (and renews a
// serving certificate close to expiry with the same CA); `helm uninstall` leaves no webhook
// configuration behind.
import { X509Certificate, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  INJECT_ANNOTATION,
  RECOVERED_CONDITION,
  SIDECAR_NAME,
  STATUS_ANNOTATION,
  STATUS_INJECTED,
} from "../../../src/names.ts";
import { parseCertsOptions, writeCerts } from "../../../webhook-certs/certs.ts";
import { CHARTS, crdFiles, find, render, run, runOk, withValues, type K8sObject } from "../../charts/helm.ts";
import { createNamespace, deleteNamespace, eventually, kubeConfig } from "../kube.ts";
import { paths } from "../launcher/config.ts";
import { setThenRecoverSecondReplica } from "./second-replica.ts";

const env = { KUBECONFIG: paths.kubeconfig };
const kubectl = (args: string[], input?: string) =>
  run("kubectl", args, { env, ...(input ? { input } : {}) });
const kubectlOk = (args: string[], input?: string) =>
  runOk("kubectl", args, { env, ...(input ? { input } : {}) });
const helmOk = (args: string[]) => runOk("helm", args, { env });

function getJson(args: string[]): K8sObject {
  return JSON.parse(kubectlOk(["get", ...args, "-o", "json"])) as K8sObject;
}

/**
 * Installs the CRDs of the chart's optional kinds (cert-manager's, the Prometheus Operator's),
 * so that the apiserver checks those objects against their real schemas. Server-side apply: the
 * Issuer CRD is too large for the last-applied annotation of a client-side apply.
 */
function installOptionalCrds(): void {
  for (const file of crdFiles()) {
    kubectlOk(["apply", "--server-side", "--field-manager=coordinator-ha-tests", "-f", file]);
  }
  for (const name of [
    "issuers.cert-manager.io",
    "certificates.cert-manager.io",
    "servicemonitors.monitoring.coreos.com",
  ]) {
    kubectlOk(["wait", "--for=condition=Established", "--timeout=60s", `crd/${name}`]);
  }
}

describe("rendered manifests on the real apiserver", () => {
  const kc = kubeConfig();
  let namespace: string;
  beforeAll(async () => {
    namespace = await createNamespace(kc, "cha-dry-run");
    // Pod Security Admission then warns, on stderr, about any pod template that does not meet
    // the restricted standard.
    kubectlOk(["label", "namespace", namespace, "pod-security.kubernetes.io/warn=restricted"]);
    installOptionalCrds();
  });
  afterAll(async () => {
    await deleteNamespace(kc, namespace);
  });

  // Any real CA will do for the Secret mode: take the one that helm mode generates.
  const someCaBundle = () =>
    find(render(CHARTS.coordinatorHa), "Secret", "cha-coordinator-ha-ca").data["tls.crt"] as string;

  it.each<[string, () => Record<string, unknown>]>([
    ["coordinator-ha, tls.mode=helm, NetworkPolicies", () => ({ networkPolicy: { enabled: true } })],
    ["coordinator-ha, tls.mode=cert-manager", () => ({ tls: { mode: "cert-manager" } })],
    [
      "coordinator-ha, tls.mode=cert-manager with a ClusterIssuer",
      () => ({
        tls: { mode: "cert-manager", certManager: { issuerRef: { name: "corp-ca", kind: "ClusterIssuer" } } },
      }),
    ],
    [
      "coordinator-ha, a ServiceMonitor, a PrometheusRule and the Grafana dashboard",
      () => ({
        serviceMonitor: { enabled: true, labels: { release: "prometheus" } },
        prometheusRule: { enabled: true, labels: { release: "prometheus" } },
        grafana: { dashboard: { enabled: true, annotations: { grafana_folder: "Coordinators" } } },
      }),
    ],
    [
      "coordinator-ha, tls.mode=secret",
      () => ({ tls: { mode: "secret", secret: { name: "mine", caBundle: someCaBundle() } } }),
    ],
  ])("accepts %s (kubectl apply --dry-run=server)", (_what, makeValues) => {
    const objects = render(CHARTS.coordinatorHa, { release: "dry", namespace, values: makeValues() });
    const r = kubectl(
      ["apply", "--dry-run=server", "-f", "-"],
      objects.map((o) => JSON.stringify(o)).join("\n"),
    );
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split("\n")).toHaveLength(objects.length);
  });

  it("accepts charts/coordinator (kubectl apply --dry-run=server)", () => {
    const objects = render(CHARTS.coordinator, { release: "dry", namespace });
    const r = kubectl(
      ["apply", "--dry-run=server", "-f", "-"],
      objects.map((o) => JSON.stringify(o)).join("\n"),
    );
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});

describe("helm install, upgrade and uninstall of coordinator-ha", () => {
  const kc = kubeConfig();
  // A release name of its own, so that cluster-scoped objects never meet another run's.
  const release = `cha-${randomBytes(3).toString("hex")}`;
  const secrets = { ca: `${release}-coordinator-ha-ca`, tls: `${release}-coordinator-ha-tls` };
  const deployments = [`${release}-coordinator-ha-webhook`, `${release}-coordinator-ha-handler`];
  let namespace: string;
  let appNamespace: string;
  let valuesArgs: (fn: (args: string[]) => string) => string;

  const webhookConfig = () => getJson(["mutatingwebhookconfiguration", `${release}-coordinator-ha`]);
  const secretData = (name: string) =>
    getJson(["secret", "-n", namespace, name]).data as Record<string, string>;
  const checksums = () =>
    deployments.map(
      (d) =>
        getJson(["deployment", "-n", namespace, d]).spec.template.metadata.annotations[
          "checksum/tls"
        ] as string,
    );

  beforeAll(async () => {
    namespace = await createNamespace(kc, "cha-system");
    appNamespace = await createNamespace(kc, "cha-app");
    // Confine this release's webhook to the test's own namespace: other test files create
    // Coordinator pods too, and must not depend on this release.
    const values = {
      webhook: {
        namespaceSelector: {
          matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: [appNamespace] }],
        },
      },
    };
    valuesArgs = (fn) => withValues(values, fn);
  });

  afterAll(async () => {
    run("helm", ["uninstall", "coordinator", "-n", appNamespace, "--wait"], { env });
    run("helm", ["uninstall", release, "-n", namespace, "--wait"], { env });
    await deleteNamespace(kc, appNamespace);
    await deleteNamespace(kc, namespace);
  });

  it("installs, and the webhook configuration trusts the generated CA", () => {
    valuesArgs((args) => helmOk(["install", release, CHARTS.coordinatorHa, "-n", namespace, ...args]));
    const ca = secretData(secrets.ca)["tls.crt"]!;
    const config = webhookConfig();
    expect(config.webhooks[0].clientConfig.caBundle).toBe(ca);
    expect(secretData(secrets.tls)["ca.crt"]).toBe(ca);
    const cert = new X509Certificate(Buffer.from(secretData(secrets.tls)["tls.crt"]!, "base64"));
    expect(cert.verify(new X509Certificate(Buffer.from(ca, "base64")).publicKey)).toBe(true);
  });

  it("brings the webhook and the handler to Ready", () => {
    const nodes = kubectlOk(["get", "nodes", "-o", "name"]).trim();
    if (nodes === "")
      throw new Error("the cluster has no node: start it with its worker nodes (npm run cluster:up)");
    for (const d of deployments) {
      const r = kubectl(["rollout", "status", "-n", namespace, `deployment/${d}`, "--timeout=100s"]);
      if (r.status !== 0) {
        const pods = kubectl(["get", "pods", "-n", namespace, "-o", "wide"]).stdout;
        const events = kubectl(["get", "events", "-n", namespace, "--sort-by=.lastTimestamp"]).stdout;
        throw new Error(`deployment/${d} did not become ready:\n${r.stderr}\n${pods}\n${events}`);
      }
    }
    for (const d of deployments) {
      expect(getJson(["deployment", "-n", namespace, d]).status.readyReplicas).toBe(2);
    }
  });

  it("injects the recovery sidecar and the readiness gate into a Coordinator pod", async () => {
    const ready = getJson(["deployment", "-n", namespace, deployments[0]!]).status.readyReplicas ?? 0;
    // With failurePolicy Fail, no Coordinator pod is created while no webhook replica is Ready.
    if (ready === 0) throw new Error(`deployment/${deployments[0]} has no Ready replica: nothing can inject`);
    helmOk(["install", "coordinator", CHARTS.coordinator, "-n", appNamespace]);
    const pod = await eventually(
      "pod coordinator-0",
      async () => {
        const r = kubectl(["get", "pod", "-n", appNamespace, "coordinator-0", "-o", "json"]);
        return r.status === 0 ? (JSON.parse(r.stdout) as K8sObject) : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    ).catch((err: Error) => {
      const events = kubectl(["get", "events", "-n", appNamespace]).stdout;
      throw new Error(`${err.message}\n${events}`);
    });
    expect(pod.metadata.annotations[STATUS_ANNOTATION]).toBe(STATUS_INJECTED);
    expect(pod.spec.readinessGates).toEqual([{ conditionType: RECOVERED_CONDITION }]);
    expect(pod.spec.initContainers[0]).toMatchObject({ name: SIDECAR_NAME, restartPolicy: "Always" });
    const describe = kubectlOk(["describe", "pod", "-n", appNamespace, "coordinator-0"]);
    expect(describe).toContain(`Readiness Gates:`);
    expect(describe).toContain(RECOVERED_CONDITION);
  });

  it("wires a working system: after the user's set, a second pod recovers from the first", async () => {
    const { conditions } = await setThenRecoverSecondReplica(appNamespace, "chart-e2e");
    expect(conditions.find((c) => c.type === RECOVERED_CONDITION)).toMatchObject({
      status: "True",
      reason: "RecoveredFromPeer",
    });
    const events = kubectlOk([
      "get",
      "events",
      "-n",
      appNamespace,
      "--field-selector",
      "involvedObject.name=coordinator-1,reason=RecoveredFromPeer",
      "-o",
      "name",
    ]);
    expect(events.trim()).not.toBe("");
  });

  it("keeps the CA, the serving certificate and the caBundle on helm upgrade", () => {
    const before = {
      ca: secretData(secrets.ca),
      tls: secretData(secrets.tls),
      config: webhookConfig(),
      sums: checksums(),
    };
    valuesArgs((args) =>
      helmOk(["upgrade", release, CHARTS.coordinatorHa, "-n", namespace, ...args, "--set", "logLevel=debug"]),
    );
    expect(secretData(secrets.ca)).toEqual(before.ca);
    expect(secretData(secrets.tls)).toEqual(before.tls);
    expect(webhookConfig().webhooks[0].clientConfig.caBundle).toBe(
      before.config.webhooks[0].clientConfig.caBundle,
    );
    // Nothing in the certificate material changed, so nothing rolls for it.
    expect(checksums()).toEqual(before.sums);
  });

  it("renews a serving certificate close to expiry with the same CA on helm upgrade", () => {
    const before = {
      ca: secretData(secrets.ca),
      tls: secretData(secrets.tls),
      caBundle: webhookConfig().webhooks[0].clientConfig.caBundle,
    };
    kubectlOk([
      "annotate",
      "--overwrite",
      "-n",
      namespace,
      `secret/${secrets.tls}`,
      "coordinator-ha.io/not-after=2020-01-01T00:00:00Z",
    ]);
    valuesArgs((args) => helmOk(["upgrade", release, CHARTS.coordinatorHa, "-n", namespace, ...args]));
    const after = secretData(secrets.tls);
    expect(after["tls.crt"]).not.toBe(before.tls["tls.crt"]);
    expect(after["tls.key"]).not.toBe(before.tls["tls.key"]);
    expect(secretData(secrets.ca)).toEqual(before.ca);
    expect(webhookConfig().webhooks[0].clientConfig.caBundle).toBe(before.caBundle);
    const ca = new X509Certificate(Buffer.from(before.ca["tls.crt"]!, "base64"));
    const cert = new X509Certificate(Buffer.from(after["tls.crt"]!, "base64"));
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(Date.parse(cert.validTo)).toBeGreaterThan(Date.now() + 365 * 86_400_000);
  });

  it("leaves no webhook configuration (and no cluster-wide RBAC) behind on helm uninstall", async () => {
    helmOk(["uninstall", release, "-n", namespace, "--wait"]);
    const selector = `app.kubernetes.io/instance=${release}`;
    for (const kind of [
      "mutatingwebhookconfigurations",
      "clusterroles",
      "clusterrolebindings",
      "validatingadmissionpolicies",
      "validatingadmissionpolicybindings",
    ]) {
      expect(kubectlOk(["get", kind, "-l", selector, "-o", "name"]).trim(), kind).toBe("");
    }
    // With the webhook gone, a Coordinator pod is created again, and uninjected: nothing
    // still intercepts it (a leftover failurePolicy Fail configuration would refuse it).
    kubectl(["delete", "pod", "-n", appNamespace, "coordinator-0", "--wait=false"]);
    const pod = await eventually(
      "an uninjected coordinator-0",
      async () => {
        const r = kubectl(["get", "pod", "-n", appNamespace, "coordinator-0", "-o", "json"]);
        if (r.status !== 0) return undefined;
        const p = JSON.parse(r.stdout) as K8sObject;
        return p.metadata.deletionTimestamp ? undefined : p;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    expect(pod.metadata.annotations?.[STATUS_ANNOTATION]).toBeUndefined();
    expect(pod.metadata.annotations?.[INJECT_ANNOTATION]).toBeUndefined();
  });
});

describe("helm install with tls.mode=secret and a certificate from npm run certs", () => {
  const kc = kubeConfig();
  const release = `cha-${randomBytes(3).toString("hex")}`;
  let namespace: string;
  let out: string;

  beforeAll(async () => {
    namespace = await createNamespace(kc, "cha-secret");
    out = mkdtempSync(join(tmpdir(), "cha-certs-"));
  });
  afterAll(async () => {
    run("helm", ["uninstall", release, "-n", namespace, "--wait"], { env });
    await deleteNamespace(kc, namespace);
    rmSync(out, { recursive: true, force: true });
  });

  it("installs with the user's Secret and caBundle, and uninstalls cleanly", async () => {
    const services = [`${release}-coordinator-ha-webhook`, `${release}-coordinator-ha-handler`];
    const certs = await writeCerts(parseCertsOptions({ service: services, namespace, out }));
    kubectlOk([
      "create",
      "secret",
      "tls",
      "-n",
      namespace,
      "my-tls",
      `--cert=${certs.files.cert}`,
      `--key=${certs.files.key}`,
    ]);
    const values = {
      tls: { mode: "secret", secret: { name: "my-tls", caBundle: certs.caBundle } },
      // Consulted in no namespace: this release only proves the install, not injection.
      webhook: { namespaceSelector: { matchLabels: { "coordinator-ha.io/e2e-never": "true" } } },
    };
    withValues(values, (args) =>
      helmOk(["install", release, CHARTS.coordinatorHa, "-n", namespace, ...args]),
    );
    const config = getJson(["mutatingwebhookconfiguration", `${release}-coordinator-ha`]);
    expect(config.webhooks[0].clientConfig.caBundle).toBe(certs.caBundle);
    const ca = getJson(["configmap", "-n", namespace, `${release}-coordinator-ha-ca`]);
    expect(ca.data["ca.crt"].trim()).toBe(readFileSync(certs.files.caCert, "utf8").trim());

    helmOk(["uninstall", release, "-n", namespace, "--wait"]);
    expect(kubectl(["get", "mutatingwebhookconfiguration", `${release}-coordinator-ha`]).status).not.toBe(0);
    // The user's Secret is theirs: uninstall leaves it.
    expect(kubectl(["get", "secret", "-n", namespace, "my-tls"]).status).toBe(0);
  });
});
