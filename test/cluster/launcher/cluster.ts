// Starting and stopping the local cluster: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler on the host, and the worker nodes (kubelet, containerd, kube-proxy each,
// launcher/nodes.ts) with CoreDNS. See test/cluster/README.md.
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { stringify } from "yaml";
import {
  REPO_ROOT,
  APISERVER_URL,
  BUILD_SCRIPT,
  SETUP_HOST_SCRIPT,
  CLUSTER_NAME,
  COMPONENTS,
  SERVICE_ACCOUNT_ISSUER,
  SERVICE_CIDR,
  STATE_DIR,
  NODE_NETWORK,
  CLUSTER_DNS_IP,
  WORKERS,
  paths,
  ports,
  type Component,
} from "./config.ts";
import { FRONT_PROXY_CLIENT, createNodeCerts, createPki, type Pki } from "./pki.ts";
import { buildImages, nodeStack, type NodeStack } from "./node-stack.ts";
import { createHostNetwork, startNodes, stopNodes, type NodeCerts } from "./nodes.ts";
import { hostState } from "./host-state.ts";
import { findListeners } from "./ports.ts";
import {
  killStrays,
  readProcess,
  runningComponent,
  spawnDetached,
  stopComponent,
  waitReaped,
} from "./processes.ts";
import { httpsGet, waitFor, type Check } from "./wait.ts";

export type Log = (msg: string) => void;

export interface UpOptions {
  /** Start the worker nodes and CoreDNS. Default true; without them pods stay Pending. */
  nodes?: boolean;
  log: Log;
  signal?: AbortSignal;
}

export interface UpResult {
  kubeconfig: string;
  /** Where kubectl, helm and the control-plane binaries are. */
  binDir: string;
  /** True when a running cluster was found and left as it was. */
  reused: boolean;
}

/** Controllers of kube-controller-manager; why some are left out is in the README. */
export const CONTROLLERS = [
  "statefulset-controller",
  "deployment-controller",
  "replicaset-controller",
  "replicationcontroller-controller",
  "daemonset-controller",
  "job-controller",
  "cronjob-controller",
  "endpoints-controller",
  "endpointslice-controller",
  "endpointslice-mirroring-controller",
  "serviceaccount-controller",
  "serviceaccount-token-controller",
  "legacy-serviceaccount-token-cleaner-controller",
  "garbage-collector-controller",
  "namespace-controller",
  "disruption-controller",
  "root-ca-certificate-publisher-controller",
  "pod-garbage-collector-controller",
  "ttl-controller",
  "ttl-after-finished-controller",
  "resourcequota-controller",
  "clusterrole-aggregation-controller",
  "node-lifecycle-controller",
  "certificatesigningrequest-approving-controller",
  "certificatesigningrequest-signing-controller",
  "certificatesigningrequest-cleaner-controller",
  "persistentvolumeclaim-protection-controller",
  "persistentvolume-protection-controller",
  "service-cidr-controller",
  "validatingadmissionpolicy-status-controller",
];

const LOG_FILES: Record<Component, string> = {
  etcd: join(paths.logs, "etcd.log"),
  "kube-apiserver": join(paths.logs, "kube-apiserver.log"),
  "kube-controller-manager": join(paths.logs, "kube-controller-manager.log"),
  "kube-scheduler": join(paths.logs, "kube-scheduler.log"),
};

/** How long each component may take to shut down before it is killed. */
const GRACE_MS: Record<Component, number> = {
  etcd: 10_000,
  "kube-apiserver": 15_000,
  "kube-controller-manager": 10_000,
  "kube-scheduler": 10_000,
};

export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error(
      `the local cluster needs root: it creates the bridge ${NODE_NETWORK.bridge}, and a network ` +
        "namespace, cgroups and mounts per worker node. Run it as root (sudo -E npm run cluster:up).",
    );
  }
}

// ---- lock ------------------------------------------------------------------------------

async function acquireLock(log: Log, signal?: AbortSignal): Promise<void> {
  mkdirSync(STATE_DIR, { recursive: true });
  let reported = false;
  for (;;) {
    try {
      writeFileSync(paths.lock, `${process.pid}\n`, { flag: "wx" });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = Number(readFileSync(paths.lock, "utf8").trim());
    // An empty lock is one being written right now, unless its writer died doing so.
    const stale = holder > 0 ? !readProcess(holder) : Date.now() - statSync(paths.lock).mtimeMs > 10_000;
    if (stale) {
      rmSync(paths.lock, { force: true });
      continue;
    }
    if (!reported) log(`another cluster:up (pid ${holder || "?"}) is running: waiting for it to finish ...`);
    reported = true;
    await sleep(1000, undefined, { signal });
  }
}

function releaseLock(): void {
  try {
    if (readFileSync(paths.lock, "utf8").trim() === String(process.pid)) rmSync(paths.lock);
    // A start refused before it began (a port in use) leaves nothing.
    if (readdirSync(STATE_DIR).length === 0) rmSync(STATE_DIR, { recursive: true });
  } catch {
    // Already gone: cluster:down removed the state directory.
  }
}

// ---- state -----------------------------------------------------------------------------

/** The components that have a pid file, i.e. that the last cluster:up started. */
function startedComponents(): Component[] {
  let files: string[];
  try {
    files = readdirSync(paths.pids);
  } catch {
    return [];
  }
  return COMPONENTS.filter((c) => files.includes(`${c}.pid`));
}

export type ClusterState =
  | { state: "stopped" }
  | { state: "running" }
  | { state: "broken"; running: Component[]; dead: Component[]; reason: string };

/** Whether a cluster started from this checkout runs and answers. */
export async function clusterState(): Promise<ClusterState> {
  const started = startedComponents();
  const running = started.filter((c) => runningComponent(c) !== undefined);
  const dead = started.filter((c) => !running.includes(c));
  if (running.length === 0) return { state: "stopped" };
  if (dead.length > 0) return { state: "broken", running, dead, reason: `${dead.join(", ")} not running` };
  if (!existsSync(paths.kubeconfig)) {
    return { state: "broken", running, dead, reason: "no kubeconfig (a cluster:up did not finish)" };
  }
  try {
    const res = await httpsGet(`${APISERVER_URL}/readyz`, {
      ca: readFileSync(join(paths.pki, "ca.crt"), "utf8"),
      cert: readFileSync(join(paths.pki, "admin.crt"), "utf8"),
      key: readFileSync(join(paths.pki, "admin.key"), "utf8"),
    });
    if (res.status !== 200)
      return { state: "broken", running, dead, reason: `/readyz: ${res.status} ${res.body}` };
  } catch (err) {
    return { state: "broken", running, dead, reason: `/readyz: ${(err as Error).message}` };
  }
  return { state: "running" };
}

// ---- host tools ------------------------------------------------------------------------

/**
 * Installs the host tools the worker nodes need (iproute2, iptables, util-linux, buildah, ...) when they are
 * missing, so that `npm ci && npm run cluster:up` works on a fresh machine. Its output goes
 * to stderr: stdout carries only the `export KUBECONFIG=…` line.
 */
async function setupHost(): Promise<void> {
  const child = spawn("bash", [SETUP_HOST_SCRIPT], { stdio: ["ignore", 2, "inherit"] });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  if (code !== 0)
    throw new Error(`test/cluster/setup-host.sh failed (exit code ${code}); its output is above`);
}

// ---- build -----------------------------------------------------------------------------

/** Runs build.sh (which builds only what is missing) and returns the binaries' directory. */
async function buildBinaries(log: Log, signal?: AbortSignal): Promise<string> {
  log("building or reusing the Kubernetes binaries (test/cluster/build.sh) ...");
  signal?.throwIfAborted();
  // In its own process group, so that an abort stops the go compilers too, not only bash.
  const child = spawn("bash", [BUILD_SCRIPT], { stdio: ["ignore", "pipe", "inherit"], detached: true });
  const stop = () => {
    try {
      process.kill(-child.pid!, "SIGTERM");
    } catch {
      // Already exited.
    }
  };
  signal?.addEventListener("abort", stop, { once: true });
  let stdout = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  }).finally(() => signal?.removeEventListener("abort", stop));
  signal?.throwIfAborted();
  if (code !== 0) throw new Error(`test/cluster/build.sh failed (exit code ${code}); its output is above`);
  const binDir = stdout.trim().split("\n").pop() ?? "";
  if (!existsSync(join(binDir, "kube-apiserver"))) {
    throw new Error(`test/cluster/build.sh printed "${binDir}", which holds no kube-apiserver`);
  }
  return binDir;
}

// ---- kubeconfig ------------------------------------------------------------------------

interface KubeconfigUser {
  name: string;
  cert: string;
  key: string;
}

/** A kubeconfig that embeds the credentials, so that it works when copied elsewhere. */
function kubeconfig(pki: Pki, user: KubeconfigUser, server = APISERVER_URL): string {
  const b64 = (file: string) => Buffer.from(readFileSync(file)).toString("base64");
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: CLUSTER_NAME,
        cluster: { server, "certificate-authority-data": b64(pki.ca.cert) },
      },
    ],
    users: [
      {
        name: user.name,
        user: { "client-certificate-data": b64(user.cert), "client-key-data": b64(user.key) },
      },
    ],
    contexts: [{ name: CLUSTER_NAME, context: { cluster: CLUSTER_NAME, user: user.name } }],
    "current-context": CLUSTER_NAME,
  });
}

function writeAtomically(file: string, content: string): void {
  writeFileSync(`${file}.tmp`, content, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

// ---- component command lines ------------------------------------------------------------

function etcdArgs(pki: Pki): string[] {
  const client = `https://127.0.0.1:${ports.etcdClient}`;
  const peer = `http://127.0.0.1:${ports.etcdPeer}`;
  return [
    "--name=local",
    `--data-dir=${paths.etcdData}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=local=${peer}`,
    "--initial-cluster-state=new",
    `--cert-file=${pki.etcdServer.cert}`,
    `--key-file=${pki.etcdServer.key}`,
    `--trusted-ca-file=${pki.etcdCa.cert}`,
    "--client-cert-auth=true",
    // Test data: losing it in a power cut costs nothing, and fsync dominates etcd latency on
    // a busy CI disk.
    "--unsafe-no-fsync=true",
    "--log-level=warn",
  ];
}

function apiserverArgs(pki: Pki): string[] {
  return [
    // Nodes and pods reach the apiserver at the host's address on the node bridge: the
    // `kubernetes` Service's endpoint.
    `--advertise-address=${NODE_NETWORK.hostAddress}`,
    // 0.0.0.0 covers both 127.0.0.1 (the host's kubeconfig) and the bridge address (nodes, pods).
    "--bind-address=0.0.0.0",
    `--secure-port=${ports.apiserver}`,
    `--etcd-servers=https://127.0.0.1:${ports.etcdClient}`,
    `--etcd-cafile=${pki.etcdCa.cert}`,
    `--etcd-certfile=${pki.apiserverEtcdClient.cert}`,
    `--etcd-keyfile=${pki.apiserverEtcdClient.key}`,
    `--tls-cert-file=${pki.apiserver.cert}`,
    `--tls-private-key-file=${pki.apiserver.key}`,
    `--client-ca-file=${pki.ca.cert}`,
    "--authorization-mode=Node,RBAC",
    // Added to the default admission chain (which includes MutatingAdmissionWebhook).
    "--enable-admission-plugins=NodeRestriction",
    "--allow-privileged=true",
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
    `--service-account-key-file=${pki.serviceAccount.publicKey}`,
    `--service-account-signing-key-file=${pki.serviceAccount.privateKey}`,
    `--api-audiences=${SERVICE_ACCOUNT_ISSUER}`,
    // kube-proxy runs in the nodes' network namespaces, not on the host where the apiserver
    // runs: webhooks and aggregated APIs behind a Service are dialled at an endpoint's pod IP.
    "--enable-aggregator-routing=true",
    `--kubelet-client-certificate=${pki.apiserverKubeletClient.cert}`,
    `--kubelet-client-key=${pki.apiserverKubeletClient.key}`,
    "--kubelet-preferred-address-types=InternalIP,Hostname",
    `--requestheader-client-ca-file=${pki.frontProxyCa.cert}`,
    `--requestheader-allowed-names=${FRONT_PROXY_CLIENT}`,
    "--requestheader-username-headers=X-Remote-User",
    "--requestheader-group-headers=X-Remote-Group",
    "--requestheader-extra-headers-prefix=X-Remote-Extra-",
    `--proxy-client-cert-file=${pki.frontProxyClient.cert}`,
    `--proxy-client-key-file=${pki.frontProxyClient.key}`,
    "--profiling=false",
  ];
}

function controllerManagerArgs(pki: Pki, kubeconfigFile: string): string[] {
  return [
    `--kubeconfig=${kubeconfigFile}`,
    `--authentication-kubeconfig=${kubeconfigFile}`,
    `--authorization-kubeconfig=${kubeconfigFile}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${ports.controllerManager}`,
    // One instance: leader election only adds start-up delay, and a lease renewal missed on
    // a busy machine would make the controller manager exit.
    "--leader-elect=false",
    `--controllers=${CONTROLLERS.join(",")}`,
    // Each controller acts under its own service account, as in a production cluster, so
    // that RBAC is exercised as it is there.
    "--use-service-account-credentials=true",
    `--service-account-private-key-file=${pki.serviceAccount.privateKey}`,
    `--root-ca-file=${pki.ca.cert}`,
    `--cluster-signing-cert-file=${pki.ca.cert}`,
    `--cluster-signing-key-file=${pki.ca.key}`,
    `--cluster-name=${CLUSTER_NAME}`,
    "--profiling=false",
  ];
}

function schedulerArgs(kubeconfigFile: string): string[] {
  return [
    `--kubeconfig=${kubeconfigFile}`,
    `--authentication-kubeconfig=${kubeconfigFile}`,
    `--authorization-kubeconfig=${kubeconfigFile}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${ports.scheduler}`,
    "--leader-elect=false",
    "--profiling=false",
  ];
}

// ---- up --------------------------------------------------------------------------------

function checkPortsFree(): void {
  const wanted = Object.values(ports);
  const busy = findListeners(wanted);
  if (busy.length === 0) return;
  const lines = busy.map(
    (l) =>
      `  port ${l.port}: ` +
      (l.pid === undefined ? "held by a process we cannot see" : `held by pid ${l.pid} (${l.command})`),
  );
  throw new Error(
    `ports the local cluster needs are in use:\n${lines.join("\n")}\n` +
      "Stop those processes (if it is a cluster from another checkout, run `npm run cluster:down` there).",
  );
}

/** Starts the cluster, or reuses the one that runs. On failure, stops what it started. */
export async function up(opts: UpOptions): Promise<UpResult> {
  requireRoot();
  const { log, signal } = opts;
  await acquireLock(log, signal);
  try {
    const state = await clusterState();
    if (state.state === "running") {
      log("the cluster is already running: reusing it");
      return { kubeconfig: paths.kubeconfig, binDir: await buildBinaries(log, signal), reused: true };
    }
    await setupHost();
    if (state.state === "broken") {
      throw new Error(
        `a cluster from this checkout is partly running (${state.reason}). ` +
          "Run `npm run cluster:down`, then `npm run cluster:up` again.",
      );
    }
    await killStrays(log);
    // Before anything that is not this checkout's own: a cluster of another checkout holds the
    // ports, and its worker nodes carry the same names as ours.
    checkPortsFree();
    // What a crashed run may have left of its worker nodes (namespaces, cgroups, the bridge).
    await stopNodes(log);
    // What a stopped or failed cluster left: start from nothing but the lock.
    for (const entry of readdirSync(STATE_DIR)) {
      if (join(STATE_DIR, entry) !== paths.lock)
        rmSync(join(STATE_DIR, entry), { recursive: true, force: true });
    }
    writeAtomically(paths.hostBaseline, `${JSON.stringify(hostState())}\n`);
    const binDir = await buildBinaries(log, signal);
    const stack = opts.nodes === false ? undefined : nodeStack(binDir, await buildImages(signal));
    try {
      await start(binDir, stack, opts);
    } catch (err) {
      log(`start failed: stopping what was started (logs stay in ${paths.logs})`);
      await teardown(log, { keepLogs: true });
      throw err;
    }
    return { kubeconfig: paths.kubeconfig, binDir, reused: false };
  } finally {
    releaseLock();
  }
}

async function start(binDir: string, stack: NodeStack | undefined, opts: UpOptions): Promise<void> {
  const { log, signal } = opts;
  for (const dir of [paths.logs, paths.pids]) mkdirSync(dir, { recursive: true });
  mkdirSync(paths.etcdData, { mode: 0o700, recursive: true });

  let t = Date.now();
  const step = (msg: string) => {
    log(`${msg} (${((Date.now() - t) / 1000).toFixed(1)}s)`);
    t = Date.now();
  };

  log(`generating the PKI in ${paths.pki} ...`);
  const pki = await createPki(paths.pki);
  const cmKubeconfig = join(paths.pki, "controller-manager.kubeconfig");
  const schedKubeconfig = join(paths.pki, "scheduler.kubeconfig");
  writeAtomically(
    cmKubeconfig,
    kubeconfig(pki, { name: "system:kube-controller-manager", ...pki.controllerManager }),
  );
  writeAtomically(schedKubeconfig, kubeconfig(pki, { name: "system:kube-scheduler", ...pki.scheduler }));
  step("PKI ready");

  // Before the apiserver starts: it advertises the host's address on this bridge.
  await createHostNetwork();
  step(`bridge ${NODE_NETWORK.bridge} is up with ${NODE_NETWORK.hostAddress}/${NODE_NETWORK.prefixLength}`);

  const launch = async (name: Component, command: string, args: string[]) => {
    log(`starting ${name} (log: ${LOG_FILES[name]}) ...`);
    const spawned = await spawnDetached(name, command, args, LOG_FILES[name]);
    return { name, spawned, logFile: LOG_FILES[name] };
  };
  const admin = {
    ca: readFileSync(pki.ca.cert, "utf8"),
    cert: readFileSync(pki.admin.cert, "utf8"),
    key: readFileSync(pki.admin.key, "utf8"),
  };
  const wait = <T>(what: string, check: () => Promise<Check<T>>, timeoutMs: number, watched?: Launched) =>
    waitFor(what, check, { timeoutMs, log, signal, process: watched });
  type Launched = Awaited<ReturnType<typeof launch>>;

  const etcd = await launch("etcd", join(binDir, "etcd"), etcdArgs(pki));
  const etcdTls = {
    ca: readFileSync(pki.etcdCa.cert, "utf8"),
    cert: readFileSync(pki.apiserverEtcdClient.cert, "utf8"),
    key: readFileSync(pki.apiserverEtcdClient.key, "utf8"),
  };
  await wait(
    "etcd /health",
    async () => {
      const res = await httpsGet(`https://127.0.0.1:${ports.etcdClient}/health`, etcdTls);
      return res.status === 200 ? { done: true, value: undefined } : { done: false, reason: res.body.trim() };
    },
    60_000,
    etcd,
  );
  step("etcd is healthy");

  const apiserver = await launch("kube-apiserver", join(binDir, "kube-apiserver"), apiserverArgs(pki));
  await wait(
    "kube-apiserver /readyz",
    async () => {
      const res = await httpsGet(`${APISERVER_URL}/readyz?verbose`, admin);
      if (res.status === 200) return { done: true, value: undefined };
      const failing = res.body.split("\n").filter((l) => l.startsWith("[-]"));
      return {
        done: false,
        reason: failing.map((l) => l.slice(3).split(" ")[0]).join(", ") || `HTTP ${res.status}`,
      };
    },
    180_000,
    apiserver,
  );
  step("kube-apiserver is ready");

  const healthz = (port: number) => async (): Promise<Check<undefined>> => {
    const res = await httpsGet(`https://127.0.0.1:${port}/healthz`, {});
    return res.status === 200 ? { done: true, value: undefined } : { done: false, reason: res.body.trim() };
  };
  const cm = await launch(
    "kube-controller-manager",
    join(binDir, "kube-controller-manager"),
    controllerManagerArgs(pki, cmKubeconfig),
  );
  const sched = await launch(
    "kube-scheduler",
    join(binDir, "kube-scheduler"),
    schedulerArgs(schedKubeconfig),
  );
  await wait("kube-controller-manager /healthz", healthz(ports.controllerManager), 90_000, cm);
  await wait("kube-scheduler /healthz", healthz(ports.scheduler), 90_000, sched);
  step("kube-controller-manager and kube-scheduler are healthy");

  // Pods are rejected until their namespace's `default` ServiceAccount exists; a user who
  // creates one right after cluster:up must not see that.
  await wait(
    "the default ServiceAccount",
    async () => {
      const res = await httpsGet(`${APISERVER_URL}/api/v1/namespaces/default/serviceaccounts/default`, admin);
      return res.status === 200
        ? { done: true, value: undefined }
        : { done: false, reason: `HTTP ${res.status}` };
    },
    90_000,
    cm,
  );
  step("the serviceaccount controller has created default/default");

  writeAtomically(paths.kubeconfig, kubeconfig(pki, { name: "admin", ...pki.admin }));

  if (stack) {
    await startWorkers(binDir, stack, pki, admin, opts);
    step(`${WORKERS.length} worker nodes are Ready, CoreDNS answers`);
  } else {
    log("worker nodes not started (--no-nodes): pods stay Pending");
  }
}

// ---- the worker nodes --------------------------------------------------------------------

async function kubectl(binDir: string, args: string[], input?: string): Promise<string> {
  const child = spawn(join(binDir, "kubectl"), [`--kubeconfig=${paths.kubeconfig}`, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  child.stdin.end(input ?? "");
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  if (code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${err.trim() || `exit code ${code}`}`);
  return out;
}

async function startWorkers(
  binDir: string,
  stack: NodeStack,
  pki: Pki,
  admin: { ca: string; cert: string; key: string },
  opts: UpOptions,
): Promise<void> {
  const { log, signal } = opts;
  const certs = new Map<string, NodeCerts>();
  for (const node of WORKERS)
    certs.set(node.name, await createNodeCerts(pki, join(paths.pki, node.name), node));
  const nodeKubeconfig = (user: string, pair: { cert: string; key: string }) =>
    // From a node's network namespace, the apiserver is at the host's bridge address.
    kubeconfig(pki, { name: user, ...pair }, `https://${NODE_NETWORK.hostAddress}:${ports.apiserver}`);
  await startNodes({ stack, certs, kubeconfig: nodeKubeconfig, log, signal });
  const pending = new Set(WORKERS.map((n) => n.name));
  await waitFor(
    "the worker nodes to be Ready",
    async () => {
      for (const name of pending) {
        const res = await httpsGet(`${APISERVER_URL}/api/v1/nodes/${name}`, admin);
        if (res.status !== 200) continue;
        const node = JSON.parse(res.body) as {
          spec?: { podCIDR?: string };
          status?: { conditions?: { type: string; status: string }[] };
        };
        const worker = WORKERS.find((w) => w.name === name)!;
        // The node's pod CIDR, as the node-ipam controller would set it (here the CNI config
        // fixes it per node).
        if (!node.spec?.podCIDR) {
          await kubectl(binDir, [
            "patch",
            "node",
            name,
            "--type=merge",
            "-p",
            JSON.stringify({ spec: { podCIDR: worker.podCIDR, podCIDRs: [worker.podCIDR] } }),
          ]);
        }
        if (node.status?.conditions?.find((c) => c.type === "Ready")?.status === "True") pending.delete(name);
      }
      return pending.size === 0
        ? { done: true, value: undefined }
        : { done: false, reason: `not Ready: ${[...pending].join(", ")}` };
    },
    { timeoutMs: 120_000, log, signal },
  );
  const manifest = readFileSync(join(REPO_ROOT, "test/cluster/node/coredns.yaml"), "utf8")
    .replaceAll("COREDNS_IMAGE", stack.corednsImage)
    .replaceAll("CLUSTER_DNS_IP", CLUSTER_DNS_IP);
  await kubectl(binDir, ["apply", "-f", "-"], manifest);
  await kubectl(binDir, [
    "--namespace=kube-system",
    "rollout",
    "status",
    "deployment/coredns",
    "--timeout=120s",
  ]);
}

// ---- down ------------------------------------------------------------------------------

async function teardown(log: Log, opts: { keepLogs: boolean }): Promise<void> {
  const stopped = [];
  // The worker nodes first: their kubelets talk to the apiserver until they stop.
  await stopNodes(log);
  for (const name of [...COMPONENTS].reverse()) {
    if (runningComponent(name)) log(`stopping ${name} ...`);
    stopped.push(...(await stopComponent(name, { graceMs: GRACE_MS[name], log })));
  }
  stopped.push(...(await killStrays(log)));
  await waitReaped(stopped);
  if (!existsSync(STATE_DIR)) return;
  for (const entry of readdirSync(STATE_DIR)) {
    const path = join(STATE_DIR, entry);
    if (opts.keepLogs && (path === paths.logs || path === paths.lock)) continue;
    rmSync(path, { recursive: true, force: true });
  }
  if (!opts.keepLogs) rmSync(STATE_DIR, { recursive: true, force: true });
}

/** Stops every process of the cluster (the worker nodes first) and removes its state. */
export async function down(log: Log): Promise<void> {
  requireRoot();
  await teardown(log, { keepLogs: false });
}
