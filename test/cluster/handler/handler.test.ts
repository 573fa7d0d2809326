// `coordinator-ha handler` as a process on the host, against the real kube-apiserver, with
// nothing but the RBAC that docs/handler.md documents, and with real TokenRequest tokens
// bound to real pods of a real StatefulSet.
//
// The pods never run: a nodeSelector that no node matches keeps them away from the node
// agent (and from the pod garbage collector, which deletes pods bound to missing nodes).
// The test plays the kubelet instead and writes the status fields the handler reads
// (phase, podIP, container restart counts, Ready), so that every step is deterministic.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type V1Pod,
  type V1PodCondition,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PeersResponse } from "../../../src/handler/api.ts";
import { headSpecOf } from "../../../src/handler/head/state-head.ts";
import { AWAITING_NO_PEER, AWAITING_PEER } from "../../../src/handler/reconcile.ts";
import {
  PEER_PORT,
  PEER_PORT_NAME,
  RECOVERED_CONDITION,
  PEER_TOKEN_AUDIENCE,
  SIDECAR_NAME,
  TOKEN_AUDIENCE,
} from "../../../src/names.ts";
import { createCa, issueServingCert, type CertificateAuthority } from "../../../webhook-certs/x509.ts";
import {
  createNamespace,
  deleteNamespace,
  ensureStateHeadCrd,
  eventually,
  kubeConfig,
  requestPodToken,
} from "../kube.ts";

const DIGEST = `sha256:${"5f".repeat(32)}`;
const CERT = "8c".repeat(32);

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

describe("the event handler on the local cluster", () => {
  const kc = kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  /** The member record that the handler wrote into the StatefulSet's StateHead. */
  const memberRecord = async (name: string) =>
    headSpecOf(
      await custom.getNamespacedCustomObject({
        group: "coordinator-ha.io",
        version: "v1alpha1",
        namespace,
        plural: "stateheads",
        name: "coordinator",
      }),
    )?.members[name];
  const strategicMerge = setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch);
  let namespace: string;
  let clusterRole: string;
  let dir: string;
  let ca: CertificateAuthority;
  let handler: ChildProcess | undefined;
  let port = 0;
  const logs: Record<string, unknown>[] = [];
  // A label of its own, so that no other test's webhook (or leftover) selects these pods.
  let app: string;

  const call = (method: string, path: string, token?: string, body?: unknown): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const text = body === undefined ? undefined : JSON.stringify(body);
      const headers: Record<string, string | number> = {};
      if (token) headers["authorization"] = `Bearer ${token}`;
      if (text !== undefined) headers["content-type"] = "application/json";
      const req = request(
        {
          host: "127.0.0.1",
          servername: "localhost",
          port,
          method,
          path,
          ca: ca.certPem,
          agent: false,
          headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const raw = Buffer.concat(chunks).toString("utf8");
            let parsed: Record<string, unknown>;
            try {
              parsed = JSON.parse(raw) as Record<string, unknown>;
            } catch {
              parsed = { text: raw };
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
        },
      );
      req.on("error", reject);
      if (text !== undefined) req.write(text);
      req.end();
    });

  const getPod = (name: string) => core.readNamespacedPod({ namespace, name });
  const recovered = async (name: string): Promise<V1PodCondition | undefined> =>
    (await getPod(name)).status?.conditions?.find((c) => c.type === RECOVERED_CONDITION);

  /** A pod-bound token, as the kubelet projects it into the sidecar. */
  const tokenFor = (pod: V1Pod, audience = TOKEN_AUDIENCE) => requestPodToken(core, pod, [audience]);

  /** Plays the kubelet: the status fields the handler reads. */
  const kubeletStatus = async (name: string, opts: { ready: boolean; restarts: number; ip: string }) => {
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    await core.patchNamespacedPodStatus(
      {
        namespace,
        name,
        body: {
          status: {
            phase: "Running",
            podIP: opts.ip,
            podIPs: [{ ip: opts.ip }],
            conditions: [{ type: "Ready", status: opts.ready ? "True" : "False", lastTransitionTime: now }],
            containerStatuses: [
              {
                name: "app",
                image: "registry.invalid/app:1",
                imageID: "",
                ready: opts.ready,
                restartCount: opts.restarts,
                started: true,
                state: { running: { startedAt: now } },
              },
            ],
          },
        },
      },
      strategicMerge,
    );
  };

  const events = async (pod: string) =>
    (await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${pod}` })).items.filter(
      (e) => e.reportingComponent === "coordinator-ha-handler",
    );

  /** The handler's least-privilege kubeconfig: a service-account token with docs/handler.md's RBAC. */
  const handlerKubeconfig = async (): Promise<string> => {
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: "handler" } } });
    clusterRole = `cha-handler-test-${namespace}`;
    await rbac.createClusterRole({
      body: {
        metadata: { name: clusterRole },
        rules: [
          { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
          { apiGroups: [""], resources: ["pods/status"], verbs: ["patch"] },
          { apiGroups: [""], resources: ["events"], verbs: ["create"] },
          {
            apiGroups: ["coordinator-ha.io"],
            resources: ["stateheads"],
            verbs: ["get", "list", "watch", "create", "update"],
          },
          { apiGroups: ["apps"], resources: ["statefulsets"], verbs: ["get"] },
        ],
      },
    });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: clusterRole },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: clusterRole },
        subjects: [{ kind: "ServiceAccount", name: "handler", namespace }],
      },
    });
    const token = (
      await core.createNamespacedServiceAccountToken({
        namespace,
        name: "handler",
        body: { spec: { audiences: [], expirationSeconds: 3600 } },
      })
    ).status!.token;
    const cluster = kc.getCurrentCluster()!;
    const file = join(dir, "handler.kubeconfig");
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [
          {
            name: "local",
            cluster: { server: cluster.server, "certificate-authority-data": cluster.caData },
          },
        ],
        users: [{ name: "handler", user: { token } }],
        contexts: [{ name: "handler", context: { cluster: "local", user: "handler", namespace } }],
        "current-context": "handler",
      }),
    );
    return file;
  };

  const startHandlerProcess = async (kubeconfig: string): Promise<void> => {
    handler = spawn(
      "node_modules/.bin/node",
      [
        "src/cli.ts",
        "handler",
        "--port",
        "0",
        "--tls-cert",
        join(dir, "tls.crt"),
        "--tls-key",
        join(dir, "tls.key"),
        "--pod-selector",
        `app.kubernetes.io/name=${app}`,
        "--kubeconfig",
        kubeconfig,
        "--log-level",
        "debug",
      ],
      { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, KUBECONFIG: "" } },
    );
    const child = handler;
    const serving = new Promise<number>((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`the handler exited with ${code}`)));
      createInterface(child.stdout!).on("line", (line) => {
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          entry = { msg: line };
        }
        logs.push(entry);
        if (entry["msg"] === "handler serving") resolve(entry["port"] as number);
      });
    });
    port = await serving;
    await eventually("the handler to be ready", async () =>
      (await call("GET", "/readyz")).status === 200 ? true : undefined,
    );
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "cha-handler-"));
    ca = await createCa({ commonName: "handler-test-ca" });
    const serving = await issueServingCert(ca, { dnsNames: ["localhost"], ips: ["127.0.0.1"] });
    writeFileSync(join(dir, "tls.crt"), serving.certPem);
    writeFileSync(join(dir, "tls.key"), serving.keyPem);

    await ensureStateHeadCrd(kc);
    namespace = await createNamespace(kc, "handler");
    app = `coordinator-${namespace}`;
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: "coordinator" } } });
    const kubeconfig = await handlerKubeconfig();
    const labels = { "app.kubernetes.io/name": app };
    await apps.createNamespacedStatefulSet({
      namespace,
      body: {
        metadata: { name: "coordinator" },
        spec: {
          serviceName: "coordinator",
          replicas: 2,
          podManagementPolicy: "Parallel",
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              serviceAccountName: "coordinator",
              nodeSelector: { "coordinator-ha.io/test": "never-scheduled" },
              readinessGates: [{ conditionType: RECOVERED_CONDITION }],
              initContainers: [
                {
                  name: SIDECAR_NAME,
                  image: "registry.invalid/coordinator-ha:test",
                  restartPolicy: "Always",
                  ports: [{ name: PEER_PORT_NAME, containerPort: PEER_PORT }],
                },
              ],
              containers: [{ name: "app", image: "registry.invalid/app:1" }],
            },
          },
        },
      },
    });
    for (const [ordinal, name] of ["coordinator-0", "coordinator-1"].entries()) {
      await eventually(`pod ${name}`, async () =>
        (await core.listNamespacedPod({ namespace })).items.find((p) => p.metadata?.name === name),
      );
      await kubeletStatus(name, { ready: false, restarts: 0, ip: `10.244.0.${200 + ordinal}` });
    }
    await startHandlerProcess(kubeconfig);
  });

  afterAll(async () => {
    if (handler && handler.exitCode === null) {
      const exited = new Promise((resolve) => handler!.once("exit", resolve));
      handler.kill("SIGTERM");
      await exited;
    }
    if (clusterRole) {
      await rbac.deleteClusterRoleBinding({ name: clusterRole }).catch(() => undefined);
      await rbac.deleteClusterRole({ name: clusterRole }).catch(() => undefined);
    }
    if (namespace) await deleteNamespace(kc, namespace);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("tells the waiting pods that no initialized peer exists, and answers an empty peer list", async () => {
    for (const name of ["coordinator-0", "coordinator-1"]) {
      const condition = await eventually(`AwaitingState on ${name}`, async () => {
        const c = await recovered(name);
        return c?.reason === "AwaitingState" ? c : undefined;
      });
      expect(condition).toMatchObject({ status: "False", message: AWAITING_NO_PEER });
    }
    const reply = await call("GET", "/v1/peers", await tokenFor(await getPod("coordinator-1")));
    expect(reply).toMatchObject({ status: 200, body: { namespace, statefulSet: "coordinator", peers: [] } });
  });

  it("marks the first instance Initialized on its confirmation, and records an Event", async () => {
    const pod = await getPod("coordinator-0");
    const reply = await call("POST", "/v1/recovered", await tokenFor(pod), {
      digest: DIGEST,
      source: null,
      certSha256: CERT,
    });
    expect(reply).toMatchObject({ status: 200, body: { changed: true, reason: "Initialized" } });
    const condition = await recovered("coordinator-0");
    expect(condition).toMatchObject({ status: "True", reason: "Initialized" });
    expect(await memberRecord("coordinator-0")).toMatchObject({
      uid: pod.metadata!.uid,
      digest: DIGEST,
      certSha256: CERT,
      source: null,
      restarts: { app: 0 },
    });
    // The kubelet's conditions are still there: the patch merged, it did not replace.
    expect((await getPod("coordinator-0")).status?.conditions?.map((c) => c.type)).toContain("Ready");
    const recorded = await eventually(
      "the Initialized Event",
      async () => (await events("coordinator-0"))[0],
    );
    expect(recorded).toMatchObject({
      type: "Normal",
      reason: "Initialized",
      involvedObject: { uid: pod.metadata!.uid },
    });
  });

  it("hands the Ready, recovered peer out, and tells the other pod to wait for its sidecar", async () => {
    await kubeletStatus("coordinator-0", { ready: true, restarts: 0, ip: "10.244.0.200" });
    await eventually("coordinator-1 to wait for its sidecar", async () =>
      (await recovered("coordinator-1"))?.message === AWAITING_PEER ? true : undefined,
    );
    const reply = await call("GET", "/v1/peers", await tokenFor(await getPod("coordinator-1")));
    expect(reply.status).toBe(200);
    expect((reply.body as unknown as PeersResponse).peers).toEqual([
      {
        pod: "coordinator-0",
        uid: (await getPod("coordinator-0")).metadata!.uid,
        ip: "10.244.0.200",
        port: PEER_PORT,
        digest: DIGEST,
        certSha256: CERT,
      },
    ]);
  });

  it("refuses forged confirmations for coordinator-1, and leaves its gate False", async () => {
    const target = await getPod("coordinator-1");
    // A pod of the same service account and labels, but without the gate: its token is real.
    const intruder = await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: "intruder", labels: { "app.kubernetes.io/name": app } },
        spec: {
          serviceAccountName: "coordinator",
          nodeSelector: { "coordinator-ha.io/test": "never-scheduled" },
          containers: [{ name: "app", image: "registry.invalid/app:1" }],
        },
      },
    });
    const unbound = (
      await core.createNamespacedServiceAccountToken({
        namespace,
        name: "coordinator",
        body: { spec: { audiences: [TOKEN_AUDIENCE], expirationSeconds: 600 } },
      })
    ).status?.token;
    if (!unbound) throw new Error("TokenRequest for the service account returned no token");
    const body = { digest: DIGEST, source: "coordinator-0", certSha256: CERT };
    const attempts: [string, string, number][] = [
      ["a token not bound to a pod", unbound, 401],
      [
        "a token for the apiserver's audience",
        await tokenFor(target, "https://kubernetes.default.svc.cluster.local"),
        401,
      ],
      ["a token of an ungated pod", await tokenFor(intruder), 403],
      // The target's own peer token, as the peer it recovers from holds it: replayed here it
      // would mark coordinator-1 recovered before it has the state.
      ["coordinator-1's peer token", await tokenFor(target, PEER_TOKEN_AUDIENCE), 401],
    ];
    for (const [why, token, status] of attempts) {
      const reply = await call("POST", "/v1/recovered", token, body);
      expect({ why, status: reply.status, error: typeof reply.body["error"] }).toEqual({
        why,
        status,
        error: "string",
      });
    }
    expect(await recovered("coordinator-1")).toMatchObject({ status: "False", reason: "AwaitingState" });
    expect(await events("coordinator-1")).toEqual([]);
  });

  it("marks a pod RecoveredFromPeer, naming the peer and the digest in the Event", async () => {
    const reply = await call("POST", "/v1/recovered", await tokenFor(await getPod("coordinator-1")), {
      digest: DIGEST,
      source: "coordinator-0",
      certSha256: CERT,
    });
    expect(reply).toMatchObject({ status: 200, body: { changed: true, reason: "RecoveredFromPeer" } });
    expect(await recovered("coordinator-1")).toMatchObject({ status: "True", reason: "RecoveredFromPeer" });
    const recorded = await eventually(
      "the RecoveredFromPeer Event",
      async () => (await events("coordinator-1"))[0],
    );
    expect(recorded.reason).toBe("RecoveredFromPeer");
    expect(recorded.message).toBe(`Recovered state ${DIGEST} from peer coordinator-0`);
  });

  it("resets the gate when the app container restarts, and lets the sidecar confirm again", async () => {
    await kubeletStatus("coordinator-1", { ready: true, restarts: 1, ip: "10.244.0.201" });
    const reset = await eventually("AppRestarted on coordinator-1", async () => {
      const c = await recovered("coordinator-1");
      return c?.reason === "AppRestarted" ? c : undefined;
    });
    expect(reset.status).toBe("False");
    expect(reset.message).toContain("App container app restarted");
    const warning = await eventually("the AppRestarted Event", async () =>
      (await events("coordinator-1")).find((e) => e.reason === "AppRestarted"),
    );
    expect(warning.type).toBe("Warning");

    const again = await call("POST", "/v1/recovered", await tokenFor(await getPod("coordinator-1")), {
      digest: DIGEST,
      source: "coordinator-0",
      certSha256: CERT,
    });
    expect(again).toMatchObject({ status: 200, body: { changed: true } });
    const condition = await recovered("coordinator-1");
    expect(condition?.status).toBe("True");
    expect((await memberRecord("coordinator-1"))?.restarts).toEqual({ app: 1 });
  });

  it("refuses the token of a pod that was deleted and recreated", async () => {
    const old = await getPod("coordinator-1");
    const token = await tokenFor(old);
    await core.deleteNamespacedPod({ namespace, name: "coordinator-1", gracePeriodSeconds: 0 });
    await eventually("coordinator-1 to be recreated", async () => {
      const pod = await getPod("coordinator-1").catch(() => undefined);
      return pod && pod.metadata?.uid !== old.metadata?.uid ? pod : undefined;
    });
    const reply = await call("POST", "/v1/recovered", token, {
      digest: DIGEST,
      source: "coordinator-0",
      certSha256: CERT,
    });
    expect(reply.status).toBe(401);
    expect((await recovered("coordinator-1"))?.status).not.toBe("True");
  });

  it("keeps watching across the apiserver's watch timeout, resuming without a relist", async () => {
    // The server ends each watch after 20 s (src/kube/pod-list-watch.ts).
    await eventually(
      "the server to close a watch",
      async () =>
        logs.some((l) => l["msg"] === "pod watch closed" && l["how"] === "closed") ? true : undefined,
      { timeoutMs: 40_000, intervalMs: 500 },
    );
    await kubeletStatus("coordinator-0", { ready: true, restarts: 1, ip: "10.244.0.200" });
    await eventually("AppRestarted on coordinator-0", async () =>
      (await recovered("coordinator-0"))?.reason === "AppRestarted" ? true : undefined,
    );
    const metrics = String((await call("GET", "/metrics")).body["text"]);
    expect(metrics).toMatch(/^coordinator_ha_handler_watch_relists_total 1$/m);
    expect(logs.filter((l) => l["msg"] === "pod watch ended")).toEqual([]);
  });

  it("never logs a token, and names the pod on every line about one", () => {
    const text = JSON.stringify(logs);
    expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}\.eyJ/);
    const written = logs.filter((l) => l["msg"] === "condition written");
    expect(written.length).toBeGreaterThan(0);
    for (const line of written)
      expect(line).toMatchObject({ namespace, pod: expect.stringMatching(/^coordinator-\d$/) });
  });
});
