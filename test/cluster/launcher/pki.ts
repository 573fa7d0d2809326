// The local cluster's PKI, laid out as kubeadm lays out /etc/kubernetes/pki. A fresh one is
// made for every `cluster:up`; `cluster:down` deletes it.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  createCa,
  generateKeyPair,
  issueClientCert,
  issueServingCert,
  type CertificateAndKey,
  type CertificateAuthority,
} from "../../../webhook-certs/x509.ts";
import { KUBERNETES_SERVICE_IP, CLUSTER_NAME, NODE_NETWORK, type WorkerNode } from "./config.ts";
import type { NodeCerts } from "./nodes.ts";

export interface CertFiles {
  cert: string;
  key: string;
}

export interface Pki {
  /** The cluster CA: it signs the apiserver's serving cert and every client cert it accepts. */
  ca: CertFiles;
  /** The same CA, to issue the nodes' certificates. */
  authority: CertificateAuthority;
  apiserver: CertFiles;
  admin: CertFiles;
  controllerManager: CertFiles;
  scheduler: CertFiles;
  /** The apiserver's client cert towards the kubelets (logs, exec, port-forward). */
  apiserverKubeletClient: CertFiles;
  /**
   * etcd has its own CA: the cluster CA also signs CSRs through the csrsigning controller,
   * and none of those certificates may open etcd.
   */
  etcdCa: CertFiles;
  etcdServer: CertFiles;
  apiserverEtcdClient: CertFiles;
  /**
   * The aggregation layer: the apiserver proxies to extension apiservers with this client
   * cert and the X-Remote-User headers, which they trust because of this CA.
   */
  frontProxyCa: CertFiles;
  frontProxyClient: CertFiles;
  /** The service-account token signing key pair (RS256). */
  serviceAccount: { privateKey: string; publicKey: string };
}

export const FRONT_PROXY_CLIENT = "front-proxy-client";

/** Names that in-cluster clients use for the apiserver. */
export const APISERVER_DNS_NAMES = [
  "kubernetes",
  "kubernetes.default",
  "kubernetes.default.svc",
  "kubernetes.default.svc.cluster.local",
  "localhost",
];
export const APISERVER_IPS = ["127.0.0.1", NODE_NETWORK.hostAddress, KUBERNETES_SERVICE_IP];

async function write(dir: string, name: string, pair: CertificateAndKey): Promise<CertFiles> {
  const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  await writeFile(files.cert, pair.certPem);
  await writeFile(files.key, pair.keyPem, { mode: 0o600 });
  return files;
}

/**
 * A worker node's certificates from the cluster CA: the kubelet's client certificate (the Node
 * authorizer's `system:node:NAME` in `system:nodes`), its serving certificate for its address,
 * and kube-proxy's client certificate (bound to system:node-proxier by the default policy).
 */
export async function createNodeCerts(pki: Pki, dir: string, node: WorkerNode): Promise<NodeCerts> {
  const ca = pki.authority;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return {
    ca: pki.ca.cert,
    kubeletClient: await write(
      dir,
      "kubelet-client",
      await issueClientCert(ca, { cn: `system:node:${node.name}`, groups: ["system:nodes"] }),
    ),
    kubeletServing: await write(
      dir,
      "kubelet-serving",
      await issueServingCert(ca, { commonName: node.name, dnsNames: [node.name], ips: [node.address] }),
    ),
    kubeProxy: await write(dir, "kube-proxy", await issueClientCert(ca, { cn: "system:kube-proxy" })),
  };
}

export async function createPki(dir: string): Promise<Pki> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ca = await createCa({ commonName: `${CLUSTER_NAME}-ca` });
  const etcdCa = await createCa({ commonName: `${CLUSTER_NAME}-etcd-ca` });
  const frontProxyCa = await createCa({ commonName: `${CLUSTER_NAME}-front-proxy-ca` });
  const serviceAccount = await generateKeyPair("RSA-2048");
  const saFiles = { privateKey: join(dir, "sa.key"), publicKey: join(dir, "sa.pub") };
  await writeFile(saFiles.privateKey, serviceAccount.privateKeyPem, { mode: 0o600 });
  await writeFile(saFiles.publicKey, serviceAccount.publicKeyPem);

  return {
    ca: await write(dir, "ca", ca),
    authority: ca,
    apiserver: await write(
      dir,
      "apiserver",
      await issueServingCert(ca, {
        commonName: "kube-apiserver",
        dnsNames: APISERVER_DNS_NAMES,
        ips: APISERVER_IPS,
      }),
    ),
    admin: await write(dir, "admin", await issueClientCert(ca, { cn: "admin", groups: ["system:masters"] })),
    // The default RBAC policy binds these user names to their components' ClusterRoles.
    controllerManager: await write(
      dir,
      "controller-manager",
      await issueClientCert(ca, { cn: "system:kube-controller-manager" }),
    ),
    scheduler: await write(dir, "scheduler", await issueClientCert(ca, { cn: "system:kube-scheduler" })),
    apiserverKubeletClient: await write(
      dir,
      "apiserver-kubelet-client",
      await issueClientCert(ca, { cn: "kube-apiserver-kubelet-client", groups: ["system:masters"] }),
    ),
    etcdCa: await write(dir, "etcd-ca", etcdCa),
    etcdServer: await write(
      dir,
      "etcd-server",
      // etcd dials its own client port (grpc-gateway) with this certificate.
      await issueServingCert(etcdCa, { dnsNames: ["localhost"], ips: ["127.0.0.1"], clientAuth: true }),
    ),
    apiserverEtcdClient: await write(
      dir,
      "apiserver-etcd-client",
      await issueClientCert(etcdCa, { cn: "kube-apiserver-etcd-client" }),
    ),
    frontProxyCa: await write(dir, "front-proxy-ca", frontProxyCa),
    frontProxyClient: await write(
      dir,
      "front-proxy-client",
      await issueClientCert(frontProxyCa, { cn: FRONT_PROXY_CLIENT }),
    ),
    serviceAccount: saFiles,
  };
}
