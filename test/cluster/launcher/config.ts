// The local cluster's layout: where its state lives, which ports and addresses it uses, and
// the contract with the node agent. test/cluster/README.md documents the same values; change
// them together.
import { fileURLToPath } from "node:url";
import { join } from "node:path";

export const REPO_ROOT = fileURLToPath(new URL("../../..", import.meta.url)).replace(/\/$/, "");
export const BUILD_SCRIPT = join(REPO_ROOT, "test/cluster/build.sh");
export const SETUP_HOST_SCRIPT = join(REPO_ROOT, "test/cluster/setup-host.sh");
export const AGENT_MAIN = join(REPO_ROOT, "test/cluster/agent/main.ts");
export const NODE_BIN = join(REPO_ROOT, "node_modules/.bin/node");

/** Everything the cluster writes lives here; `cluster:down` removes it. */
export const STATE_DIR = join(REPO_ROOT, ".local-cluster");

export const paths = {
  state: STATE_DIR,
  pki: join(STATE_DIR, "pki"),
  etcdData: join(STATE_DIR, "etcd"),
  logs: join(STATE_DIR, "logs"),
  pids: join(STATE_DIR, "pids"),
  agentState: join(STATE_DIR, "agent"),
  kubeconfig: join(STATE_DIR, "kubeconfig"),
  /** Held while `cluster:up` runs, so that two starts never race. */
  lock: join(STATE_DIR, "up.lock"),
  /** Present when a test run (not a developer) started the cluster: the last run stops it. */
  testOwned: join(STATE_DIR, "test-owned"),
  /** One file per test run that uses the cluster, named by its pid. */
  testUsers: join(STATE_DIR, "test-users"),
} as const;

export const CLUSTER_NAME = "coordinator-ha-local";
export const NODE_NAME = "local-node";

/** The pod network: the launcher creates the bridge, the node agent attaches pods to it. */
export const BRIDGE = {
  name: "cha0",
  address: "10.244.0.1",
  prefixLength: 24,
  cidr: "10.244.0.0/24",
} as const;
export const SERVICE_CIDR = "10.96.0.0/16";
/** The first address of the Service range: the ClusterIP of the `kubernetes` Service. */
export const KUBERNETES_SERVICE_IP = "10.96.0.1";

export const SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local";

export const ports = {
  etcdClient: 2379,
  etcdPeer: 2380,
  apiserver: 6443,
  controllerManager: 10257,
  scheduler: 10259,
} as const;

export const APISERVER_URL = `https://127.0.0.1:${ports.apiserver}`;

/** The components in start order; `cluster:down` stops them in reverse. */
export const COMPONENTS = [
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "agent",
] as const;
export type Component = (typeof COMPONENTS)[number];
