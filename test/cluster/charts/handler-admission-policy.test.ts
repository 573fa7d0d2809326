// The handler's ServiceAccount, with a real token for it, against the real apiserver and the
// chart's ValidatingAdmissionPolicy: its ClusterRole allows `patch pods/status` on every pod,
// and the policy narrows that to the coordinator-ha.io/recovered condition of gated,
// selected pods. Every attack of issue 11's finding 3 is tried with the handler's own
// credentials (another namespace's labels through pods/status, a Ready condition, a pod
// without the gate), and the handler's own write (status-patch.ts, through kube/pods.ts)
// still goes through, as does the running handler's.
//
// The pods never run: a nodeSelector that no node matches keeps them Pending, with the
// scheduler's PodScheduled condition as the kubelet-side condition that must stay.
import { randomBytes } from "node:crypto";
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type V1Pod,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AWAITING_NOT_STATEFULSET } from "../../../src/handler/reconcile.ts";
import { conditionPatch } from "../../../src/handler/status-patch.ts";
import { kubePodApi } from "../../../src/kube/pods.ts";
import { Reason, RECOVERED_CONDITION } from "../../../src/names.ts";
import { CHARTS, run, withValues } from "../../charts/helm.ts";
import { createNamespace, deleteNamespace, eventually, kubeConfig } from "../kube.ts";
import { paths } from "../launcher/config.ts";

const env = { KUBECONFIG: paths.kubeconfig };
const NOWHERE = { "coordinator-ha.io/test-node": "nowhere" };

describe("the handler's ServiceAccount under the chart's ValidatingAdmissionPolicy", () => {
  const kc = kubeConfig();
  const admin = kc.makeApiClient(CoreV1Api);
  const release = `cha-${randomBytes(3).toString("hex")}`;
  const handler = `${release}-coordinator-ha-handler`;
  let system: string;
  let app: string;
  let other: string;
  /** The API as the handler: a TokenRequest token of its ServiceAccount. */
  let asHandler: KubeConfig;

  const pod = (name: string, labels: Record<string, string>, gated = false): V1Pod => ({
    metadata: { name, labels },
    spec: {
      nodeSelector: NOWHERE,
      terminationGracePeriodSeconds: 0,
      containers: [{ name: "app", image: "registry.invalid/app:1" }],
      ...(gated ? { readinessGates: [{ conditionType: RECOVERED_CONDITION }] } : {}),
    },
  });

  /** A patch of pods/status as the handler; resolves to the HTTP status and the apiserver's message. */
  const patchAsHandler = async (
    namespace: string,
    name: string,
    body: object,
    strategy: PatchStrategy = PatchStrategy.StrategicMergePatch,
  ): Promise<{ code: number; message: string }> => {
    try {
      await asHandler
        .makeApiClient(CoreV1Api)
        .patchNamespacedPodStatus({ namespace, name, body }, setHeaderOptions("Content-Type", strategy));
      return { code: 200, message: "" };
    } catch (err) {
      if (!(err instanceof ApiException)) throw err;
      const body = (typeof err.body === "string" ? JSON.parse(err.body) : err.body) as { message?: string };
      return { code: err.code, message: body.message ?? "" };
    }
  };

  const condition = (type: string, status: string) => ({
    status: { conditions: [{ type, status, reason: "Attack", message: "set by the handler's token" }] },
  });

  beforeAll(async () => {
    system = await createNamespace(kc, "cha-vap-system");
    app = await createNamespace(kc, "cha-vap-app");
    other = await createNamespace(kc, "cha-vap-other");
    // The default, cluster-wide RBAC (the ClusterRole of finding 3); this release's webhook
    // is confined to the test's namespace, so that no other test file's pods depend on it.
    const values = {
      webhook: {
        replicas: 1,
        namespaceSelector: {
          matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: [app] }],
        },
      },
      handler: { replicas: 1 },
    };
    const r = withValues(values, (args) =>
      run(
        "helm",
        ["install", release, CHARTS.coordinatorHa, "-n", system, "--wait", "--timeout=3m", ...args],
        { env },
      ),
    );
    if (r.status !== 0) throw new Error(`helm install failed:\n${r.stderr}`);

    const token = await admin.createNamespacedServiceAccountToken({
      namespace: system,
      name: handler,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    asHandler = new KubeConfig();
    asHandler.loadFromOptions({
      clusters: [kc.getCurrentCluster()!],
      users: [{ name: "handler", token: token.status!.token }],
      contexts: [{ name: "handler", cluster: kc.getCurrentCluster()!.name, user: "handler" }],
      currentContext: "handler",
    });

    const selected = { "app.kubernetes.io/name": "coordinator" };
    // Injected by the release's webhook: the readiness gate, the sidecar, the volumes.
    await admin.createNamespacedPod({ namespace: app, body: pod("gated", selected) });
    // Selected, but opted out by label: no gate.
    await admin.createNamespacedPod({
      namespace: app,
      body: pod("opted-out", { ...selected, "coordinator-ha.io/inject": "false" }),
    });
    // Gated by hand, but not selected.
    await admin.createNamespacedPod({ namespace: app, body: pod("unselected", { app: "web" }, true) });
    // Another namespace's ordinary pod.
    await admin.createNamespacedPod({ namespace: other, body: pod("web", { app: "web" }) });
    for (const [namespace, name] of [
      [app, "gated"],
      [app, "opted-out"],
      [app, "unselected"],
      [other, "web"],
    ] as const) {
      await eventually(`the scheduler's condition on ${namespace}/${name}`, async () => {
        const p = await admin.readNamespacedPod({ namespace, name });
        return p.status?.conditions?.some((c) => c.type === "PodScheduled") ? true : undefined;
      });
    }
  });

  afterAll(async () => {
    run("helm", ["uninstall", release, "-n", system, "--wait"], { env });
    for (const ns of [app, other, system]) if (ns) await deleteNamespace(kc, ns);
  });

  it("holds the rights that the policy must narrow: RBAC alone lets it patch any pod's status", () => {
    const r = run(
      "kubectl",
      [
        "auth",
        "can-i",
        "patch",
        "pods",
        "--subresource=status",
        "-n",
        other,
        `--as=system:serviceaccount:${system}:${handler}`,
      ],
      { env },
    );
    expect(r.stdout.trim()).toBe("yes");
  });

  it("refuses another namespace's pod: its labels through pods/status, its Ready condition", async () => {
    const labels = await patchAsHandler(other, "web", {
      metadata: { labels: { "app.kubernetes.io/name": "coordinator", role: "leader" } },
    });
    expect(labels.code).toBe(403);
    expect(labels.message).toContain("coordinator-ha handler: only pods with the readiness gate");
    const ready = await patchAsHandler(other, "web", condition("Ready", "True"));
    expect(ready.code).toBe(403);
    expect(ready.message).toContain("coordinator-ha handler:");
    const web = await admin.readNamespacedPod({ namespace: other, name: "web" });
    expect(web.metadata?.labels).toEqual({ app: "web" });
    expect(web.status?.conditions?.map((c) => c.type)).not.toContain("Ready");
  });

  it("refuses everything but the recovered condition on a gated, selected pod", async () => {
    const before = await admin.readNamespacedPod({ namespace: app, name: "gated" });
    expect(before.spec?.readinessGates).toEqual([{ conditionType: RECOVERED_CONDITION }]);

    const attempts: [string, object, string, PatchStrategy?][] = [
      ["labels", { metadata: { labels: { role: "leader" } } }, "metadata (labels, annotations"],
      ["annotations", { metadata: { annotations: { "x.io/a": "b" } } }, "metadata (labels, annotations"],
      ["the Ready condition", condition("Ready", "True"), "Ready and every other condition"],
      ["the scheduler's condition", condition("PodScheduled", "True"), "Ready and every other condition"],
      ["another status field", { status: { message: "hijacked" } }, "every other status field"],
      [
        "the pod IP",
        { status: { podIP: "10.0.0.66", podIPs: [{ ip: "10.0.0.66" }] } },
        "every other status field",
      ],
      [
        "a merge patch that replaces the kubelet's conditions",
        { status: { conditions: [{ type: RECOVERED_CONDITION, status: "True" }] } },
        "Ready and every other condition",
        PatchStrategy.MergePatch,
      ],
    ];
    for (const [what, body, message, strategy] of attempts) {
      const r = await patchAsHandler(app, "gated", body, strategy);
      expect({ what, code: r.code }).toEqual({ what, code: 403 });
      expect(r.message, what).toContain(message);
    }
    const after = await admin.readNamespacedPod({ namespace: app, name: "gated" });
    expect(after.metadata?.labels).toEqual(before.metadata?.labels);
    expect(after.metadata?.annotations).toEqual(before.metadata?.annotations);
    expect(after.status?.podIP).toBeUndefined();
    expect(after.status?.conditions?.filter((c) => c.type !== RECOVERED_CONDITION)).toEqual(
      before.status?.conditions?.filter((c) => c.type !== RECOVERED_CONDITION),
    );
  });

  it("refuses the recovered condition of a pod without the gate, and of a gated pod not selected", async () => {
    const optedOut = await patchAsHandler(app, "opted-out", condition(RECOVERED_CONDITION, "True"));
    expect(optedOut.code).toBe(403);
    expect(optedOut.message).toContain("only pods with the readiness gate coordinator-ha.io/recovered");
    const unselected = await patchAsHandler(app, "unselected", condition(RECOVERED_CONDITION, "True"));
    expect(unselected.code).toBe(403);
    expect(unselected.message).toContain("only pods selected by app.kubernetes.io/name=coordinator");
    const other_ = await patchAsHandler(other, "web", condition(RECOVERED_CONDITION, "True"));
    expect(other_.code).toBe(403);
    for (const [namespace, name] of [
      [app, "opted-out"],
      [app, "unselected"],
      [other, "web"],
    ] as const) {
      const p = await admin.readNamespacedPod({ namespace, name });
      expect(p.status?.conditions?.map((c) => c.type)).not.toContain(RECOVERED_CONDITION);
    }
  });

  it("refuses any other operation on a pod, even one that RBAC was made to grant", async () => {
    // An operator's mistake: a Role that lets the handler's ServiceAccount patch and delete pods.
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: app,
      body: {
        metadata: { name: "too-much" },
        rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["patch", "delete"] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: app,
      body: {
        metadata: { name: "too-much" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "too-much" },
        subjects: [{ kind: "ServiceAccount", name: handler, namespace: system }],
      },
    });
    const pods = asHandler.makeApiClient(CoreV1Api);
    const refusal = (err: unknown) => {
      if (!(err instanceof ApiException)) throw err;
      const body = (typeof err.body === "string" ? JSON.parse(err.body) : err.body) as { message?: string };
      return `${err.code} ${body.message ?? ""}`;
    };
    // Until the authorizer has seen the Role, RBAC answers 403 itself: wait for the policy's answer.
    const patched = await eventually("the policy's refusal of a pod patch", async () => {
      const r = await pods
        .patchNamespacedPod(
          { namespace: app, name: "gated", body: { metadata: { labels: { role: "leader" } } } },
          setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
        )
        .then(() => "200", refusal);
      return r.includes("ValidatingAdmissionPolicy") ? r : undefined;
    });
    expect(patched).toMatch(/^403 /);
    expect(patched).toContain("not UPDATE of pods");
    const deleted = await pods
      .deleteNamespacedPod({ namespace: app, name: "gated" })
      .then(() => "200", refusal);
    expect(deleted).toMatch(/^403 /);
    expect(deleted).toContain("not DELETE of pods");
    expect(
      (await admin.readNamespacedPod({ namespace: app, name: "gated" })).metadata?.labels,
    ).not.toHaveProperty("role");
  });

  it("lets the handler's own strategic-merge patch of the recovered condition through", async () => {
    // The running handler wrote its condition already, through the policy.
    const written = await eventually("the running handler's AwaitingState on app/gated", async () => {
      const p = await admin.readNamespacedPod({ namespace: app, name: "gated" });
      const c = p.status?.conditions?.find((c) => c.type === RECOVERED_CONDITION);
      return c?.message === AWAITING_NOT_STATEFULSET ? p : undefined;
    });
    // The handler's own patch (uid and resourceVersion preconditions), through its own client.
    const result = await kubePodApi(asHandler).patchStatus(
      app,
      "gated",
      conditionPatch(
        written,
        { status: "False", reason: Reason.AwaitingState, message: "written with the handler's token" },
        new Date(),
      ),
    );
    expect(result).toBe("patched");
  });
});
