// The node agent: the local cluster's kubelet and kube-proxy in one process. It registers
// the Node, runs the pods bound to it as processes in their own network and mount
// namespaces, reports their status as the kubelet does, and programs Services with
// iptables and hosts files. See test/cluster/README.md, "Node agent".
//
//   node_modules/.bin/node test/cluster/agent/main.ts --kubeconfig FILE --state-dir DIR
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { createLogger } from "../../../src/log.ts";
import { parseConfig, type AgentConfig } from "./config.ts";
import { cleanHost } from "./host/cleanup.ts";
import { loadImageMap } from "./images.ts";
import { EventRecorder } from "./kube/events.ts";
import { apiErrorCode } from "./kube/errors.ts";
import { toWire, type ConfigMap, type Secret } from "./kube/wire.ts";
import { Ipam, parseSubnet } from "./network/ipam.ts";
import { ensureBridge } from "./network/sandbox.ts";
import { ServiceProxy } from "./network/service-proxy.ts";
import { startKubeletServer } from "./node/kubelet-server.ts";
import { NodeRegistration, resources } from "./node/registration.ts";
import { PodManager } from "./pod/manager.ts";
import { StatusWriter } from "./pod/status-writer.ts";
import { TokenManager } from "./pod/tokens.ts";

const log = createLogger("node-agent");
// The longest a pod's containers get to stop when the agent itself is stopped: cluster:down
// waits 90 s for the agent, and sidecars stop after the app containers.
const SHUTDOWN_GRACE_SECONDS = 20;
const RUNTIME_VERSION = "cha://0.1.0";

let cfg: AgentConfig;
try {
  cfg = parseConfig(process.argv.slice(2));
} catch (err) {
  console.error(`node agent: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
}

const podsDir = join(cfg.stateDir, "pods");
const logDir = join(cfg.stateDir, "logs");

process.on("unhandledRejection", (err) =>
  log.error({ err: err instanceof Error ? err.stack : String(err) }, "unhandled rejection"),
);

/** The cluster CA from the kubeconfig: it signs the apiserver's kubelet client certificate. */
function clusterCA(kc: KubeConfig): string {
  const cluster = kc.getCurrentCluster();
  if (cluster?.caData) return Buffer.from(cluster.caData, "base64").toString("utf8");
  if (cluster?.caFile) return readFileSync(cluster.caFile, "utf8");
  throw new Error("the kubeconfig names no certificate authority for the cluster");
}

async function retry<T>(what: string, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= 30) throw err;
      log.warn({ err: String(err), attempt }, `${what} failed; retrying`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  await mkdir(logDir, { recursive: true });
  await cleanHost({ podsDir, log });
  const ipam = new Ipam(join(cfg.stateDir, "ipam.json"), parseSubnet(cfg.podCIDR, cfg.nodeIP));
  await ensureBridge({ bridge: cfg.bridge, gateway: cfg.nodeIP, prefixLength: cfg.prefixLength });
  const images = loadImageMap(cfg.imagesFile, cfg.imagesDisplay, cfg.repoRoot);

  const kc = new KubeConfig();
  kc.loadFromFile(cfg.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const getOrNull = async <T>(fn: () => Promise<unknown>): Promise<T | null> => {
    try {
      return toWire(await fn()) as T;
    } catch (err) {
      if (apiErrorCode(err) === 404) return null;
      throw err;
    }
  };

  const nodeCfg = {
    name: cfg.nodeName,
    address: cfg.nodeIP,
    podCIDR: cfg.podCIDR,
    maxPods: cfg.maxPods,
    stateDir: cfg.stateDir,
    runtimeVersion: RUNTIME_VERSION,
  };
  const { allocatable } = resources(nodeCfg);
  const node = new NodeRegistration(kc, nodeCfg, log);
  const events = new EventRecorder(kc, cfg.nodeName, log);
  const statusWriter = new StatusWriter(kc);
  const tokens = new TokenManager(core);

  const proxy: ServiceProxy = new ServiceProxy({
    kc,
    log,
    podCIDR: cfg.podCIDR,
    bridge: cfg.bridge,
    targets: () => manager.hostsTargets(),
  });
  const manager: PodManager = new PodManager(kc, cfg.nodeName, {
    log,
    nodeName: cfg.nodeName,
    hostIP: cfg.nodeIP,
    bridge: { bridge: cfg.bridge, gateway: cfg.nodeIP, prefixLength: cfg.prefixLength },
    podsDir,
    logDir,
    tools: cfg.tools,
    ipam,
    images,
    volumeSources: {
      getConfigMap: (namespace, name) =>
        getOrNull<ConfigMap>(() => core.readNamespacedConfigMap({ name, namespace })),
      getSecret: (namespace, name) => getOrNull<Secret>(() => core.readNamespacedSecret({ name, namespace })),
      tokens,
      hostIP: cfg.nodeIP,
      allocatable: {
        cpu: allocatable["cpu"]!,
        memory: allocatable["memory"]!,
        "ephemeral-storage": allocatable["ephemeral-storage"]!,
      },
    },
    services: () => proxy.allServices(),
    writeHosts: (t) => proxy.writeHosts(t),
    forgetHosts: (netns) => proxy.forgetHosts(netns),
    events,
    statusWriter,
  });
  await retry("starting the service proxy", () => proxy.start());
  await manager.start();
  // A pod that outlived a crash of the agent gets its sandbox back with the same address;
  // the addresses of pods that are gone are free again.
  ipam.retainOnly(manager.podUIDs());
  const kubelet = await startKubeletServer({
    address: cfg.nodeIP,
    nodeName: cfg.nodeName,
    clientCA: clusterCA(kc),
    logRange: (namespace, pod, container, previous) =>
      manager.byName(namespace, pod)?.logRange(container, previous),
    execTarget: (namespace, pod, container) => manager.byName(namespace, pod)?.execTarget(container),
    podIP: (namespace, pod) => manager.byName(namespace, pod)?.podIP(),
    log,
  });
  // Ready last: the scheduler binds pods to the node as soon as it is Ready.
  await retry("registering the node", () => node.register());
  node.startHeartbeat();
  log.info({ node: cfg.nodeName, seconds: (Date.now() - started) / 1000, logDir }, "node agent ready");

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping: stopping all pods and cleaning up the host");
    node.stop();
    kubelet.close();
    await manager.shutdown(SHUTDOWN_GRACE_SECONDS);
    await proxy.stop();
    await cleanHost({ podsDir, log });
    log.info("stopped");
    process.exit(0);
  };
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, (s) => void stop(s));
}

main().catch((err: unknown) => {
  log.fatal({ err: err instanceof Error ? err.stack : String(err) }, "node agent failed");
  void cleanHost({ podsDir, log }).finally(() => process.exit(1));
});
