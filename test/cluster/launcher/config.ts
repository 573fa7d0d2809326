// The local cluster's layout: where its state lives, which ports and addresses it uses, and
// its worker nodes. test/cluster/README.md documents the same values; change them together.
import { fileURLToPath } from "node:url";
import { join } from "node:path";

export const REPO_ROOT = fileURLToPath(new URL("../../..", import.meta.url)).replace(/\/$/, "");
export const BUILD_SCRIPT = join(REPO_ROOT, "test/cluster/build.sh");
export const SETUP_HOST_SCRIPT = join(REPO_ROOT, "test/cluster/setup-host.sh");

/** Everything the cluster writes lives here; `cluster:down` removes it. */
export const STATE_DIR = join(REPO_ROOT, ".local-cluster");

export const paths = {
  state: STATE_DIR,
  pki: join(STATE_DIR, "pki"),
  etcdData: join(STATE_DIR, "etcd"),
  logs: join(STATE_DIR, "logs"),
  pids: join(STATE_DIR, "pids"),
  kubeconfig: join(STATE_DIR, "kubeconfig"),
  /** The host's sysctls as they were before the first kubelet started; cluster:down restores them. */
  sysctls: join(STATE_DIR, "sysctls.json"),
  /** The host as cluster:up found it (launcher/host-state.ts), for the test of cluster:down. */
  hostBaseline: join(STATE_DIR, "host-baseline.json"),
  /** Held while `cluster:up` runs, so that two starts never race. */
  lock: join(STATE_DIR, "up.lock"),
  /** Present when a test run (not a developer) started the cluster: the last run stops it. */
  testOwned: join(STATE_DIR, "test-owned"),
  /** One file per test run that uses the cluster, named by its pid. */
  testUsers: join(STATE_DIR, "test-users"),
} as const;

export const CLUSTER_NAME = "coordinator-ha-local";

export const SERVICE_CIDR = "10.96.0.0/16";

/**
 * The worker nodes (launcher/nodes.ts), each in a network namespace of its own with kubelet,
 * containerd and kube-proxy, on the host bridge `ckn0`. Every name the cluster gives the host
 * starts with `ckn`, so that cluster:down finds what a crashed run left.
 */
export const NODE_NETWORK = {
  bridge: "ckn0",
  /** The host's address on the node network; the apiserver advertises it. */
  hostAddress: "10.245.0.1",
  prefixLength: 24,
} as const;
/** All pods of all nodes; each node takes a /24 of it. */
export const CLUSTER_CIDR = "10.244.0.0/16";
export const CLUSTER_DOMAIN = "cluster.local";
/** The ClusterIP of the kube-dns Service (CoreDNS). */
export const CLUSTER_DNS_IP = "10.96.0.10";

export interface WorkerNode {
  name: string;
  /** Network namespace, and the name of its cgroups under every hierarchy. */
  netns: string;
  /** The host end of its veth pair. */
  hostVeth: string;
  address: string;
  podCIDR: string;
  /** Its files (kubelet and containerd state, configs); under STATE_DIR. */
  dir: string;
}

export const WORKER_COUNT = 3;
export const WORKERS: WorkerNode[] = Array.from({ length: WORKER_COUNT }, (_, i) => ({
  name: `worker-${i + 1}`,
  netns: `ckn-worker-${i + 1}`,
  hostVeth: `ckn-w${i + 1}`,
  address: `10.245.0.${11 + i}`,
  podCIDR: `10.244.${i + 1}.0/24`,
  dir: join(STATE_DIR, "nodes", `worker-${i + 1}`),
}));
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
export const COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"] as const;
export type Component = (typeof COMPONENTS)[number];
