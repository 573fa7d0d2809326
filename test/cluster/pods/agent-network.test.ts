// Pod networking: every pod has its own address (two pods serve the same port), Services
// resolve by name through the pod's hosts file, and the NAT rules send ClusterIP traffic to
// ready endpoints, from pods (a pod reaching itself included) and from the host.
import { request } from "node:http";
import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespace, deleteNamespace, eventually, kubeConfig } from "../kube.ts";
import { containerLog, createPod, isReady, waitForPod, type PodSpec } from "./pods.ts";

/** A server on 8080 that answers with the pod's hostname, and its readiness probe. */
const server = (): PodSpec => ({
  terminationGracePeriodSeconds: 1,
  containers: [
    {
      name: "server",
      image: "node:24",
      command: [
        "node",
        "-e",
        "require('http').createServer((q, r) => r.end(require('os').hostname())).listen(8080)",
      ],
      ports: [{ name: "http", containerPort: 8080 }],
      readinessProbe: { httpGet: { path: "/", port: "http" }, periodSeconds: 1 },
    },
  ],
});

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // No keep-alive: each request is a new connection, so it meets the current NAT rules.
    const req = request(url, { timeout: 5000, agent: false }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve(body));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error(`GET ${url} timed out`)));
    req.end();
  });
}

describe("pod network and Services", () => {
  const kc = kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  let namespace: string;

  beforeAll(async () => {
    namespace = await createNamespace(kc, "agent-net");
  });
  afterAll(async () => {
    if (namespace) await deleteNamespace(kc, namespace);
  });

  it("gives each pod its own address, so that two pods serve the same port", async () => {
    await createPod(kc, namespace, "one", server(), { app: "echo" });
    await createPod(kc, namespace, "two", server(), { app: "echo" });
    const one = await waitForPod(kc, namespace, "one", "Ready", isReady);
    const two = await waitForPod(kc, namespace, "two", "Ready", isReady);
    expect(one.status?.podIP).toMatch(/^10\.244\.0\.\d+$/);
    expect(one.status?.podIP).not.toBe(two.status?.podIP);
    expect(one.status?.podIPs).toEqual([{ ip: one.status?.podIP }]);
    expect(one.status?.hostIP).toBe("10.244.0.1");
    expect(await get(`http://${one.status!.podIP}:8080/`)).toBe("one");
    expect(await get(`http://${two.status!.podIP}:8080/`)).toBe("two");
  });

  it("lets a pod reach another through a Service name, and the host through its ClusterIP", async () => {
    const svc = await core.createNamespacedService({
      namespace,
      body: {
        metadata: { name: "echo" },
        spec: { selector: { app: "echo" }, ports: [{ port: 80, targetPort: "http" }] },
      },
    });
    const clusterIP = svc.spec!.clusterIP!;
    const answers = await eventually("both endpoints answering the ClusterIP", async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 20; i++) seen.add(await get(`http://${clusterIP}/`));
      return seen.size === 2 ? seen : undefined;
    });
    expect([...answers].sort()).toEqual(["one", "two"]);

    await createPod(kc, namespace, "client", {
      terminationGracePeriodSeconds: 1,
      restartPolicy: "Never",
      containers: [
        {
          name: "client",
          image: "node:24",
          command: [
            "node",
            "-e",
            `const get = (u) => new Promise((ok, ko) => require('http').get(u, (r) => { let b = ''; r.on('data', (d) => b += d); r.on('end', () => ok(b)); }).on('error', ko));
               (async () => {
                 for (const u of ['http://echo/', 'http://echo.${namespace}/', 'http://echo.${namespace}.svc.cluster.local/']) console.log(u, await get(u));
               })().catch((e) => { console.error(e.message); process.exit(1); });`,
          ],
        },
      ],
    });
    const done = await waitForPod(
      kc,
      namespace,
      "client",
      "completed",
      (p) => p.status?.phase === "Succeeded" || p.status?.phase === "Failed",
    );
    const log = containerLog(namespace, "client", "client");
    expect(done.status?.phase, log).toBe("Succeeded");
    expect(log).toMatch(/^http:\/\/echo\/ (one|two)$/m);
    expect(log).toMatch(new RegExp(`^http://echo\\.${namespace}\\.svc\\.cluster\\.local/ (one|two)$`, "m"));
  });

  it("lets a pod reach itself through its own Service (hairpin)", async () => {
    await core.createNamespacedService({
      namespace,
      body: {
        metadata: { name: "self" },
        spec: { selector: { app: "self" }, ports: [{ port: 80, targetPort: 8080 }] },
      },
    });
    const spec = server();
    spec.containers[0]!.command = [
      "node",
      "-e",
      `require('http').createServer((q, r) => r.end('me')).listen(8080);
       setInterval(() => require('http').get('http://self/', (r) => { let b = ''; r.on('data', (d) => b += d); r.on('end', () => console.log('via service:', b)); }).on('error', (e) => console.log('error:', e.message)), 500);`,
    ];
    await createPod(kc, namespace, "hairpin", spec, { app: "self" });
    await waitForPod(kc, namespace, "hairpin", "Ready", isReady);
    await eventually(
      "the pod's own answer through its Service",
      async () =>
        containerLog(namespace, "hairpin", "server").includes("via service: me") ? true : undefined,
      { timeoutMs: 15_000 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; the pod's log:\n${containerLog(namespace, "hairpin", "server")}`);
    });
  });

  it("sends traffic only to ready endpoints, unless the Service publishes not-ready addresses", async () => {
    const spec = server();
    spec.containers[0]!.readinessProbe = { exec: { command: ["false"] }, periodSeconds: 1 };
    await createPod(kc, namespace, "unready", spec, { app: "unready" });
    const ports = [{ port: 80, targetPort: 8080 }];
    const plain = await core.createNamespacedService({
      namespace,
      body: { metadata: { name: "plain" }, spec: { selector: { app: "unready" }, ports } },
    });
    const published = await core.createNamespacedService({
      namespace,
      body: {
        metadata: { name: "published" },
        spec: { selector: { app: "unready" }, ports, publishNotReadyAddresses: true },
      },
    });
    await waitForPod(
      kc,
      namespace,
      "unready",
      "running",
      (p) => !!p.status?.containerStatuses?.[0]?.state?.running,
    );
    expect(
      await eventually("the not-ready pod through the publishing Service", () =>
        get(`http://${published.spec!.clusterIP}/`).catch(() => undefined),
      ),
    ).toBe("unready");
    // Without endpoints the port is rejected, so the client fails at once instead of timing out.
    await expect(get(`http://${plain.spec!.clusterIP}/`)).rejects.toThrow(/ECONNREFUSED/);
  });
});
