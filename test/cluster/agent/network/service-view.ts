// Services and their EndpointSlices, reduced to what the service proxy programs: for each
// ClusterIP service port, the endpoints that traffic may go to, chosen as kube-proxy
// chooses them (pkg/proxy/endpointslicecache.go, topology.go).
import type { EndpointSlice, Service } from "../kube/wire.ts";

export interface Backend {
  ip: string;
  port: number;
}

export interface ServicePortView {
  namespace: string;
  name: string;
  /** The Service port's name ("" for a single unnamed port). */
  portName: string;
  protocol: string;
  clusterIP: string;
  port: number;
  backends: Backend[];
}

/** One address a name resolves to, for the pods' hosts files. */
export interface NameView {
  namespace: string;
  service: string;
  /** Set for a StatefulSet-style endpoint hostname under a headless Service. */
  hostname?: string;
  ip: string;
}

export interface ServiceView {
  ports: ServicePortView[];
  names: NameView[];
}

const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

interface Endpoint {
  ip: string;
  hostname?: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  ports: Map<string, { port: number; protocol: string }>;
}

function endpointsOf(slices: readonly EndpointSlice[]): Endpoint[] {
  const byIP = new Map<string, Endpoint>();
  for (const slice of slices) {
    if (slice.addressType !== "IPv4") continue;
    const ports = new Map(
      (slice.ports ?? []).map((p) => [p.name ?? "", { port: p.port ?? 0, protocol: p.protocol ?? "TCP" }]),
    );
    for (const ep of slice.endpoints ?? []) {
      const ip = ep.addresses?.[0];
      if (!ip) continue;
      // kube-proxy's defaults: a missing condition means ready/serving, not terminating.
      const ready = ep.conditions?.ready !== false;
      const serving = ep.conditions?.serving ?? ready;
      const terminating = ep.conditions?.terminating === true;
      const known = byIP.get(ip);
      if (known) {
        for (const [k, v] of ports) known.ports.set(k, v);
        continue;
      }
      byIP.set(ip, {
        ip,
        ...(ep.hostname ? { hostname: ep.hostname } : {}),
        ready,
        serving,
        terminating,
        ports: new Map(ports),
      });
    }
  }
  return [...byIP.values()].sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
}

/**
 * The endpoints traffic goes to: the ready ones; when none is ready, the serving endpoints
 * that are terminating (ProxyTerminatingEndpoints, so that a rollout's last pod keeps
 * serving while it drains). publishNotReadyAddresses needs no case here: the EndpointSlice
 * controller already marks those endpoints ready.
 */
function usableEndpoints(endpoints: readonly Endpoint[]): Endpoint[] {
  const ready = endpoints.filter((e) => e.ready);
  if (ready.length) return ready;
  return endpoints.filter((e) => e.serving && e.terminating);
}

export function buildServiceView(
  services: readonly Service[],
  slices: readonly EndpointSlice[],
): ServiceView {
  const slicesByService = new Map<string, EndpointSlice[]>();
  for (const s of slices) {
    const svc = s.metadata?.labels?.[SERVICE_NAME_LABEL];
    if (!svc) continue;
    const key = `${s.metadata?.namespace}/${svc}`;
    slicesByService.set(key, [...(slicesByService.get(key) ?? []), s]);
  }

  const view: ServiceView = { ports: [], names: [] };
  const sorted = [...services].sort((a, b) =>
    `${a.metadata?.namespace}/${a.metadata?.name}` < `${b.metadata?.namespace}/${b.metadata?.name}` ? -1 : 1,
  );
  for (const svc of sorted) {
    const namespace = svc.metadata?.namespace ?? "";
    const name = svc.metadata?.name ?? "";
    if (svc.spec?.type === "ExternalName") continue;
    const endpoints = endpointsOf(slicesByService.get(`${namespace}/${name}`) ?? []);
    const clusterIP = svc.spec?.clusterIP;

    if (!clusterIP || clusterIP === "None") {
      // Headless: the name resolves to the endpoints themselves, as cluster DNS answers.
      for (const ep of usableEndpoints(endpoints)) {
        view.names.push({ namespace, service: name, ip: ep.ip });
        if (ep.hostname) view.names.push({ namespace, service: name, hostname: ep.hostname, ip: ep.ip });
      }
      continue;
    }
    view.names.push({ namespace, service: name, ip: clusterIP });
    const usable = usableEndpoints(endpoints);
    for (const p of svc.spec?.ports ?? []) {
      const protocol = p.protocol ?? "TCP";
      const portName = p.name ?? "";
      const backends: Backend[] = [];
      for (const ep of usable) {
        const target = ep.ports.get(portName);
        if (target && target.protocol === protocol && target.port)
          backends.push({ ip: ep.ip, port: target.port });
      }
      view.ports.push({ namespace, name, portName, protocol, clusterIP, port: p.port, backends });
    }
  }
  return view;
}
