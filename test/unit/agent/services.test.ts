// Service proxying: the view kube-proxy would program, the iptables rules, and the hosts file.
import { describe, expect, it } from "vitest";
import type { EndpointSlice, Pod, Service } from "../../cluster/agent/kube/wire.ts";
import { renderHosts } from "../../cluster/agent/network/hosts.ts";
import { renderRules, svcChain } from "../../cluster/agent/network/iptables-rules.ts";
import { buildServiceView } from "../../cluster/agent/network/service-view.ts";

const svc = (ns: string, name: string, spec: Service["spec"]): Service => ({
  metadata: { namespace: ns, name },
  spec,
});
type Ep = NonNullable<EndpointSlice["endpoints"]>[number];
const slice = (
  ns: string,
  service: string,
  endpoints: Ep[],
  ports = [{ name: "http", port: 8080, protocol: "TCP" }],
) =>
  ({
    metadata: { namespace: ns, name: `${service}-abc`, labels: { "kubernetes.io/service-name": service } },
    addressType: "IPv4",
    endpoints,
    ports,
  }) as EndpointSlice;
const ep = (
  ip: string,
  conditions: Ep["conditions"] = { ready: true, serving: true, terminating: false },
  hostname?: string,
): Ep => ({
  addresses: [ip],
  conditions,
  ...(hostname ? { hostname } : {}),
});

const web = svc("app", "web", {
  clusterIP: "10.96.0.10",
  ports: [{ name: "http", port: 80, protocol: "TCP" }],
});

describe("service view", () => {
  it("sends traffic to ready endpoints only, at their target port", () => {
    const view = buildServiceView(
      [web],
      [
        slice("app", "web", [
          ep("10.244.0.3"),
          ep("10.244.0.2"),
          ep("10.244.0.4", { ready: false, serving: false }),
        ]),
      ],
    );
    expect(view.ports).toEqual([
      {
        namespace: "app",
        name: "web",
        portName: "http",
        protocol: "TCP",
        clusterIP: "10.96.0.10",
        port: 80,
        backends: [
          { ip: "10.244.0.2", port: 8080 },
          { ip: "10.244.0.3", port: 8080 },
        ],
      },
    ]);
  });

  it("falls back to serving, terminating endpoints when none is ready (a draining rollout)", () => {
    const view = buildServiceView(
      [web],
      [
        slice("app", "web", [
          ep("10.244.0.2", { ready: false, serving: true, terminating: true }),
          ep("10.244.0.3", { ready: false, serving: false, terminating: false }),
        ]),
      ],
    );
    expect(view.ports[0]!.backends).toEqual([{ ip: "10.244.0.2", port: 8080 }]);
  });

  it("resolves a headless Service to its endpoints, with per-pod hostnames", () => {
    const headless = svc("app", "db", { clusterIP: "None", ports: [{ name: "http", port: 80 }] });
    const view = buildServiceView([headless], [slice("app", "db", [ep("10.244.0.5", undefined, "db-0")])]);
    expect(view.ports).toEqual([]);
    expect(view.names).toEqual([
      { namespace: "app", service: "db", ip: "10.244.0.5" },
      { namespace: "app", service: "db", hostname: "db-0", ip: "10.244.0.5" },
    ]);
  });
});

describe("iptables rules", () => {
  const view = buildServiceView(
    [web, svc("app", "empty", { clusterIP: "10.96.0.11", ports: [{ port: 81, protocol: "TCP" }] })],
    [slice("app", "web", [ep("10.244.0.2"), ep("10.244.0.3")])],
  );
  const rules = renderRules(view.ports, "10.244.0.0/24", "cha0", {
    nat: ["CHA-SVC-GONE", "CHA-SERVICES"],
    filter: [],
  });

  it("DNATs a ClusterIP port to one endpoint, picked at random like kube-proxy", () => {
    const chain = svcChain(view.ports.find((p) => p.name === "web")!);
    expect(rules).toContain(
      `-A CHA-SERVICES -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -m comment --comment "app/web:http" -j ${chain}`,
    );
    expect(rules).toMatch(
      new RegExp(`-A ${chain} .*-m statistic --mode random --probability 0\\.5000000000 -j CHA-SEP-`),
    );
    expect(rules).toContain("-j DNAT --to-destination 10.244.0.2:8080");
    expect(rules).toContain("-j DNAT --to-destination 10.244.0.3:8080");
  });

  it("masquerades hairpin traffic (a pod reaching itself through its Service)", () => {
    expect(rules).toMatch(/-A CHA-SEP-\w+ -s 10\.244\.0\.2\/32 .*-j CHA-MARK-MASQ/);
    expect(rules).toContain("-A CHA-POSTROUTING -j MARK --xor-mark 0x4000");
  });

  it("rejects a Service port without endpoints", () => {
    expect(rules).toContain(
      '-A CHA-SERVICES -d 10.96.0.11/32 -p tcp -m tcp --dport 81 -m comment --comment "app/empty has no endpoints" -j REJECT --reject-with icmp-port-unreachable',
    );
  });

  it("flushes and deletes the chains of vanished Services", () => {
    expect(rules).toContain(":CHA-SVC-GONE - [0:0]");
    expect(rules).toContain("-X CHA-SVC-GONE");
    expect(rules).not.toContain("-X CHA-SERVICES");
  });

  it("is deterministic, so that an unchanged view is not reapplied", () => {
    const again = renderRules(view.ports, "10.244.0.0/24", "cha0", {
      nat: ["CHA-SVC-GONE", "CHA-SERVICES"],
      filter: [],
    });
    expect(again).toBe(rules);
  });
});

describe("hosts file", () => {
  const pod: Pod = {
    metadata: { name: "client", namespace: "app" },
    spec: { containers: [], hostAliases: [{ ip: "1.2.3.4", hostnames: ["a.example", "b.example"] }] },
  };

  it("starts with the kubelet's managed hosts file and adds Service names as cluster DNS would", () => {
    const view = buildServiceView(
      [web, svc("other", "api", { clusterIP: "10.96.0.12", ports: [{ port: 443 }] })],
      [],
    );
    const hosts = renderHosts(pod, ["10.244.0.9"], view.names);
    expect(hosts).toBe(
      "# Kubernetes-managed hosts file.\n" +
        "127.0.0.1\tlocalhost\n" +
        "::1\tlocalhost ip6-localhost ip6-loopback\n" +
        "fe00::0\tip6-localnet\n" +
        "fe00::0\tip6-mcastprefix\n" +
        "fe00::1\tip6-allnodes\n" +
        "fe00::2\tip6-allrouters\n" +
        "10.244.0.9\tclient\n" +
        "\n# Entries added by HostAliases.\n" +
        "1.2.3.4\ta.example\tb.example\n" +
        "\n# Services, as cluster DNS would answer (node agent; follows Services and EndpointSlices).\n" +
        "10.96.0.10\tweb.app.svc.cluster.local\tweb.app.svc\tweb.app\tweb\n" +
        "10.96.0.12\tapi.other.svc.cluster.local\tapi.other.svc\tapi.other\n",
    );
  });

  it("gives a pod with a subdomain its fully qualified name", () => {
    const sts: Pod = {
      metadata: { name: "db-0", namespace: "app" },
      spec: { containers: [], hostname: "db-0", subdomain: "db" },
    };
    expect(renderHosts(sts, ["10.244.0.5"], [])).toContain(
      "10.244.0.5\tdb-0.db.app.svc.cluster.local\tdb-0\n",
    );
  });
});
