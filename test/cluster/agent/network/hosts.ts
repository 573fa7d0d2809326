// A pod's /etc/hosts: the kubelet's managed hosts file (pkg/kubelet/kubelet_pods.go,
// managedHostsFileContent), followed by the Service names that cluster DNS would answer.
// There is no DNS server: `ip netns exec` bind-mounts /etc/netns/<netns>/hosts over the
// pod's /etc/hosts, and getaddrinfo (Node's dns.lookup included) reads it.
import type { Pod } from "../kube/wire.ts";
import type { NameView } from "./service-view.ts";

const CLUSTER_DOMAIN = "cluster.local";

/** GeneratePodHostNameAndDomain: hostname and, with a subdomain, the pod's domain. */
export function podHostname(pod: Pod): { hostname: string; domain?: string } {
  const full = pod.spec?.hostname || pod.metadata?.name || "";
  // A hostname has at most 63 characters; a truncated one must not end with '-' or '.'.
  const hostname = full.length > 63 ? full.slice(0, 63).replace(/[-.]+$/, "") : full;
  const subdomain = pod.spec?.subdomain;
  if (!subdomain) return { hostname };
  return { hostname, domain: `${subdomain}.${pod.metadata?.namespace}.svc.${CLUSTER_DOMAIN}` };
}

function managedHostsFile(pod: Pod, podIPs: readonly string[]): string {
  const { hostname, domain } = podHostname(pod);
  let out =
    "# Kubernetes-managed hosts file.\n" +
    "127.0.0.1\tlocalhost\n" +
    "::1\tlocalhost ip6-localhost ip6-loopback\n" +
    "fe00::0\tip6-localnet\n" +
    "fe00::0\tip6-mcastprefix\n" +
    "fe00::1\tip6-allnodes\n" +
    "fe00::2\tip6-allrouters\n";
  for (const ip of podIPs)
    out += domain ? `${ip}\t${hostname}.${domain}\t${hostname}\n` : `${ip}\t${hostname}\n`;
  const aliases = pod.spec?.hostAliases ?? [];
  if (aliases.length) {
    out += "\n# Entries added by HostAliases.\n";
    for (const a of aliases) out += `${a.ip}\t${(a.hostnames ?? []).join("\t")}\n`;
  }
  return out;
}

/**
 * The names of one Service address, fully qualified first, as a pod in `podNamespace` can
 * write them (its resolv.conf search path would be <ns>.svc.cluster.local, svc.cluster.local,
 * cluster.local).
 */
function namesFor(n: NameView, podNamespace: string): string[] {
  const base = n.hostname ? `${n.hostname}.${n.service}` : n.service;
  const names = [
    `${base}.${n.namespace}.svc.${CLUSTER_DOMAIN}`,
    `${base}.${n.namespace}.svc`,
    `${base}.${n.namespace}`,
  ];
  if (n.namespace === podNamespace) names.push(base);
  return names;
}

export function renderHosts(pod: Pod, podIPs: readonly string[], names: readonly NameView[]): string {
  let out = managedHostsFile(pod, podIPs);
  if (names.length) {
    out += "\n# Services, as cluster DNS would answer (node agent; follows Services and EndpointSlices).\n";
    for (const n of names) out += `${n.ip}\t${namesFor(n, pod.metadata?.namespace ?? "").join("\t")}\n`;
  }
  return out;
}
