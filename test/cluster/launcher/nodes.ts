// The worker nodes of the local cluster: the real kubelet, containerd (runc, CNI plugins) and
// kube-proxy, several on one machine. Each node lives in a network namespace of its own (its
// address on the host bridge, its pod CIDR, its iptables rules) and a mount namespace of its
// own (its /run, /var/lib and /var/log, where the kubelet and containerd keep the paths they
// hard-code), with its cgroups under /<netns> of every hierarchy. Stopping a node removes all
// of it: see stopNodes. test/cluster/README.md describes the layout.
import { execFile } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { stringify } from "yaml";
import {
  CLUSTER_CIDR,
  CLUSTER_DNS_IP,
  CLUSTER_DOMAIN,
  NODE_NETWORK,
  SERVICE_CIDR,
  WORKERS,
  paths,
  type WorkerNode,
} from "./config.ts";
import { listProcesses, readProcess, runningComponent, spawnDetached, stopComponent } from "./processes.ts";
import { crictlPath, type NodeStack } from "./node-stack.ts";
import { waitFor } from "./wait.ts";

const run = promisify(execFile);

export type Log = (msg: string) => void;

async function sh(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  try {
    return (await run(cmd, args, { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 << 20 })).stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    throw new Error(`${cmd} ${args.join(" ")}: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

async function succeeds(cmd: string, args: string[]): Promise<boolean> {
  try {
    await run(cmd, args);
    return true;
  } catch {
    return false;
  }
}

// ---- names of a node's processes -------------------------------------------------------

export const NODE_COMPONENTS = ["holder", "containerd", "kubelet", "kube-proxy"] as const;
export type NodeComponent = (typeof NODE_COMPONENTS)[number];

export function componentName(node: WorkerNode, component: NodeComponent): string {
  return `${node.name}.${component}`;
}

const nodeFiles = (node: WorkerNode) => ({
  script: join(node.dir, "node.sh"),
  kubelet: join(node.dir, "kubelet"),
  containerd: join(node.dir, "containerd"),
  podLogs: join(node.dir, "pod-logs"),
  cniConf: join(node.dir, "cni"),
  containerdConfig: join(node.dir, "containerd.toml"),
  kubeletConfig: join(node.dir, "kubelet.yaml"),
  kubeletKubeconfig: join(node.dir, "kubelet.kubeconfig"),
  proxyConfig: join(node.dir, "kube-proxy.yaml"),
  proxyKubeconfig: join(node.dir, "kube-proxy.kubeconfig"),
  resolvConf: join(node.dir, "resolv.conf"),
  ready: join(node.dir, "holder.ready"),
});

// ---- the host's sysctls ----------------------------------------------------------------

/**
 * Host-wide sysctls that the kubelet sets when it starts (unless protectKernelDefaults makes
 * it refuse instead): recorded before the first kubelet starts, and set back by stopNodes.
 */
const KUBELET_SYSCTLS = ["vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops"];

function recordSysctls(): void {
  if (existsSync(paths.sysctls)) return;
  const values = Object.fromEntries(
    KUBELET_SYSCTLS.map((k) => [k, readFileSync(`/proc/sys/${k}`, "utf8").trim()]),
  );
  writeFileSync(paths.sysctls, `${JSON.stringify(values)}\n`);
}

function restoreSysctls(log: Log): void {
  if (!existsSync(paths.sysctls)) return;
  const values = JSON.parse(readFileSync(paths.sysctls, "utf8")) as Record<string, string>;
  for (const [key, value] of Object.entries(values)) {
    const now = readFileSync(`/proc/sys/${key}`, "utf8").trim();
    if (now !== value) {
      writeFileSync(`/proc/sys/${key}`, value);
      log(`sysctl ${key.replace(/\//g, ".")}: ${now} -> ${value} (as before the kubelets)`);
    }
  }
}

// ---- the node network ------------------------------------------------------------------

async function linkExists(name: string): Promise<boolean> {
  return succeeds("ip", ["link", "show", "dev", name]);
}

async function netnsExists(name: string): Promise<boolean> {
  return existsSync(`/run/netns/${name}`);
}

/** The host bridge, the host's routes to every pod CIDR and to the Service range. */
export async function createHostNetwork(): Promise<void> {
  const { bridge, hostAddress, prefixLength } = NODE_NETWORK;
  if (!(await linkExists(bridge))) await sh("ip", ["link", "add", bridge, "type", "bridge"]);
  const addrs = await sh("ip", ["-o", "-4", "addr", "show", "dev", bridge]);
  if (!addrs.includes(` ${hostAddress}/${prefixLength} `))
    await sh("ip", ["addr", "add", `${hostAddress}/${prefixLength}`, "dev", bridge]);
  await sh("ip", ["link", "set", bridge, "up"]);
}

async function nsExec(node: WorkerNode, cmd: string, args: string[]): Promise<string> {
  return sh("ip", ["netns", "exec", node.netns, cmd, ...args]);
}

/** The node's namespace, its veth on the bridge, its address and routes. */
async function createNodeNetwork(node: WorkerNode): Promise<void> {
  const { bridge, hostAddress, prefixLength } = NODE_NETWORK;
  await sh("ip", ["netns", "add", node.netns]);
  await sh("ip", ["link", "add", node.hostVeth, "type", "veth", "peer", "name", "eth0", "netns", node.netns]);
  await sh("ip", ["link", "set", node.hostVeth, "master", bridge, "up"]);
  await nsExec(node, "ip", ["addr", "add", `${node.address}/${prefixLength}`, "dev", "eth0"]);
  await nsExec(node, "ip", ["link", "set", "lo", "up"]);
  await nsExec(node, "ip", ["link", "set", "eth0", "up"]);
  await nsExec(node, "ip", ["route", "add", "default", "via", hostAddress]);
  // Pods of the other nodes: straight over the bridge to the node that holds them.
  for (const other of WORKERS) {
    if (other !== node) await nsExec(node, "ip", ["route", "add", other.podCIDR, "via", other.address]);
  }
  // Per network namespace: routing between pods, and iptables for bridged pod traffic (so
  // that a pod reaching a Service endpoint on its own node gets its replies un-NATed).
  await nsExec(node, "sysctl", ["-qw", "net.ipv4.ip_forward=1"]);
  await nsExec(node, "sysctl", ["-qw", "net.bridge.bridge-nf-call-iptables=1"]);
  // The host reaches pods (tests dial pod IPs) through the node that holds them.
  await sh("ip", ["route", "replace", node.podCIDR, "via", node.address]);
}

/** Services from the host: through the first node's kube-proxy rules, as from any node. */
async function routeServicesFromHost(): Promise<void> {
  await sh("ip", ["route", "replace", SERVICE_CIDR, "via", WORKERS[0]!.address]);
}

// ---- cgroups ---------------------------------------------------------------------------

/** The mounted cgroup hierarchies (v1 controllers, name=systemd, and the v2 one). */
function cgroupMounts(): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" - "))
    .filter(([, fs]) => fs?.startsWith("cgroup ") || fs?.startsWith("cgroup2 "))
    .map(([left]) => left!.split(" ")[4]!);
}

/**
 * The kubelet's cgroupRoot must exist in every v1 hierarchy before it starts; a new cpuset
 * cgroup is empty and takes no task until it has CPUs and memory nodes.
 */
function createCgroups(node: WorkerNode): void {
  for (const mount of cgroupMounts()) {
    const dir = join(mount, node.netns);
    mkdirSync(dir, { recursive: true });
    if (existsSync(join(mount, "cpuset.cpus")) && !existsSync(join(mount, "cgroup.controllers"))) {
      for (const f of ["cpuset.cpus", "cpuset.mems"])
        writeFileSync(join(dir, f), readFileSync(join(mount, f), "utf8"));
    }
  }
}

/** Every process in the node's cgroups, in any hierarchy. */
function cgroupPids(netns: string): number[] {
  const pids = new Set<number>();
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    try {
      for (const p of readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n")) if (p) pids.add(Number(p));
    } catch {
      // Removed while we looked.
    }
    for (const e of entries) if (e.isDirectory()) walk(join(dir, e.name));
  };
  for (const mount of cgroupMounts()) walk(join(mount, netns));
  return [...pids];
}

function removeCgroups(netns: string): string[] {
  const failed: string[] = [];
  const remove = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) remove(join(dir, e.name));
    try {
      rmdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") failed.push(dir);
    }
  };
  for (const mount of cgroupMounts()) remove(join(mount, netns));
  return failed;
}

// ---- configuration files ---------------------------------------------------------------

/**
 * Runs in the node's network namespace and a mount namespace of its own: gives the node its
 * own /run (containerd's sockets, shims and pod netns, iptables' lock), /var/lib (CNI's IP
 * allocations; the kubelet and containerd state, bound from the node's directory on disk)
 * and /var/log (the kubelet's /var/log/containers), then holds the namespace for containerd,
 * the kubelet and kube-proxy, which enter it. The mounts are slaves of the host's, so none of
 * them shows on the host, and all go when the last process in the namespace exits.
 */
function holderScript(): string {
  return `#!/usr/bin/env bash
set -euo pipefail
node_dir=$1
mount -t tmpfs -o mode=755 ckn-run /run
mount -t tmpfs -o mode=755 ckn-lib /var/lib
mount -t tmpfs -o mode=755 ckn-log /var/log
mkdir -p /var/lib/kubelet /var/lib/containerd
mount --bind "$node_dir/kubelet" /var/lib/kubelet
mount --bind "$node_dir/containerd" /var/lib/containerd
echo ready >"$node_dir/holder.ready"
trap 'exit 0' TERM INT
sleep infinity &
wait
`;
}

function containerdConfig(node: WorkerNode, stack: NodeStack): string {
  const f = nodeFiles(node);
  return `# containerd of ${node.name}; written by test/cluster/launcher/nodes.ts
version = 3
root = "/var/lib/containerd"
state = "/run/containerd"

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  # Pods run images imported at start (ctr images import); nothing is pulled.
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "${stack.pauseImage}"

[plugins."io.containerd.cri.v1.runtime"]
  # This machine's root lacks CAP_SYS_RESOURCE: runc could not lower oom_score_adj below
  # its own.
  restrict_oom_score_adj = true
  enable_unprivileged_ports = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "${stack.runc}"
        # cgroup v1 with the kubelet's cgroupfs driver.
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["${stack.cniBin}"]
    conf_dir = "${f.cniConf}"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
`;
}

/** The bridge plugin with host-local addresses from the node's pod CIDR, and portmap. */
function cniConfig(node: WorkerNode): string {
  return JSON.stringify(
    {
      cniVersion: "1.0.0",
      name: "ckn-pods",
      plugins: [
        {
          type: "bridge",
          bridge: "cni0",
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: "host-local",
            ranges: [[{ subnet: node.podCIDR }]],
            routes: [{ dst: "0.0.0.0/0" }],
          },
        },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

function kubeletConfig(node: WorkerNode, certs: NodeCerts): string {
  const f = nodeFiles(node);
  return stringify({
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: certs.ca },
    },
    authorization: { mode: "Webhook" },
    tlsCertFile: certs.kubeletServing.cert,
    tlsPrivateKeyFile: certs.kubeletServing.key,
    containerRuntimeEndpoint: "unix:///run/containerd/containerd.sock",
    // cgroup v1 here: the kubelet 1.35 refuses it unless told, with the cgroupfs driver.
    failCgroupV1: false,
    cgroupDriver: "cgroupfs",
    cgroupRoot: `/${node.netns}`,
    failSwapOn: false,
    enforceNodeAllocatable: [],
    // The node network namespace is the node's own: the kubelet's iptables chains are kube-proxy's business.
    makeIPTablesUtilChains: false,
    clusterDNS: [CLUSTER_DNS_IP],
    clusterDomain: CLUSTER_DOMAIN,
    // No upstream resolver: the cluster is offline; pods resolve cluster names through CoreDNS.
    resolvConf: f.resolvConf,
    podLogsDir: f.podLogs,
    volumePluginDir: "/var/lib/kubelet/volume-plugins",
    staticPodPath: "",
    rotateCertificates: false,
    serializeImagePulls: false,
    // The images are imported, not pulled: never collect them.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    // A shared CI disk or a busy machine must not make the kubelet evict test pods.
    evictionHard: { "memory.available": "50Mi", "nodefs.available": "1%", "imagefs.available": "1%" },
    shutdownGracePeriod: "0s",
    healthzBindAddress: "127.0.0.1",
    readOnlyPort: 0,
  });
}

function kubeProxyConfig(node: WorkerNode): string {
  const f = nodeFiles(node);
  return stringify({
    apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
    kind: "KubeProxyConfiguration",
    clientConnection: { kubeconfig: f.proxyKubeconfig },
    mode: "iptables",
    clusterCIDR: CLUSTER_CIDR,
    hostnameOverride: node.name,
    bindAddress: node.address,
    healthzBindAddress: `${node.address}:10256`,
    metricsBindAddress: "127.0.0.1:10249",
    // conntrack's limits and timeouts are host-wide here: leave them as they are.
    conntrack: {
      maxPerCore: 0,
      min: 0,
      tcpEstablishedTimeout: "0s",
      tcpCloseWaitTimeout: "0s",
    },
  });
}

// ---- certificates and kubeconfigs (made by cluster.ts's PKI) ---------------------------

export interface CertPair {
  cert: string;
  key: string;
}
export interface NodeCerts {
  ca: string;
  kubeletClient: CertPair;
  kubeletServing: CertPair;
  kubeProxy: CertPair;
}

export interface NodeSetup {
  stack: NodeStack;
  /** Certificates of each node, by node name. */
  certs: Map<string, NodeCerts>;
  /** Writes a kubeconfig for a client certificate. */
  kubeconfig: (user: string, pair: CertPair) => string;
  log: Log;
  signal?: AbortSignal;
}

// ---- start -----------------------------------------------------------------------------

function enter(holderPid: number, args: string[]): string[] {
  return ["--target", String(holderPid), "--mount", "--net", "--", ...args];
}

/** One node: its network, cgroups, holder, containerd with the images, kubelet, kube-proxy. */
async function startNode(node: WorkerNode, setup: NodeSetup): Promise<void> {
  const { stack, log, signal } = setup;
  const certs = setup.certs.get(node.name)!;
  const f = nodeFiles(node);
  for (const dir of [f.kubelet, f.containerd, f.podLogs, f.cniConf]) mkdirSync(dir, { recursive: true });
  writeFileSync(f.script, holderScript(), { mode: 0o755 });
  writeFileSync(f.containerdConfig, containerdConfig(node, stack));
  writeFileSync(join(f.cniConf, "10-ckn-pods.conflist"), cniConfig(node));
  writeFileSync(f.kubeletConfig, kubeletConfig(node, certs));
  writeFileSync(f.kubeletKubeconfig, setup.kubeconfig(`system:node:${node.name}`, certs.kubeletClient));
  writeFileSync(f.proxyConfig, kubeProxyConfig(node));
  writeFileSync(f.proxyKubeconfig, setup.kubeconfig("system:kube-proxy", certs.kubeProxy));
  writeFileSync(f.resolvConf, `# ${node.name}: no upstream resolver (offline cluster)\n`);

  await createNodeNetwork(node);
  createCgroups(node);

  const logFile = (c: NodeComponent) => join(paths.logs, `${componentName(node, c)}.log`);
  const holder = await spawnDetached(
    componentName(node, "holder"),
    "nsenter",
    [
      `--net=/run/netns/${node.netns}`,
      "unshare",
      "--mount",
      "--propagation",
      "slave",
      "bash",
      f.script,
      node.dir,
    ],
    logFile("holder"),
  );
  await waitFor(
    `${node.name}'s mount namespace`,
    async () => (existsSync(f.ready) ? { done: true, value: undefined } : { done: false, reason: "not yet" }),
    {
      timeoutMs: 10_000,
      log,
      signal,
      process: { name: componentName(node, "holder"), spawned: holder, logFile: logFile("holder") },
    },
  );

  const path = `${stack.containerdBin}:${stack.runcDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
  const containerd = await spawnDetached(
    componentName(node, "containerd"),
    "nsenter",
    enter(holder.pid, [join(stack.containerdBin, "containerd"), "--config", f.containerdConfig]),
    logFile("containerd"),
    { PATH: path },
  );
  const ctr = (...args: string[]) =>
    sh("nsenter", enter(holder.pid, [join(stack.containerdBin, "ctr"), "--namespace", "k8s.io", ...args]), {
      timeoutMs: 180_000,
    });
  await waitFor(
    `${node.name}'s containerd`,
    async () => {
      try {
        await ctr("version");
        return { done: true, value: undefined };
      } catch (err) {
        return { done: false, reason: (err as Error).message };
      }
    },
    {
      timeoutMs: 30_000,
      log,
      signal,
      process: {
        name: componentName(node, "containerd"),
        spawned: containerd,
        logFile: logFile("containerd"),
      },
    },
  );
  for (const image of stack.images) {
    await ctr("images", "import", "--no-unpack=false", image.archive);
    // Pinned, so that the kubelet's image garbage collection never removes one.
    await ctr("images", "label", image.reference, "io.cri-containerd.pinned=pinned");
  }

  const kubelet = await spawnDetached(
    componentName(node, "kubelet"),
    "nsenter",
    enter(holder.pid, [
      join(stack.k8sBin, "kubelet"),
      `--config=${f.kubeletConfig}`,
      `--kubeconfig=${f.kubeletKubeconfig}`,
      `--hostname-override=${node.name}`,
      `--node-ip=${node.address}`,
      "--v=1",
    ]),
    logFile("kubelet"),
    { PATH: path },
  );
  const proxy = await spawnDetached(
    componentName(node, "kube-proxy"),
    "nsenter",
    enter(holder.pid, [join(stack.k8sBin, "kube-proxy"), `--config=${f.proxyConfig}`]),
    logFile("kube-proxy"),
    { PATH: path },
  );
  log(`${node.name}: containerd, kubelet and kube-proxy started (${node.address}, pods ${node.podCIDR})`);
  void kubelet;
  void proxy;
}

/** Starts every worker node; returns once each has started its kubelet (not yet Ready). */
export async function startNodes(setup: NodeSetup): Promise<void> {
  recordSysctls();
  await createHostNetwork();
  for (const node of WORKERS) await startNode(node, setup);
  await routeServicesFromHost();
}

// ---- stop ------------------------------------------------------------------------------

function nsInode(pid: number, ns: "net" | "mnt"): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/${ns}`);
  } catch {
    return undefined;
  }
}

async function killAndWait(pids: number[], log: Log, why: string): Promise<void> {
  const live = [...new Set(pids)].filter((p) => readProcess(p));
  if (live.length === 0) return;
  for (const p of live) {
    log(`killing pid ${p} (${readProcess(p)?.cmdline.slice(0, 3).join(" ")}): ${why}`);
    try {
      process.kill(p, "SIGKILL");
    } catch {
      // Gone.
    }
  }
  const deadline = Date.now() + 10_000;
  while (live.some((p) => readProcess(p)) && Date.now() < deadline) await sleep(100);
}

/**
 * Stops one node and removes all of it: the kubelet first (so that it restarts nothing), then
 * every pod through the CRI (CNI teardown included), kube-proxy and containerd, whatever still
 * runs in the node's network namespace or cgroups (shims, container processes), the cgroups,
 * and the network namespace with its veth. The mount namespace goes with its last process.
 */
async function stopNode(node: WorkerNode, log: Log): Promise<void> {
  const graceMs = 10_000;
  await stopComponent(componentName(node, "kubelet"), { graceMs, log });
  const holderPid = runningComponent(componentName(node, "holder"))?.pid ?? 0;
  const holderAlive = holderPid > 0;
  if (holderAlive && existsSync(`/proc/${holderPid}/root/run/containerd/containerd.sock`)) {
    try {
      await sh(
        "nsenter",
        enter(holderPid, [
          crictlPath(),
          "--runtime-endpoint",
          "unix:///run/containerd/containerd.sock",
          "--timeout",
          "30s",
          "rmp",
          "--all",
          "--force",
        ]),
        { timeoutMs: 60_000 },
      );
    } catch (err) {
      log(`${node.name}: crictl rmp: ${(err as Error).message}`);
    }
  }
  await stopComponent(componentName(node, "kube-proxy"), { graceMs, log });
  await stopComponent(componentName(node, "containerd"), { graceMs, log });
  // Shims and containers outlive containerd by design.
  const netnsIno = existsSync(`/run/netns/${node.netns}`)
    ? (await sh("stat", ["-L", "-c", "%i", `/run/netns/${node.netns}`])).trim()
    : undefined;
  const inNetns = netnsIno
    ? listProcesses()
        .filter((p) => nsInode(p.pid, "net") === `net:[${netnsIno}]`)
        .map((p) => p.pid)
    : [];
  const holderMnt = holderAlive ? nsInode(holderPid, "mnt") : undefined;
  const inMountNs = holderMnt
    ? listProcesses()
        .filter((p) => p.pid !== holderPid && nsInode(p.pid, "mnt") === holderMnt)
        .map((p) => p.pid)
    : [];
  await killAndWait(
    [...inNetns, ...inMountNs, ...cgroupPids(node.netns)].filter((p) => p !== holderPid),
    log,
    `left in ${node.name}`,
  );
  await stopComponent(componentName(node, "holder"), { graceMs: 5000, log });
  const stuck = removeCgroups(node.netns);
  if (stuck.length > 0) log(`${node.name}: cgroups not removed: ${stuck.join(", ")}`);
  if (await netnsExists(node.netns)) await sh("ip", ["netns", "del", node.netns]);
  await deleteLink(node.hostVeth);
}

/**
 * Deletes a link that may be on its way out: the host side of a node's veth goes with the
 * node's network namespace once the kernel frees it, which can be between a look and the
 * delete ("Cannot find device", seen in a CI run).
 */
async function deleteLink(name: string): Promise<void> {
  if (!(await linkExists(name))) return;
  try {
    await sh("ip", ["link", "del", name]);
  } catch (err) {
    if (await linkExists(name)) throw err;
  }
}

/** Stops every node, then removes the host bridge (its routes go with it) and sets the sysctls back. */
export async function stopNodes(log: Log): Promise<void> {
  for (const node of WORKERS) {
    if (existsSync(node.dir) || (await netnsExists(node.netns))) log(`stopping ${node.name} ...`);
    await stopNode(node, log);
  }
  await deleteLink(NODE_NETWORK.bridge);
  restoreSysctls(log);
}
