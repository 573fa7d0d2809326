// The reference Coordinator chart: the StatefulSet and Services that the operator guide and
// the coordinator-ha webhook expect.
import { describe, expect, it } from "vitest";
import {
  COORDINATOR_API_PORT,
  COORDINATOR_PROBE_PORT,
  DEFAULT_POD_SELECTOR,
  DEFAULT_STATE_DIR,
  IMAGE_REPOSITORY,
  SELF_RECOVERY_AUDIENCE,
  SELF_RECOVERY_PORT,
  SELF_RECOVERY_TOKEN_FILE,
} from "../../src/names.ts";
import { basename, dirname } from "node:path";
import { CHARTS, PACKAGE_VERSION, find, kinds, render, run, selects, template } from "./helm.ts";

const CHART = CHARTS.coordinator;

describe("charts/coordinator", () => {
  it("passes helm lint --strict", () => {
    const r = run("helm", ["lint", "--strict", CHART]);
    expect(r.status).toBe(0);
  });

  it("is called coordinator whatever the release is called", () => {
    const objects = render(CHART, { release: "my-release", namespace: "demo" });
    expect(kinds(objects)).toEqual([
      "PodDisruptionBudget/coordinator",
      "Service/coordinator",
      "Service/coordinator-ready",
      "ServiceAccount/coordinator",
      "StatefulSet/coordinator",
    ]);
  });

  it("takes another name from fullnameOverride", () => {
    const objects = render(CHART, { values: { fullnameOverride: "coord" } });
    expect(kinds(objects)).toEqual([
      "PodDisruptionBudget/coord",
      "Service/coord",
      "Service/coord-ready",
      "ServiceAccount/coord",
      "StatefulSet/coord",
    ]);
    expect(find(objects, "StatefulSet").spec.serviceName).toBe("coord");
  });

  it("runs the Coordinator as Contrast does, selected by the webhook's default selector", () => {
    const objects = render(CHART);
    const sts = find(objects, "StatefulSet");
    expect(sts.spec).toMatchObject({
      replicas: 1,
      serviceName: "coordinator",
      podManagementPolicy: "OrderedReady",
      updateStrategy: { type: "RollingUpdate" },
    });
    const pod = sts.spec.template;
    expect(selects({ matchLabels: DEFAULT_POD_SELECTOR }, pod.metadata.labels)).toBe(true);
    expect(selects(sts.spec.selector, pod.metadata.labels)).toBe(true);
    expect(pod.spec.serviceAccountName).toBe("coordinator");
    // No default token in the app container: nothing in the pod needs it (the webhook mounts
    // the sidecar's own API credentials, in the sidecar only). The ServiceAccount has no RBAC
    // beyond the issuer discovery that every ServiceAccount has.
    expect(pod.spec.automountServiceAccountToken).toBe(false);
    expect(find(objects, "ServiceAccount").automountServiceAccountToken).toBe(false);
    expect(objects.filter((o) => o.kind.includes("Role"))).toEqual([]);
    expect(pod.spec.terminationGracePeriodSeconds).toBeLessThanOrEqual(10);
    // A deleted pod serves on until the proxies have dropped its endpoint.
    expect(pod.spec.containers[0].lifecycle).toEqual({ preStop: { sleep: { seconds: 3 } } });
    expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThan(3);

    const c = pod.spec.containers[0];
    expect(c.image).toBe(`${IMAGE_REPOSITORY}:${PACKAGE_VERSION}`);
    expect(c.args).toEqual(["coordinator", "--state-dir", DEFAULT_STATE_DIR]);
    expect(c.ports).toEqual([
      { name: "userapi", containerPort: COORDINATOR_API_PORT, protocol: "TCP" },
      { name: "probes", containerPort: COORDINATOR_PROBE_PORT, protocol: "TCP" },
    ]);
    expect(c.startupProbe).toMatchObject({
      httpGet: { path: "/probe/startup", port: COORDINATOR_PROBE_PORT },
      periodSeconds: 1,
      failureThreshold: 60,
    });
    expect(c.livenessProbe.httpGet).toEqual({ path: "/probe/liveness", port: COORDINATOR_PROBE_PORT });
    expect(c.readinessProbe.httpGet).toEqual({ path: "/probe/readiness", port: COORDINATOR_PROBE_PORT });
    expect(c.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
  });

  it("publishes every pod on coordinator, and only Ready pods on coordinator-ready", () => {
    const objects = render(CHART);
    const pod = find(objects, "StatefulSet").spec.template;
    const all = find(objects, "Service", "coordinator");
    const ready = find(objects, "Service", "coordinator-ready");
    expect(all.spec.publishNotReadyAddresses).toBe(true);
    expect(ready.spec.publishNotReadyAddresses).toBeUndefined();
    for (const svc of [all, ready]) {
      expect(svc.spec.ports).toEqual([
        { name: "userapi", port: COORDINATOR_API_PORT, targetPort: "userapi", protocol: "TCP" },
      ]);
      expect(selects({ matchLabels: svc.spec.selector }, pod.metadata.labels)).toBe(true);
    }
  });

  it("leaves the preStop sleep out when turned off, and on clusters without the sleep action", () => {
    const container = (opts: Parameters<typeof render>[1]) =>
      find(render(CHART, opts), "StatefulSet").spec.template.spec.containers[0];
    expect(container({ values: { preStopSleepSeconds: 0 } }).lifecycle).toBeUndefined();
    expect(container({ extraArgs: ["--kube-version", "1.29.0"] }).lifecycle).toBeUndefined();
    expect(container({ extraArgs: ["--kube-version", "1.30.0"] }).lifecycle).toEqual({
      preStop: { sleep: { seconds: 3 } },
    });
  });

  it("lets a node drain evict one Coordinator at a time", () => {
    const objects = render(CHART);
    const pdb = find(objects, "PodDisruptionBudget");
    expect(pdb.spec.maxUnavailable).toBe(1);
    expect(selects(pdb.spec.selector, find(objects, "StatefulSet").spec.template.metadata.labels)).toBe(true);
    const off = render(CHART, { values: { podDisruptionBudget: { enabled: false } } });
    expect(off.filter((o) => o.kind === "PodDisruptionBudget")).toEqual([]);
  });

  it("rejects values that would break the selection", () => {
    const label = template(CHART, { values: { podLabels: { "app.kubernetes.io/name": "other" } } });
    expect(label.status).not.toBe(0);
    expect(label.stderr).toContain("podLabels must not set app.kubernetes.io/name");

    const replicas = template(CHART, { values: { replicas: -1 } });
    expect(replicas.stderr).toContain("at '/replicas': minimum: got -1, want 0");
  });
  it("recovery.mode self: the guide's own mechanism, with get/list pods and its own token", () => {
    const objects = render(CHART, {
      release: "r",
      namespace: "demo",
      values: { recovery: { mode: "self", periodSeconds: 7 } },
    });
    expect(kinds(objects)).toContain("Role/coordinator-self-recovery");
    const role = find(objects, "Role");
    expect(role.rules).toEqual([{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list"] }]);
    const binding = find(objects, "RoleBinding");
    expect(binding.roleRef.name).toBe("coordinator-self-recovery");
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: "coordinator", namespace: "demo" }]);
    const sts = find(objects, "StatefulSet");
    const pod = sts.spec.template.spec;
    expect(pod.automountServiceAccountToken).toBe(true);
    const c = pod.containers[0];
    expect(c.args).toEqual([
      "coordinator",
      "--state-dir",
      DEFAULT_STATE_DIR,
      "--recovery",
      "self",
      "--recovery-period",
      "7",
      "--pod-selector",
      "app.kubernetes.io/name=coordinator,app.kubernetes.io/instance=r",
    ]);
    // The selector it lists pods by is the StatefulSet's.
    expect(sts.spec.selector.matchLabels).toEqual({
      "app.kubernetes.io/name": "coordinator",
      "app.kubernetes.io/instance": "r",
    });
    expect(c.env.map((e: { name: string }) => e.name)).toEqual([
      "POD_NAME",
      "POD_NAMESPACE",
      "POD_UID",
      "SERVICE_ACCOUNT",
    ]);
    expect(c.ports.map((p: { containerPort: number }) => p.containerPort)).toContain(SELF_RECOVERY_PORT);
    expect(c.volumeMounts).toEqual([
      { name: "state", mountPath: DEFAULT_STATE_DIR },
      { name: "self-recovery-token", mountPath: dirname(SELF_RECOVERY_TOKEN_FILE), readOnly: true },
    ]);
    expect(pod.volumes[1].projected.sources[0].serviceAccountToken).toMatchObject({
      audience: SELF_RECOVERY_AUDIENCE,
      path: basename(SELF_RECOVERY_TOKEN_FILE),
    });
    // Same probes as the other modes: what the benchmark compares.
    expect(c.readinessProbe).toEqual(
      find(render(CHART), "StatefulSet").spec.template.spec.containers[0].readinessProbe,
    );
  });

  it("recovery.mode floor: no state recovered, no RBAC, no token, its own state volume", () => {
    const objects = render(CHART, { values: { recovery: { mode: "floor" } } });
    expect(objects.filter((o) => o.kind === "Role" || o.kind === "RoleBinding")).toEqual([]);
    const pod = find(objects, "StatefulSet").spec.template.spec;
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.containers[0].args).toEqual([
      "coordinator",
      "--state-dir",
      DEFAULT_STATE_DIR,
      "--recovery",
      "floor",
    ]);
    expect(pod.volumes).toEqual([{ name: "state", emptyDir: { medium: "Memory" } }]);
  });

  it("the default (coordinator-ha) has no RBAC and no volume of its own: the webhook mounts the state", () => {
    const objects = render(CHART);
    expect(objects.filter((o) => o.kind === "Role" || o.kind === "RoleBinding")).toEqual([]);
    const pod = find(objects, "StatefulSet").spec.template.spec;
    expect(pod.volumes).toBeUndefined();
    expect(pod.containers[0].volumeMounts).toBeUndefined();
    expect(template(CHART, { values: { recovery: { mode: "bogus" } } }).stderr).toContain(
      "value must be one of 'coordinator-ha', 'self', 'floor'",
    );
  });
});
