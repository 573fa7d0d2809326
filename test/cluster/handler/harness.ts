// What the handler's cluster tests share: `coordinator-ha handler` as processes on the host,
// against the real kube-apiserver, with nothing but the RBAC of docs/handler.md; a gated
// StatefulSet whose pods never run (a nodeSelector that no node matches keeps them away from
// the node agent and from the pod garbage collector), so that the test plays the kubelet and
// writes the status fields the handler reads; and HTTPS calls with real TokenRequest tokens.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
  type KubeConfig,
  type V1Pod,
} from "@kubernetes/client-node";
import { headSpecOf, type HeadSpec } from "../../../src/handler/head/state-head.ts";
import {
  PEER_PORT,
  PEER_PORT_NAME,
  RECOVERED_CONDITION,
  SIDECAR_NAME,
  TOKEN_AUDIENCE,
} from "../../../src/names.ts";
import { createCa, issueServingCert, type CertificateAuthority } from "../../../webhook-certs/x509.ts";
import {
  createNamespace,
  deleteNamespace,
  ensureStateHeadCrd,
  eventually,
  requestPodToken,
} from "../kube.ts";

export interface Reply {
  status: number;
  body: Record<string, unknown>;
}

export interface HandlerProcess {
  port: number;
  pid: number;
  /** Every log line, parsed. */
  logs: Record<string, unknown>[];
  call(method: string, path: string, token?: string, body?: unknown): Promise<Reply>;
  stop(): Promise<void>;
}

/** The rules docs/handler.md gives the handler (the chart's ClusterRole). */
export const HANDLER_RULES = [
  { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
  { apiGroups: [""], resources: ["pods/status"], verbs: ["patch"] },
  { apiGroups: [""], resources: ["events"], verbs: ["create"] },
  {
    apiGroups: ["coordinator-ha.io"],
    resources: ["stateheads"],
    verbs: ["get", "list", "watch", "create", "update"],
  },
  { apiGroups: ["apps"], resources: ["statefulsets"], verbs: ["get"] },
];

export class HandlerEnv {
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly custom: CustomObjectsApi;
  private readonly rbac: RbacAuthorizationV1Api;
  namespace = "";
  /** The label value that selects this test's pods (and no other test's). */
  app = "";
  kubeconfig = "";
  private dir = "";
  private ca: CertificateAuthority | undefined;
  private clusterRole = "";
  private readonly handlers: HandlerProcess[] = [];
  private readonly kc: KubeConfig;

  constructor(kc: KubeConfig) {
    this.kc = kc;
    this.core = kc.makeApiClient(CoreV1Api);
    this.apps = kc.makeApiClient(AppsV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  }

  /** A namespace, the StateHead CRD, serving certificates, and the handler's least-privilege kubeconfig. */
  async setUp(prefix: string): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), "cha-handler-"));
    this.ca = await createCa({ commonName: "handler-test-ca" });
    const serving = await issueServingCert(this.ca, { dnsNames: ["localhost"], ips: ["127.0.0.1"] });
    writeFileSync(join(this.dir, "tls.crt"), serving.certPem);
    writeFileSync(join(this.dir, "tls.key"), serving.keyPem);
    await ensureStateHeadCrd(this.kc);
    this.namespace = await createNamespace(this.kc, prefix);
    this.app = `coordinator-${this.namespace}`;
    await this.core.createNamespacedServiceAccount({
      namespace: this.namespace,
      body: { metadata: { name: "coordinator" } },
    });
    this.kubeconfig = await this.handlerKubeconfig();
  }

  async tearDown(): Promise<void> {
    for (const handler of this.handlers) await handler.stop();
    if (this.clusterRole) {
      await this.rbac.deleteClusterRoleBinding({ name: this.clusterRole }).catch(() => undefined);
      await this.rbac.deleteClusterRole({ name: this.clusterRole }).catch(() => undefined);
    }
    if (this.namespace) await deleteNamespace(this.kc, this.namespace);
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** StatefulSet "coordinator" (Parallel), gated, its pods never scheduled; resolves once they exist. */
  async createStatefulSet(replicas: number): Promise<void> {
    const labels = { "app.kubernetes.io/name": this.app };
    await this.apps.createNamespacedStatefulSet({
      namespace: this.namespace,
      body: {
        metadata: { name: "coordinator" },
        spec: {
          serviceName: "coordinator",
          replicas,
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
    for (let ordinal = 0; ordinal < replicas; ordinal++) {
      const name = `coordinator-${ordinal}`;
      await eventually(`pod ${name}`, async () =>
        (await this.core.listNamespacedPod({ namespace: this.namespace })).items.find(
          (p) => p.metadata?.name === name,
        ),
      );
      await this.kubeletStatus(name, { ready: false, restarts: 0, ip: `10.244.0.${200 + ordinal}` });
    }
  }

  getPod(name: string): Promise<V1Pod> {
    return this.core.readNamespacedPod({ namespace: this.namespace, name });
  }

  async recovered(name: string) {
    return (await this.getPod(name)).status?.conditions?.find((c) => c.type === RECOVERED_CONDITION);
  }

  /** A pod-bound token, as the kubelet projects it into the sidecar. */
  tokenFor(pod: V1Pod, audience = TOKEN_AUDIENCE): Promise<string> {
    return requestPodToken(this.core, pod, [audience]);
  }

  /** The StateHead of StatefulSet "coordinator", as the apiserver has it now. */
  async head(): Promise<HeadSpec | undefined> {
    try {
      return headSpecOf(
        await this.custom.getNamespacedCustomObject({
          group: "coordinator-ha.io",
          version: "v1alpha1",
          namespace: this.namespace,
          plural: "stateheads",
          name: "coordinator",
        }),
      );
    } catch {
      return undefined;
    }
  }

  /** Plays the kubelet: the status fields the handler reads. */
  async kubeletStatus(name: string, opts: { ready: boolean; restarts: number; ip: string }): Promise<void> {
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    await this.core.patchNamespacedPodStatus(
      {
        namespace: this.namespace,
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
      setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
    );
  }

  async events(pod: string) {
    return (
      await this.core.listNamespacedEvent({
        namespace: this.namespace,
        fieldSelector: `involvedObject.name=${pod}`,
      })
    ).items.filter((e) => e.reportingComponent === "coordinator-ha-handler");
  }

  /**
   * A handler process with the least-privilege kubeconfig; resolves once it is ready.
   * `server`: reach the apiserver at this URL instead (a proxy in between, for a fault test);
   * `script`: the CLI to run (the build's dist/cli.js for a benchmark; default the sources);
   * `logLevel`: default debug;
   * `wrap`: turns the command line into the one to run (a benchmark's memory cgroup).
   */
  async startHandler(
    opts: { server?: string; script?: string; logLevel?: string; wrap?: (argv: string[]) => string[] } = {},
  ): Promise<HandlerProcess> {
    const logs: Record<string, unknown>[] = [];
    let kubeconfig = this.kubeconfig;
    if (opts.server) {
      const config = JSON.parse(readFileSync(this.kubeconfig, "utf8")) as {
        clusters: { cluster: { server: string } }[];
      };
      config.clusters[0]!.cluster.server = opts.server;
      kubeconfig = join(this.dir, `handler-${this.handlers.length}.kubeconfig`);
      writeFileSync(kubeconfig, JSON.stringify(config));
    }
    const [command, ...args] = (opts.wrap ?? ((argv: string[]) => argv))([
      "node_modules/.bin/node",
      opts.script ?? "src/cli.ts",
      "handler",
      "--port",
      "0",
      "--tls-cert",
      join(this.dir, "tls.crt"),
      "--tls-key",
      join(this.dir, "tls.key"),
      "--pod-selector",
      `app.kubernetes.io/name=${this.app}`,
      "--kubeconfig",
      kubeconfig,
      "--log-level",
      opts.logLevel ?? "debug",
    ]);
    const child: ChildProcess = spawn(command!, args, {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, KUBECONFIG: "" },
    });
    const port = await new Promise<number>((resolve, reject) => {
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
    const ca = this.ca!;
    const handler: HandlerProcess = {
      port,
      pid: child.pid!,
      logs,
      call: (method, path, token, body) => call(ca, port, method, path, token, body),
      stop: async () => {
        if (child.exitCode !== null) return;
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await exited;
      },
    };
    this.handlers.push(handler);
    await eventually("the handler to be ready", async () =>
      (await handler.call("GET", "/readyz")).status === 200 ? true : undefined,
    );
    return handler;
  }

  /** A service-account token with the handler's rules, in a kubeconfig of its own. */
  private async handlerKubeconfig(): Promise<string> {
    const namespace = this.namespace;
    await this.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: "handler" } } });
    this.clusterRole = `cha-handler-test-${namespace}`;
    await this.rbac.createClusterRole({
      body: { metadata: { name: this.clusterRole }, rules: HANDLER_RULES },
    });
    await this.rbac.createClusterRoleBinding({
      body: {
        metadata: { name: this.clusterRole },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: this.clusterRole },
        subjects: [{ kind: "ServiceAccount", name: "handler", namespace }],
      },
    });
    const token = (
      await this.core.createNamespacedServiceAccountToken({
        namespace,
        name: "handler",
        body: { spec: { audiences: [], expirationSeconds: 3600 } },
      })
    ).status!.token;
    const cluster = this.kc.getCurrentCluster()!;
    const file = join(this.dir, "handler.kubeconfig");
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
  }
}

function call(
  ca: CertificateAuthority,
  port: number,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
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
}
