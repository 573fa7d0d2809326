import { describe, expect, it } from "vitest";
import type { ConfigMap, Container, Pod, Secret, Service } from "../../cluster/agent/kube/wire.ts";
import { ContainerConfigError, expand, resolveEnv, type EnvSources } from "../../cluster/agent/pod/env.ts";
import { parseQuantity } from "../../cluster/agent/pod/quantity.ts";

const pod: Pod = {
  metadata: {
    name: "web-0",
    namespace: "app",
    uid: "u-1",
    labels: { b: "2", a: 'say "hi"' },
    annotations: { note: "x" },
  },
  spec: { nodeName: "local-node", serviceAccountName: "sa", containers: [] },
};

const kubernetes: Service = {
  metadata: { name: "kubernetes", namespace: "default" },
  spec: { clusterIP: "10.96.0.1", ports: [{ name: "https", port: 443, protocol: "TCP" }] },
};
const web: Service = {
  metadata: { name: "web-svc", namespace: "app" },
  spec: { clusterIP: "10.96.0.20", ports: [{ port: 80 }] },
};

function sources(more: Partial<EnvSources> = {}): EnvSources {
  return {
    configMaps: new Map<string, ConfigMap | null>([["cfg", { data: { LEVEL: "debug", MODE: "fast" } }]]),
    secrets: new Map<string, Secret | null>([
      ["sec", { data: { PASSWORD: Buffer.from("s3cret").toString("base64") } }],
    ]),
    services: [kubernetes, web],
    podIPs: ["10.244.0.7"],
    hostIP: "10.244.0.1",
    allocatable: { cpu: "2", memory: "4Gi", "ephemeral-storage": "10Gi" },
    ...more,
  };
}

const container = (c: Partial<Container>): Container => ({ name: "c", image: "busybox", ...c });

describe("container environment", () => {
  it("links the apiserver's Service always, as the kubelet does", () => {
    const env = resolveEnv(
      { ...pod, spec: { ...pod.spec!, enableServiceLinks: false } },
      container({}),
      sources(),
    );
    expect(env.get("KUBERNETES_SERVICE_HOST")).toBe("10.96.0.1");
    expect(env.get("KUBERNETES_SERVICE_PORT")).toBe("443");
    expect(env.get("KUBERNETES_SERVICE_PORT_HTTPS")).toBe("443");
    expect(env.get("KUBERNETES_PORT")).toBe("tcp://10.96.0.1:443");
    expect(env.get("KUBERNETES_PORT_443_TCP_ADDR")).toBe("10.96.0.1");
    expect(env.has("WEB_SVC_SERVICE_HOST")).toBe(false);
  });

  it("links the pod's namespace's Services with service links on", () => {
    const env = resolveEnv(pod, container({}), sources());
    expect(env.get("WEB_SVC_SERVICE_HOST")).toBe("10.96.0.20");
    expect(env.get("WEB_SVC_PORT_80_TCP")).toBe("tcp://10.96.0.20:80");
  });

  it("resolves envFrom, then env (which wins), with $(VAR) expansion", () => {
    const env = resolveEnv(
      pod,
      container({
        envFrom: [{ configMapRef: { name: "cfg" }, prefix: "CFG_" }, { secretRef: { name: "sec" } }],
        env: [
          { name: "CFG_MODE", value: "slow" },
          { name: "URL", value: "http://$(KUBERNETES_SERVICE_HOST):$(PORT)/$(CFG_LEVEL)$$(NOT)" },
        ],
      }),
      sources(),
    );
    expect(env.get("CFG_LEVEL")).toBe("debug");
    expect(env.get("CFG_MODE")).toBe("slow");
    expect(env.get("PASSWORD")).toBe("s3cret");
    expect(env.get("URL")).toBe("http://10.96.0.1:$(PORT)/debug$(NOT)");
  });

  it("resolves the downward API fields", () => {
    const fields = [
      "metadata.name",
      "metadata.namespace",
      "metadata.uid",
      "metadata.labels",
      "metadata.annotations",
      "metadata.labels['b']",
      "spec.nodeName",
      "spec.serviceAccountName",
      "status.podIP",
      "status.hostIP",
    ];
    const env = resolveEnv(
      pod,
      container({
        env: fields.map((f, i) => ({ name: `F${i}`, valueFrom: { fieldRef: { fieldPath: f } } })),
      }),
      sources(),
    );
    expect(fields.map((_, i) => env.get(`F${i}`))).toEqual([
      "web-0",
      "app",
      "u-1",
      'a="say \\"hi\\""\nb="2"',
      'note="x"',
      "2",
      "local-node",
      "sa",
      "10.244.0.7",
      "10.244.0.1",
    ]);
  });

  it("resolves resourceFieldRef, defaulting limits to the node's allocatable", () => {
    const env = resolveEnv(
      pod,
      container({
        resources: { requests: { cpu: "250m", memory: "64Mi" } },
        env: [
          { name: "CPU_LIMIT", valueFrom: { resourceFieldRef: { resource: "limits.cpu" } } },
          { name: "CPU_REQ_M", valueFrom: { resourceFieldRef: { resource: "requests.cpu", divisor: "1m" } } },
          { name: "CPU_REQ", valueFrom: { resourceFieldRef: { resource: "requests.cpu" } } },
          {
            name: "MEM_MI",
            valueFrom: { resourceFieldRef: { resource: "requests.memory", divisor: "1Mi" } },
          },
          { name: "MEM_LIMIT", valueFrom: { resourceFieldRef: { resource: "limits.memory" } } },
        ],
      }),
      sources(),
    );
    expect(env.get("CPU_LIMIT")).toBe("2");
    expect(env.get("CPU_REQ_M")).toBe("250");
    expect(env.get("CPU_REQ")).toBe("1");
    expect(env.get("MEM_MI")).toBe("64");
    expect(env.get("MEM_LIMIT")).toBe(String(4 * 2 ** 30));
  });

  it("reports missing references as the kubelet does, and skips optional ones", () => {
    const src = sources({
      configMaps: new Map([
        ["cfg", { data: {} }],
        ["gone", null],
      ]),
    });
    const missingKey = container({
      env: [{ name: "X", valueFrom: { configMapKeyRef: { name: "cfg", key: "K" } } }],
    });
    expect(() => resolveEnv(pod, missingKey, src)).toThrow(
      new ContainerConfigError("couldn't find key K in ConfigMap app/cfg"),
    );
    const missingMap = container({ envFrom: [{ configMapRef: { name: "gone" } }] });
    expect(() => resolveEnv(pod, missingMap, src)).toThrow('configmap "gone" not found');
    const optional = container({
      envFrom: [{ configMapRef: { name: "gone", optional: true } }],
      env: [{ name: "X", valueFrom: { secretKeyRef: { name: "nope", key: "k", optional: true } } }],
    });
    expect(resolveEnv(pod, optional, { ...src, secrets: new Map([["nope", null]]) }).has("X")).toBe(false);
  });
});

describe("$(VAR) expansion", () => {
  const lookup = (n: string) => ({ A: "1", B: "" })[n];
  it.each([
    ["$(A)", "1"],
    ["$(B)x", "x"],
    ["$(C)", "$(C)"],
    ["$$(A)", "$(A)"],
    ["$$", "$"],
    ["a$", "a$"],
    ["$x", "$x"],
    ["$(A", "$(A"],
    ["$()", "$()"],
  ])("%s -> %s", (input, out) => expect(expand(input, lookup)).toBe(out));
});

describe("quantities", () => {
  it.each([
    ["100m", 0.1],
    ["2", 2],
    ["1Ki", 1024],
    ["1.5Gi", 1.5 * 2 ** 30],
    ["1e3", 1000],
    ["5M", 5e6],
  ])("%s = %d", (q, v) => expect(parseQuantity(q)).toBeCloseTo(v));
  it("rejects nonsense", () => expect(() => parseQuantity("1 GB")).toThrow('invalid quantity "1 GB"'));
});
