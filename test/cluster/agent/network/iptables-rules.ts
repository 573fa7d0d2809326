// The Service NAT rules, rendered as iptables-restore input, in kube-proxy's iptables
// layout (pkg/proxy/iptables/proxier.go) with a CHA- prefix:
//   nat    PREROUTING, OUTPUT -> CHA-SERVICES: ClusterIP:port -> CHA-SVC-<hash>
//          CHA-SVC-<hash>: one endpoint chosen at random (-m statistic) -> CHA-SEP-<hash>
//          CHA-SEP-<hash>: mark hairpin traffic for masquerade, DNAT to the endpoint
//          POSTROUTING -> CHA-POSTROUTING: masquerade marked traffic, and pod traffic that
//          leaves the node
//   filter OUTPUT, FORWARD -> CHA-SERVICES: REJECT a Service port without endpoints, so
//          that clients fail fast instead of timing out
//          FORWARD -> CHA-FORWARD: accept pod traffic even under a DROP forward policy
// Pure: the same view always renders the same text, so a sync is skipped when nothing changed.
import { createHash } from "node:crypto";
import type { ServicePortView } from "./service-view.ts";

export const CHAIN_PREFIX = "CHA-";
const MASQ_MARK = "0x4000";

const AGENT_COMMENT = ["-m", "comment", "--comment", "coordinator-ha node agent"];

/** Jumps from the built-in chains into the agent's: [table, built-in chain, rule]. */
export const JUMP_RULES: readonly (readonly [string, string, readonly string[]])[] = [
  ["nat", "PREROUTING", [...AGENT_COMMENT, "-j", "CHA-SERVICES"]],
  ["nat", "OUTPUT", [...AGENT_COMMENT, "-j", "CHA-SERVICES"]],
  ["nat", "POSTROUTING", [...AGENT_COMMENT, "-j", "CHA-POSTROUTING"]],
  ["filter", "OUTPUT", ["-m", "conntrack", "--ctstate", "NEW", ...AGENT_COMMENT, "-j", "CHA-SERVICES"]],
  ["filter", "FORWARD", ["-m", "conntrack", "--ctstate", "NEW", ...AGENT_COMMENT, "-j", "CHA-SERVICES"]],
  ["filter", "FORWARD", [...AGENT_COMMENT, "-j", "CHA-FORWARD"]],
];

function hash(s: string): string {
  // kube-proxy: base32 of a sha256, 16 characters.
  const bytes = createHash("sha256").update(s).digest();
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  let out = "";
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5 && out.length < 16) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

// kube-proxy's ServicePortName: ns/name, plus :port-name when the port has one.
const portId = (p: ServicePortView) => `${p.namespace}/${p.name}${p.portName ? `:${p.portName}` : ""}`;
export const svcChain = (p: ServicePortView) => `CHA-SVC-${hash(portId(p) + p.protocol)}`;
const sepChain = (p: ServicePortView, ip: string, port: number) =>
  `CHA-SEP-${hash(portId(p) + p.protocol + `${ip}:${port}`)}`;

const quote = (s: string) => `"${s}"`;

/**
 * Renders all of the agent's chains as iptables-restore --noflush input. `existing` lists the CHA- chains currently in each
 * table, so that chains of vanished Services and endpoints are flushed and deleted.
 */
export function renderRules(
  ports: readonly ServicePortView[],
  podCIDR: string,
  bridge: string,
  existing: { nat: readonly string[]; filter: readonly string[] },
): string {
  const natChains = new Set(["CHA-SERVICES", "CHA-POSTROUTING", "CHA-MARK-MASQ"]);
  const natRules: string[] = [
    `-A CHA-MARK-MASQ -j MARK --or-mark ${MASQ_MARK}`,
    // Pods reach beyond the node with the node's address (the bridge CNI plugin's ipMasq).
    `-A CHA-POSTROUTING -s ${podCIDR} ! -d ${podCIDR} ! -o ${bridge} -m comment --comment ${quote("pod traffic leaving the node")} -j MASQUERADE`,
    `-A CHA-POSTROUTING -m mark ! --mark ${MASQ_MARK}/${MASQ_MARK} -j RETURN`,
    `-A CHA-POSTROUTING -j MARK --xor-mark ${MASQ_MARK}`,
    `-A CHA-POSTROUTING -m comment --comment ${quote("service traffic that needs SNAT")} -j MASQUERADE`,
  ];
  const filterChains = new Set(["CHA-SERVICES", "CHA-FORWARD"]);
  const filterRules: string[] = [
    `-A CHA-FORWARD -s ${podCIDR} -m comment --comment ${quote("pod traffic")} -j ACCEPT`,
    `-A CHA-FORWARD -d ${podCIDR} -m comment --comment ${quote("pod traffic")} -j ACCEPT`,
  ];

  for (const p of ports) {
    const proto = p.protocol.toLowerCase();
    const match = `-d ${p.clusterIP}/32 -p ${proto} -m ${proto} --dport ${p.port}`;
    const comment = `-m comment --comment ${quote(portId(p))}`;
    if (p.backends.length === 0) {
      const why = `-m comment --comment ${quote(`${portId(p)} has no endpoints`)}`;
      filterRules.push(`-A CHA-SERVICES ${match} ${why} -j REJECT --reject-with icmp-port-unreachable`);
      continue;
    }
    const svc = svcChain(p);
    natChains.add(svc);
    natRules.push(`-A CHA-SERVICES ${match} ${comment} -j ${svc}`);
    p.backends.forEach((b, i) => {
      const sep = sepChain(p, b.ip, b.port);
      natChains.add(sep);
      const remaining = p.backends.length - i;
      const pick =
        remaining > 1 ? `-m statistic --mode random --probability ${(1 / remaining).toFixed(10)} ` : "";
      natRules.push(`-A ${svc} ${comment} ${pick}-j ${sep}`);
      // Hairpin: a pod reaching itself through its Service must not see its own address as
      // the source, or its kernel drops the packet; masquerade it like kube-proxy does.
      natRules.push(`-A ${sep} -s ${b.ip}/32 ${comment} -j CHA-MARK-MASQ`);
      natRules.push(
        `-A ${sep} -p ${proto} ${comment} -m ${proto} -j DNAT --to-destination ${b.ip}:${b.port}`,
      );
    });
  }

  const table = (name: string, chains: Set<string>, rules: string[], old: readonly string[]) => {
    const stale = old.filter((c) => c.startsWith(CHAIN_PREFIX) && !chains.has(c));
    return [
      `*${name}`,
      ...[...chains, ...stale].map((c) => `:${c} - [0:0]`),
      ...rules,
      ...stale.map((c) => `-X ${c}`),
      "COMMIT",
    ];
  };
  return [
    ...table("nat", natChains, natRules, existing.nat),
    ...table("filter", filterChains, filterRules, existing.filter),
    "",
  ].join("\n");
}
