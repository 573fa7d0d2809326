// The coordinator-ha chart as `helm lint` and `helm template` see it: every TLS mode, the
// webhook configuration, least-privilege RBAC, and values that the schema must reject.
import { X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DEFAULT_POD_SELECTOR, IMAGE_REPOSITORY } from "../../src/names.ts";
import {
  CHARTS,
  PACKAGE_VERSION,
  find,
  kinds,
  render,
  run,
  selects,
  template,
  withValues,
  type K8sObject,
} from "./helm.ts";

const CHART = CHARTS.coordinatorHa;
const NS = "cha-system";
const IMAGE = `${IMAGE_REPOSITORY}:${PACKAGE_VERSION}`;

// A CA for tls.mode=secret, made once for the file.
const testCa = (() => {
  const objects = render(CHART);
  return find(objects, "Secret", "cha-coordinator-ha-ca").data["tls.crt"] as string;
})();

const MODES: Record<string, object> = {
  helm: {},
  "cert-manager": { tls: { mode: "cert-manager" } },
  secret: { tls: { mode: "secret", secret: { name: "my-tls", caBundle: testCa } } },
};

function container(deployment: K8sObject): K8sObject {
  return deployment.spec.template.spec.containers[0];
}

function pem(b64: string): string {
  return Buffer.from(b64, "base64").toString();
}

describe.each(Object.keys(MODES))("tls.mode=%s", (mode) => {
  const values = MODES[mode]!;

  it("passes helm lint --strict", () => {
    const r = withValues(values, (args) => run("helm", ["lint", "--strict", CHART, ...args]));
    expect(r.stderr + r.stdout).toContain("0 chart(s) failed");
    expect(r.status).toBe(0);
  });

  it("renders the webhook configuration the apiserver needs", () => {
    const objects = render(CHART, { values });
    const config = find(objects, "MutatingWebhookConfiguration");
    expect(config.webhooks).toHaveLength(1);
    const webhook = config.webhooks[0];
    expect(webhook).toMatchObject({
      name: "inject.coordinator-ha.io",
      admissionReviewVersions: ["v1"],
      clientConfig: {
        service: { name: "cha-coordinator-ha-webhook", namespace: NS, path: "/mutate", port: 443 },
      },
      rules: [
        {
          operations: ["CREATE"],
          apiGroups: [""],
          apiVersions: ["v1"],
          resources: ["pods"],
          scope: "Namespaced",
        },
      ],
      failurePolicy: "Fail",
      matchPolicy: "Equivalent",
      sideEffects: "None",
      timeoutSeconds: 5,
      reinvocationPolicy: "IfNeeded",
      objectSelector: {
        matchLabels: DEFAULT_POD_SELECTOR,
        matchExpressions: [{ key: "coordinator-ha.io/inject", operator: "NotIn", values: ["false"] }],
      },
      namespaceSelector: {
        matchExpressions: [
          {
            key: "kubernetes.io/metadata.name",
            operator: "NotIn",
            values: ["kube-system", "kube-node-lease"],
          },
        ],
      },
    });
  });

  it("serves both Services from one certificate, mounted with the CA for sidecars", () => {
    const objects = render(CHART, { values });
    const secretName = mode === "secret" ? "my-tls" : "cha-coordinator-ha-tls";
    for (const name of ["cha-coordinator-ha-webhook", "cha-coordinator-ha-handler"]) {
      const volume = find(objects, "Deployment", name).spec.template.spec.volumes[0];
      expect(volume.name).toBe("tls");
      expect(volume.projected.sources[0].secret.name).toBe(secretName);
    }
    const webhookArgs: string[] = container(find(objects, "Deployment", "cha-coordinator-ha-webhook")).args;
    expect(webhookArgs).toContain("--handler-ca-file=/etc/coordinator-ha/tls/ca.crt");
    const sources = find(objects, "Deployment", "cha-coordinator-ha-webhook").spec.template.spec.volumes[0]
      .projected.sources;
    const caSource = sources.find((s: K8sObject) =>
      (s.secret ?? s.configMap).items.some((i: { path: string }) => i.path === "ca.crt"),
    );
    expect(caSource).toBeDefined();
    // The handler gets no CA: it only serves.
    const handlerItems = find(
      objects,
      "Deployment",
      "cha-coordinator-ha-handler",
    ).spec.template.spec.volumes[0].projected.sources.flatMap((s: K8sObject) =>
      s.secret.items.map((i: { path: string }) => i.path),
    );
    expect(handlerItems).toEqual(["tls.crt", "tls.key"]);
  });
});

describe("tls.mode=helm", () => {
  const objects = render(CHART);
  const ca = find(objects, "Secret", "cha-coordinator-ha-ca");
  const tls = find(objects, "Secret", "cha-coordinator-ha-tls");

  it("issues a serving certificate for both Services, signed by the CA in the caBundle", () => {
    const caCert = new X509Certificate(pem(ca.data["tls.crt"]));
    const cert = new X509Certificate(pem(tls.data["tls.crt"]));
    expect(caCert.ca).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    for (const svc of ["cha-coordinator-ha-webhook", "cha-coordinator-ha-handler"]) {
      for (const host of [svc, `${svc}.${NS}`, `${svc}.${NS}.svc`, `${svc}.${NS}.svc.cluster.local`]) {
        expect(cert.checkHost(host), host).toBe(host);
      }
    }
    const caBundle = find(objects, "MutatingWebhookConfiguration").webhooks[0].clientConfig.caBundle;
    expect(caBundle).toBe(ca.data["tls.crt"]);
    expect(tls.data["ca.crt"]).toBe(ca.data["tls.crt"]);
    expect(tls.type).toBe("kubernetes.io/tls");
  });

  it("records what the next upgrade needs to keep or renew the certificates", () => {
    expect(Date.parse(ca.metadata.annotations["coordinator-ha.io/not-after"])).toBeGreaterThan(
      Date.now() + 3649 * 86_400_000,
    );
    expect(tls.metadata.annotations["coordinator-ha.io/dns-names"].split(",")).toHaveLength(8);
  });

  it("keeps the CA key out of every pod", () => {
    for (const d of objects.filter((o) => o.kind === "Deployment")) {
      const secrets = JSON.stringify(d.spec.template.spec.volumes);
      expect(secrets).not.toContain("cha-coordinator-ha-ca");
    }
  });

  it("generates the material once per render: both Deployments carry the same checksum", () => {
    const sums = objects
      .filter((o) => o.kind === "Deployment")
      .map((d) => d.spec.template.metadata.annotations["checksum/tls"]);
    expect(sums).toHaveLength(2);
    expect(sums[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(sums[1]).toBe(sums[0]);
  });
});

describe("tls.mode=cert-manager", () => {
  it("brings its own CA chain and lets cainjector fill the caBundle", () => {
    const objects = render(CHART, { values: MODES["cert-manager"]! });
    expect(kinds(objects).filter((k) => /^(Issuer|Certificate|Secret)\//.test(k))).toEqual([
      "Certificate/cha-coordinator-ha-ca",
      "Certificate/cha-coordinator-ha-tls",
      "Issuer/cha-coordinator-ha-ca",
      "Issuer/cha-coordinator-ha-selfsigned",
    ]);
    const config = find(objects, "MutatingWebhookConfiguration");
    expect(config.metadata.annotations["cert-manager.io/inject-ca-from"]).toBe(
      `${NS}/cha-coordinator-ha-tls`,
    );
    expect(config.webhooks[0].clientConfig.caBundle).toBeUndefined();
    const cert = find(objects, "Certificate", "cha-coordinator-ha-tls");
    expect(cert.spec).toMatchObject({
      secretName: "cha-coordinator-ha-tls",
      issuerRef: { name: "cha-coordinator-ha-ca", kind: "Issuer", group: "cert-manager.io" },
      duration: "8760h",
      renewBefore: "720h",
    });
    expect(cert.spec.dnsNames).toContain(`cha-coordinator-ha-handler.${NS}.svc`);
    expect(cert.spec.dnsNames).toContain(`cha-coordinator-ha-webhook.${NS}.svc`);
    expect(find(objects, "Certificate", "cha-coordinator-ha-ca").spec.isCA).toBe(true);
  });

  it("uses an existing issuer instead when asked", () => {
    const objects = render(CHART, {
      values: {
        tls: { mode: "cert-manager", certManager: { issuerRef: { name: "corp-ca", kind: "ClusterIssuer" } } },
      },
    });
    expect(objects.filter((o) => o.kind === "Issuer")).toEqual([]);
    expect(find(objects, "Certificate").spec.issuerRef).toEqual({
      name: "corp-ca",
      kind: "ClusterIssuer",
      group: "cert-manager.io",
    });
  });
});

describe("tls.mode=secret", () => {
  it("uses the given Secret and caBundle, and creates no certificate", () => {
    const objects = render(CHART, { values: MODES["secret"]! });
    expect(objects.filter((o) => o.kind === "Secret" || o.kind === "Certificate")).toEqual([]);
    expect(find(objects, "MutatingWebhookConfiguration").webhooks[0].clientConfig.caBundle).toBe(testCa);
    expect(find(objects, "ConfigMap", "cha-coordinator-ha-ca").data["ca.crt"].trim()).toBe(
      pem(testCa).trim(),
    );
  });

  it("rejects a caBundle that is not a base64 PEM certificate", () => {
    const r = template(CHART, {
      values: {
        tls: { mode: "secret", secret: { name: "x", caBundle: Buffer.from("hello").toString("base64") } },
      },
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("tls.secret.caBundle must be the base64 encoding of a PEM certificate");
  });
});

describe("workloads", () => {
  const objects = render(CHART);
  const webhook = find(objects, "Deployment", "cha-coordinator-ha-webhook");
  const handler = find(objects, "Deployment", "cha-coordinator-ha-handler");

  it("wires the CLI flags of the webhook and the handler", () => {
    expect(container(webhook).args).toEqual([
      "webhook",
      "--port=8443",
      "--tls-cert=/etc/coordinator-ha/tls/tls.crt",
      "--tls-key=/etc/coordinator-ha/tls/tls.key",
      `--sidecar-image=${IMAGE}`,
      `--handler-url=https://cha-coordinator-ha-handler.${NS}.svc:443`,
      "--handler-ca-file=/etc/coordinator-ha/tls/ca.crt",
      "--log-level=info",
    ]);
    expect(container(handler).args).toEqual([
      "handler",
      "--port=8443",
      "--tls-cert=/etc/coordinator-ha/tls/tls.crt",
      "--tls-key=/etc/coordinator-ha/tls/tls.key",
      "--pod-selector=app.kubernetes.io/name=coordinator",
      "--log-level=info",
    ]);
  });

  it.each([
    ["webhook", () => webhook],
    ["handler", () => handler],
  ])("runs the %s highly available and restricted", (_name, get) => {
    const d = get();
    const pod = d.spec.template.spec;
    const c = container(d);
    expect(c.image).toBe(IMAGE);
    expect(d.spec.replicas).toBe(2);
    expect(d.spec.strategy.rollingUpdate).toEqual({ maxSurge: 1, maxUnavailable: 0 });
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(c.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
    });
    expect(c.resources.requests).toBeDefined();
    expect(c.resources.limits.memory).toBeDefined();
    expect(c.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "https", scheme: "HTTPS" });
    expect(c.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "https", scheme: "HTTPS" });
    expect(c.ports).toEqual([{ name: "https", containerPort: 8443, protocol: "TCP" }]);
    const term = pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0];
    expect(term.podAffinityTerm.topologyKey).toBe("kubernetes.io/hostname");
    expect(selects(term.podAffinityTerm.labelSelector, d.spec.template.metadata.labels)).toBe(true);

    const svc = find(objects, "Service", d.metadata.name);
    expect(svc.spec.ports).toEqual([{ name: "https", port: 443, targetPort: "https", protocol: "TCP" }]);
    expect(selects({ matchLabels: svc.spec.selector }, d.spec.template.metadata.labels)).toBe(true);

    const pdb = find(objects, "PodDisruptionBudget", d.metadata.name);
    expect(pdb.spec.minAvailable).toBe(1);
    expect(selects(pdb.spec.selector, d.spec.template.metadata.labels)).toBe(true);
  });

  it("renders no PodDisruptionBudget for a single replica, which would block drains", () => {
    const single = render(CHART, { values: { webhook: { replicas: 1 } } });
    expect(kinds(single).filter((k) => k.startsWith("PodDisruptionBudget/"))).toEqual([
      "PodDisruptionBudget/cha-coordinator-ha-handler",
    ]);
  });

  it("never sends the chart's own pods through its webhook, whatever objectSelector says", () => {
    const selector = (o: K8sObject[]) => find(o, "MutatingWebhookConfiguration").webhooks[0].objectSelector;
    const podLabels = (o: K8sObject[]) =>
      o
        .filter((x) => x.kind === "Deployment")
        .map((d) => d.spec.template.metadata.labels as Record<string, string>);

    for (const labels of podLabels(objects)) expect(selects(selector(objects), labels)).toBe(false);

    // Even an objectSelector that matches the chart's own labels leaves its pods alone.
    const wide = render(CHART, {
      values: {
        webhook: { objectSelector: { matchLabels: { "app.kubernetes.io/part-of": "coordinator-ha" } } },
      },
    });
    for (const labels of podLabels(wide)) {
      expect(labels["coordinator-ha.io/inject"]).toBe("false");
      expect(selects(selector(wide), labels)).toBe(false);
    }
    // ... while a Coordinator pod is selected.
    expect(selects(selector(objects), { "app.kubernetes.io/name": "coordinator" })).toBe(true);
    expect(
      selects(selector(objects), {
        "app.kubernetes.io/name": "coordinator",
        "coordinator-ha.io/inject": "false",
      }),
    ).toBe(false);
  });
});

describe("RBAC", () => {
  const objects = render(CHART);

  it("gives the handler exactly what it uses, cluster-wide", () => {
    const role = find(objects, "ClusterRole");
    expect(role.metadata.name).toBe("cha-coordinator-ha-handler");
    expect(role.rules).toEqual([
      { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
      { apiGroups: [""], resources: ["pods/status"], verbs: ["patch"] },
      { apiGroups: ["", "events.k8s.io"], resources: ["events"], verbs: ["create"] },
      {
        apiGroups: ["coordinator-ha.io"],
        resources: ["stateheads"],
        verbs: ["get", "list", "watch", "create", "update"],
      },
      { apiGroups: ["apps"], resources: ["statefulsets"], verbs: ["get"] },
    ]);
    const binding = find(objects, "ClusterRoleBinding");
    expect(binding.roleRef).toEqual({
      apiGroup: "rbac.authorization.k8s.io",
      kind: "ClusterRole",
      name: "cha-coordinator-ha-handler",
    });
    expect(binding.subjects).toEqual([
      { kind: "ServiceAccount", name: "cha-coordinator-ha-handler", namespace: NS },
    ]);
    expect(objects.filter((o) => o.kind === "Role" || o.kind === "RoleBinding")).toEqual([]);
  });

  it("gives the webhook no API access and no token", () => {
    const sa = find(objects, "ServiceAccount", "cha-coordinator-ha-webhook");
    expect(sa.automountServiceAccountToken).toBe(false);
    const pod = find(objects, "Deployment", "cha-coordinator-ha-webhook").spec.template.spec;
    expect(pod.serviceAccountName).toBe("cha-coordinator-ha-webhook");
    expect(pod.automountServiceAccountToken).toBe(false);
    const bound = objects
      .filter((o) => o.kind.endsWith("RoleBinding"))
      .flatMap((b) => b.subjects.map((s: { name: string }) => s.name));
    expect(bound).not.toContain("cha-coordinator-ha-webhook");
  });

  it("leaves RBAC to the operator with handler.rbac.create=false", () => {
    const none = render(CHART, { values: { handler: { rbac: { create: false } } } });
    expect(none.filter((o) => o.kind.startsWith("ClusterRole"))).toEqual([]);
    const namespaced = render(CHART, {
      values: { handler: { namespaces: ["team-a"], rbac: { create: false } } },
    });
    expect(namespaced.filter((o) => /Role/.test(o.kind))).toEqual([]);
  });

  it("with handler.namespaces, grants the same rules in each of those namespaces alone", () => {
    const namespaced = render(CHART, { values: { handler: { namespaces: ["team-a", "team-b"] } } });
    expect(namespaced.filter((o) => o.kind.startsWith("Cluster"))).toEqual([]);
    const roles = namespaced.filter((o) => o.kind === "Role");
    const bindings = namespaced.filter((o) => o.kind === "RoleBinding");
    expect(roles.map((r) => r.metadata.namespace)).toEqual(["team-a", "team-b"]);
    expect(bindings.map((b) => b.metadata.namespace)).toEqual(["team-a", "team-b"]);
    for (const role of roles) {
      expect(role.metadata.name).toBe("cha-coordinator-ha-handler");
      expect(role.rules).toEqual(find(objects, "ClusterRole").rules);
    }
    for (const binding of bindings) {
      expect(binding.roleRef).toEqual({
        apiGroup: "rbac.authorization.k8s.io",
        kind: "Role",
        name: "cha-coordinator-ha-handler",
      });
      expect(binding.subjects).toEqual([
        { kind: "ServiceAccount", name: "cha-coordinator-ha-handler", namespace: NS },
      ]);
    }
  });
});

describe("the handler's ValidatingAdmissionPolicy", () => {
  const objects = render(CHART);
  const policyName = "cha-coordinator-ha-handler.coordinator-ha.io";

  it("binds a Deny policy to the handler's ServiceAccount alone", () => {
    const policy = find(objects, "ValidatingAdmissionPolicy", policyName);
    expect(policy.apiVersion).toBe("admissionregistration.k8s.io/v1");
    expect(policy.spec.failurePolicy).toBe("Fail");
    expect(policy.spec.matchConditions).toEqual([
      {
        name: "is-the-handler",
        expression: `request.userInfo.username == "system:serviceaccount:${NS}:cha-coordinator-ha-handler"`,
      },
    ]);
    // Every operation on a pod and its subresources: only pods/status UPDATE may pass.
    expect(policy.spec.matchConstraints.resourceRules).toEqual([
      { apiGroups: [""], apiVersions: ["*"], operations: ["*"], resources: ["pods", "pods/*"] },
    ]);
    const binding = find(objects, "ValidatingAdmissionPolicyBinding", policyName);
    expect(binding.spec).toEqual({ policyName, validationActions: ["Deny"] });
  });

  it("says why in every refusal, and guards each rule by the operation it checks", () => {
    const policy = find(objects, "ValidatingAdmissionPolicy", policyName);
    const validations = policy.spec.validations as {
      expression: string;
      message?: string;
      messageExpression?: string;
      reason: string;
    }[];
    expect(validations.length).toBe(8);
    for (const v of validations) {
      expect(v.reason).toBe("Forbidden");
      expect(v.message ?? v.messageExpression).toMatch(/coordinator-ha handler: /);
    }
    for (const v of validations.slice(1)) expect(v.expression).toMatch(/^!variables\.statusUpdate \|\| /);
    expect(validations.find((v) => /selected/.test(v.expression))?.message).toContain(
      "only pods selected by app.kubernetes.io/name=coordinator may be written",
    );
  });

  it("selects pods by webhook.objectSelector, as the handler's --pod-selector does", () => {
    const selected = (values: object) =>
      find(render(CHART, { values }), "ValidatingAdmissionPolicy").spec.variables.find(
        (v: { name: string }) => v.name === "selected",
      ).expression as string;
    expect(selected({})).toBe(
      '("app.kubernetes.io/name" in variables.labels && variables.labels["app.kubernetes.io/name"] == "coordinator")',
    );
    expect(
      selected({
        webhook: {
          objectSelector: {
            matchLabels: { "app.kubernetes.io/name": null, app: "vault" },
            matchExpressions: [
              { key: "tier", operator: "In", values: ["a", "b"] },
              { key: "zone", operator: "NotIn", values: ["x"] },
              { key: "ha", operator: "Exists" },
              { key: "canary", operator: "DoesNotExist" },
            ],
          },
        },
      }),
    ).toBe(
      [
        '("app" in variables.labels && variables.labels["app"] == "vault")',
        '("tier" in variables.labels && variables.labels["tier"] in ["a","b"])',
        '!("zone" in variables.labels && variables.labels["zone"] in ["x"])',
        '"ha" in variables.labels',
        '!("canary" in variables.labels)',
      ].join(" && "),
    );
  });

  it("is there with handler.namespaces too, and with handler.rbac.create=false; off only on request", () => {
    for (const values of [
      { handler: { namespaces: ["team-a"] } },
      { handler: { rbac: { create: false } } },
    ]) {
      const rendered = render(CHART, { values });
      expect(kinds(rendered)).toEqual(
        expect.arrayContaining([
          `ValidatingAdmissionPolicy/${policyName}`,
          `ValidatingAdmissionPolicyBinding/${policyName}`,
        ]),
      );
    }
    const off = render(CHART, { values: { handler: { admissionPolicy: { enabled: false } } } });
    expect(off.filter((o) => o.kind.startsWith("ValidatingAdmissionPolicy"))).toEqual([]);
  });

  it("needs Kubernetes 1.30, where ValidatingAdmissionPolicy is GA", () => {
    const old = template(CHART, { extraArgs: ["--kube-version", "1.29.9"] });
    expect(old.status).not.toBe(0);
    expect(old.stderr).toContain("chart requires kubeVersion: >=1.30.0-0");
    expect(template(CHART, { extraArgs: ["--kube-version", "1.30.0"] }).status).toBe(0);
  });
});

describe("handler.namespaces", () => {
  const webhookOf = (o: K8sObject[]) => find(o, "MutatingWebhookConfiguration").webhooks[0];
  const namespaceLabels = (name: string, labels: Record<string, string> = {}) => ({
    "kubernetes.io/metadata.name": name,
    ...labels,
  });

  it("passes one --namespace per entry to the handler, and none by default", () => {
    const handlerArgs = (o: K8sObject[]) =>
      (container(find(o, "Deployment", "cha-coordinator-ha-handler")).args as string[]).filter((a) =>
        a.startsWith("--namespace"),
      );
    expect(handlerArgs(render(CHART))).toEqual([]);
    const objects = render(CHART, { values: { handler: { namespaces: ["team-a", "team-b"] } } });
    expect(handlerArgs(objects)).toEqual(["--namespace=team-a", "--namespace=team-b"]);
  });

  it("confines the webhook to those namespaces, on top of the default namespaceSelector", () => {
    const objects = render(CHART, { values: { handler: { namespaces: ["team-a", "team-b"] } } });
    const selector = webhookOf(objects).namespaceSelector;
    expect(selector).toEqual({
      matchExpressions: [
        { key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["kube-system", "kube-node-lease"] },
        { key: "kubernetes.io/metadata.name", operator: "In", values: ["team-a", "team-b"] },
      ],
    });
    expect(selects(selector, namespaceLabels("team-b"))).toBe(true);
    expect(selects(selector, namespaceLabels("default"))).toBe(false);
    // Without handler.namespaces the webhook stays everywhere but the system namespaces.
    expect(selects(webhookOf(render(CHART)).namespaceSelector, namespaceLabels("default"))).toBe(true);
  });

  it("merges with a user's namespaceSelector: its expressions and labels stay, all must hold", () => {
    const objects = render(CHART, {
      values: {
        webhook: {
          namespaceSelector: {
            matchLabels: { "coordinator-ha.io/enabled": "true" },
            matchExpressions: [{ key: "tier", operator: "NotIn", values: ["dev"] }],
          },
        },
        handler: { namespaces: ["team-a"] },
      },
    });
    const selector = webhookOf(objects).namespaceSelector;
    expect(selector).toEqual({
      matchLabels: { "coordinator-ha.io/enabled": "true" },
      matchExpressions: [
        { key: "tier", operator: "NotIn", values: ["dev"] },
        { key: "kubernetes.io/metadata.name", operator: "In", values: ["team-a"] },
      ],
    });
    const enabled = { "coordinator-ha.io/enabled": "true" };
    expect(selects(selector, namespaceLabels("team-a", enabled))).toBe(true);
    expect(selects(selector, namespaceLabels("team-a"))).toBe(false);
    expect(selects(selector, namespaceLabels("team-a", { ...enabled, tier: "dev" }))).toBe(false);
    expect(selects(selector, namespaceLabels("team-b", enabled))).toBe(false);

    // A user selector of labels alone (its expressions removed with null) gets the expression too.
    const labelsOnly = render(CHART, {
      values: {
        webhook: { namespaceSelector: { matchExpressions: null, matchLabels: enabled } },
        handler: { namespaces: ["team-a"] },
      },
    });
    expect(webhookOf(labelsOnly).namespaceSelector).toEqual({
      matchLabels: enabled,
      matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: ["team-a"] }],
    });
  });

  it("keeps the chart's own pods out of the webhook, even with the release namespace listed", () => {
    const objects = render(CHART, {
      values: {
        webhook: { objectSelector: { matchLabels: { "app.kubernetes.io/part-of": "coordinator-ha" } } },
        handler: { namespaces: [NS, "team-a"] },
      },
    });
    const webhook = webhookOf(objects);
    expect(selects(webhook.namespaceSelector, namespaceLabels(NS))).toBe(true);
    for (const d of objects.filter((o) => o.kind === "Deployment")) {
      expect(selects(webhook.objectSelector, d.spec.template.metadata.labels)).toBe(false);
    }
  });

  it("lets only those namespaces call the handler through its NetworkPolicy", () => {
    const objects = render(CHART, {
      values: { networkPolicy: { enabled: true }, handler: { namespaces: ["team-a", "team-b"] } },
    });
    const from = find(objects, "NetworkPolicy", "cha-coordinator-ha-handler").spec.ingress[0].from[0];
    expect(from.namespaceSelector).toEqual({
      matchExpressions: [
        { key: "kubernetes.io/metadata.name", operator: "In", values: ["team-a", "team-b"] },
      ],
    });
    expect(selects(from.podSelector, { "app.kubernetes.io/name": "coordinator" })).toBe(true);
  });

  it("passes helm lint --strict", () => {
    const r = withValues({ handler: { namespaces: ["team-a", "team-b"] } }, (args) =>
      run("helm", ["lint", "--strict", CHART, ...args]),
    );
    expect(r.stderr + r.stdout).toContain("0 chart(s) failed");
    expect(r.status).toBe(0);
  });
});

describe("values", () => {
  it("follows the package version: image tag, appVersion, chart version", () => {
    const chart = run("helm", ["show", "chart", CHART]).stdout;
    expect(chart).toContain(`version: ${PACKAGE_VERSION}`);
    expect(chart).toContain(`appVersion: ${PACKAGE_VERSION}`);
  });

  it("builds the objectSelector and --pod-selector from one webhook.objectSelector", () => {
    const objects = render(CHART, {
      values: {
        webhook: {
          objectSelector: {
            matchLabels: { app: "vault" },
            matchExpressions: [
              { key: "tier", operator: "In", values: ["a", "b"] },
              { key: "canary", operator: "DoesNotExist" },
            ],
          },
        },
      },
    });
    const sel = find(objects, "MutatingWebhookConfiguration").webhooks[0].objectSelector;
    // Maps merge in Helm: the default label stays unless set to null.
    expect(sel.matchLabels).toEqual({ "app.kubernetes.io/name": "coordinator", app: "vault" });
    expect(sel.matchExpressions).toEqual([
      { key: "coordinator-ha.io/inject", operator: "NotIn", values: ["false"] },
      { key: "tier", operator: "In", values: ["a", "b"] },
      { key: "canary", operator: "DoesNotExist" },
    ]);
    expect(container(find(objects, "Deployment", "cha-coordinator-ha-handler")).args).toContain(
      "--pod-selector=app=vault,app.kubernetes.io/name=coordinator,tier in (a,b),!canary",
    );
  });

  it("passes the optional flags through", () => {
    const objects = render(CHART, {
      values: {
        logLevel: "debug",
        handler: { issuer: "https://issuer.example", logLevel: "warn" },
        sidecar: {
          handlerUrl: "https://handler.example:8443",
          stateDir: "/state",
          probes: "exec",
          image: { repository: "example.org/sidecar", tag: "v2", pullPolicy: "Always" },
        },
        image: { digest: `sha256:${"a".repeat(64)}` },
      },
    });
    const webhook = container(find(objects, "Deployment", "cha-coordinator-ha-webhook"));
    expect(webhook.image).toBe(`${IMAGE_REPOSITORY}@sha256:${"a".repeat(64)}`);
    expect(webhook.args).toEqual(
      expect.arrayContaining([
        "--sidecar-image=example.org/sidecar:v2",
        "--sidecar-image-pull-policy=Always",
        "--handler-url=https://handler.example:8443",
        "--state-dir=/state",
        "--sidecar-probes=exec",
        "--log-level=debug",
      ]),
    );
    const handler = container(find(objects, "Deployment", "cha-coordinator-ha-handler"));
    expect(handler.args).toEqual(
      expect.arrayContaining(["--issuer=https://issuer.example", "--log-level=warn"]),
    );
  });

  it("renders the ServiceMonitor and NetworkPolicies only when enabled", () => {
    const off = render(CHART);
    expect(off.filter((o) => ["ServiceMonitor", "NetworkPolicy"].includes(o.kind))).toEqual([]);

    const on = render(CHART, {
      values: { serviceMonitor: { enabled: true }, networkPolicy: { enabled: true } },
    });
    const monitor = find(on, "ServiceMonitor");
    expect(monitor.spec.endpoints[0]).toMatchObject({ port: "https", scheme: "https", path: "/metrics" });
    expect(monitor.spec.endpoints[0].tlsConfig.ca.secret).toEqual({
      name: "cha-coordinator-ha-tls",
      key: "ca.crt",
    });
    for (const svc of on.filter((o) => o.kind === "Service")) {
      expect(selects(monitor.spec.selector, svc.metadata.labels)).toBe(true);
    }

    const webhookPolicy = find(on, "NetworkPolicy", "cha-coordinator-ha-webhook");
    expect(webhookPolicy.spec.egress).toEqual([]);
    expect(webhookPolicy.spec.policyTypes).toEqual(["Ingress", "Egress"]);
    const handlerPolicy = find(on, "NetworkPolicy", "cha-coordinator-ha-handler");
    const from = handlerPolicy.spec.ingress[0].from[0];
    expect(from.namespaceSelector).toEqual({});
    expect(selects(from.podSelector, { "app.kubernetes.io/name": "coordinator" })).toBe(true);
    expect(handlerPolicy.spec.egress[1].ports.map((p: { port: number }) => p.port)).toEqual([443, 6443]);
  });
});

describe("values.schema.json", () => {
  it.each<[string, object, string]>([
    [
      "a failurePolicy",
      { webhook: { failurePolicy: "Never" } },
      "at '/webhook/failurePolicy': value must be one of 'Fail', 'Ignore'",
    ],
    [
      "a TLS mode",
      { tls: { mode: "vault" } },
      "at '/tls/mode': value must be one of 'helm', 'cert-manager', 'secret'",
    ],
    ["secret mode without a Secret", { tls: { mode: "secret" } }, "at '/tls/secret/name'"],
    [
      "secret mode without a caBundle",
      { tls: { mode: "secret", secret: { name: "x" } } },
      "at '/tls/secret/caBundle'",
    ],
    ["zero replicas", { handler: { replicas: 0 } }, "at '/handler/replicas': minimum: got 0, want 1"],
    ["a timeout the apiserver refuses", { webhook: { timeoutSeconds: 31 } }, "at '/webhook/timeoutSeconds'"],
    ["a string where a number goes", { webhook: { replicas: "two" } }, "at '/webhook/replicas'"],
    ["an unknown value (a typo)", { webhok: { replicas: 3 } }, "additional properties 'webhok' not allowed"],
    ["a log level", { logLevel: "verbose" }, "at '/logLevel'"],
    ["an image tag with a colon", { image: { tag: "v1:2" } }, "at '/image/tag'"],
    ["an http handler URL", { sidecar: { handlerUrl: "http://handler" } }, "at '/sidecar/handlerUrl'"],
    ["a relative state directory", { sidecar: { stateDir: "state" } }, "at '/sidecar/stateDir'"],
    [
      "a probe kind",
      { sidecar: { probes: "tcp" } },
      "at '/sidecar/probes': value must be one of 'http', 'exec'",
    ],
    [
      "an expression without values",
      { webhook: { objectSelector: { matchExpressions: [{ key: "a", operator: "In" }] } } },
      "at '/webhook/objectSelector/matchExpressions/0': missing property 'values'",
    ],
    [
      "a selector that selects every pod",
      { webhook: { objectSelector: { matchLabels: { "app.kubernetes.io/name": null } } } },
      "at '/webhook/objectSelector'",
    ],
    [
      "a namespace name that is not a DNS-1123 label",
      { handler: { namespaces: ["team-a", "Team_B"] } },
      "at '/handler/namespaces/1': 'Team_B' does not match pattern",
    ],
    [
      "a namespace listed twice",
      { handler: { namespaces: ["team-a", "team-a"] } },
      "at '/handler/namespaces': items at 0 and 1 are equal",
    ],
    ["namespaces as a string", { handler: { namespaces: "team-a" } }, "at '/handler/namespaces'"],
    [
      "a cert-manager duration",
      { tls: { certManager: { duration: "1y" } } },
      "at '/tls/certManager/duration'",
    ],
  ])("rejects %s with a readable message", (_what, values, message) => {
    const r = template(CHART, { values });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("values don't meet the specifications of the schema");
    expect(r.stderr).toContain(message);
  });
});

describe("the StateHead CRD", () => {
  const withCrds = render(CHART, { extraArgs: ["--include-crds"] });
  const crd = find(withCrds, "CustomResourceDefinition", "stateheads.coordinator-ha.io");

  it("is a namespaced coordinator-ha.io/v1alpha1 StateHead with a structural schema", () => {
    expect(crd.spec).toMatchObject({
      group: "coordinator-ha.io",
      scope: "Namespaced",
      names: { kind: "StateHead", plural: "stateheads", singular: "statehead" },
    });
    expect(crd.spec.versions.map((v: K8sObject) => [v.name, v.served, v.storage])).toEqual([
      ["v1alpha1", true, true],
    ]);
    const spec = crd.spec.versions[0].schema.openAPIV3Schema.properties.spec;
    expect(spec.required).toEqual(["statefulSet", "history", "members"]);
    expect(Object.keys(spec.properties).sort()).toEqual([
      "committed",
      "history",
      "members",
      "proposal",
      "statefulSet",
    ]);
    expect(spec.properties.committed.properties.digest.pattern).toBe("^sha256:[0-9a-f]{64}$");
    expect(spec.properties.history.maxItems).toBe(50);
  });

  it("is shipped in crds/: installed once, never deleted with the release", () => {
    expect(render(CHART).filter((o) => o.kind === "CustomResourceDefinition")).toEqual([]);
  });

  it("is the one custom resource the handler may touch", () => {
    const rules = find(render(CHART), "ClusterRole").rules as { apiGroups: string[]; resources: string[] }[];
    const custom = rules.filter((r) => r.apiGroups.includes(crd.spec.group));
    expect(custom.map((r) => r.resources)).toEqual([[crd.spec.names.plural]]);
  });
});
