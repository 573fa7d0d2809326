// A container's environment, resolved as the kubelet's makeEnvironmentVariables does:
// service links, envFrom, env with $(VAR) expansion, and the downward API (fieldRef,
// resourceFieldRef), configMapKeyRef and secretKeyRef. Pure: the caller fetches the
// ConfigMaps and Secrets that referencedObjects names, and passes them in.
import type { ConfigMap, Container, Pod, Secret, Service } from "../kube/wire.ts";
import { parseQuantity } from "./quantity.ts";

/** A missing or bad reference: the kubelet reports it as CreateContainerConfigError. */
export class ContainerConfigError extends Error {}

export interface EnvSources {
  /** null: the object does not exist. */
  configMaps: ReadonlyMap<string, ConfigMap | null>;
  secrets: ReadonlyMap<string, Secret | null>;
  /** All Services the agent knows (for the service link variables). */
  services: readonly Service[];
  podIPs: readonly string[];
  hostIP: string;
  /** Node allocatable, the default for unset limits. */
  allocatable: { cpu: string; memory: string; "ephemeral-storage": string };
}

/** The ConfigMaps and Secrets a container's env refers to, by name. */
export function referencedObjects(c: Container): { configMaps: Set<string>; secrets: Set<string> } {
  const configMaps = new Set<string>();
  const secrets = new Set<string>();
  for (const from of c.envFrom ?? []) {
    if (from.configMapRef) configMaps.add(from.configMapRef.name ?? "");
    if (from.secretRef) secrets.add(from.secretRef.name ?? "");
  }
  for (const e of c.env ?? []) {
    if (e.valueFrom?.configMapKeyRef) configMaps.add(e.valueFrom.configMapKeyRef.name ?? "");
    if (e.valueFrom?.secretKeyRef) secrets.add(e.valueFrom.secretKeyRef.name ?? "");
  }
  return { configMaps, secrets };
}

const envName = (s: string) => s.replaceAll("-", "_").toUpperCase();

/** envvars.FromServices: the Docker-link style variables of the Services a pod sees. */
export function serviceEnv(pod: Pod, services: readonly Service[]): Map<string, string> {
  const ns = pod.metadata?.namespace;
  const links = pod.spec?.enableServiceLinks !== false;
  const picked = new Map<string, Service>();
  for (const s of services) {
    const ip = s.spec?.clusterIP;
    if (!ip || ip === "None" || !s.spec?.ports?.length) continue;
    const name = s.metadata?.name ?? "";
    // The apiserver's own Service is always linked; the pod's namespace only with service links.
    if (s.metadata?.namespace === "default" && name === "kubernetes") {
      if (!picked.has(name)) picked.set(name, s);
    } else if (s.metadata?.namespace === ns && links) {
      picked.set(name, s);
    }
  }
  const env = new Map<string, string>();
  for (const [name, s] of picked) {
    const prefix = envName(name);
    const ip = s.spec!.clusterIP!;
    const ports = s.spec!.ports!;
    env.set(`${prefix}_SERVICE_HOST`, ip);
    env.set(`${prefix}_SERVICE_PORT`, String(ports[0]!.port));
    for (const p of ports) if (p.name) env.set(`${prefix}_SERVICE_PORT_${envName(p.name)}`, String(p.port));
    ports.forEach((p, i) => {
      const proto = (p.protocol ?? "TCP").toLowerCase();
      const url = `${proto}://${ip}:${p.port}`;
      if (i === 0) env.set(`${prefix}_PORT`, url);
      const pp = `${prefix}_PORT_${p.port}_${proto.toUpperCase()}`;
      env.set(pp, url);
      env.set(`${pp}_PROTO`, proto);
      env.set(`${pp}_PORT`, String(p.port));
      env.set(`${pp}_ADDR`, ip);
    });
  }
  return env;
}

/**
 * Kubernetes' $(VAR) expansion (third_party/forked/golang/expansion): $(NAME) is replaced when
 * NAME is defined, $$ escapes a $, anything else stays as written.
 */
export function expand(input: string, lookup: (name: string) => string | undefined): string {
  let out = "";
  for (let i = 0; i < input.length; i++) {
    const ch = input[i];
    if (ch !== "$" || i + 1 >= input.length) {
      out += ch;
      continue;
    }
    const next = input[i + 1];
    if (next === "$") {
      out += "$";
      i++;
    } else if (next === "(") {
      const end = input.indexOf(")", i + 2);
      if (end < 0) {
        out += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, end);
      const value = name ? lookup(name) : undefined;
      out += value ?? `$(${name})`;
      i = end;
    } else {
      out += ch + next;
      i++;
    }
  }
  return out;
}

/** Go's strconv.Quote for the printable strings that labels and annotations hold. */
function goQuote(s: string): string {
  return JSON.stringify(s).replace(/\\u007f/g, "\\x7f");
}

function formatMap(m: Record<string, string> | undefined): string {
  return Object.keys(m ?? {})
    .sort()
    .map((k) => `${k}=${goQuote(m![k]!)}`)
    .join("\n");
}

/** The downward API's fieldRef values (podFieldSelectorRuntimeValue). */
export function fieldRefValue(
  pod: Pod,
  fieldPath: string,
  src: Pick<EnvSources, "podIPs" | "hostIP">,
): string {
  const sub = /^(metadata\.(?:labels|annotations))\['(.*)'\]$/.exec(fieldPath);
  if (sub) {
    const map = sub[1] === "metadata.labels" ? pod.metadata?.labels : pod.metadata?.annotations;
    return map?.[sub[2]!] ?? "";
  }
  switch (fieldPath) {
    case "metadata.name":
      return pod.metadata?.name ?? "";
    case "metadata.namespace":
      return pod.metadata?.namespace ?? "";
    case "metadata.uid":
      return pod.metadata?.uid ?? "";
    case "metadata.labels":
      return formatMap(pod.metadata?.labels);
    case "metadata.annotations":
      return formatMap(pod.metadata?.annotations);
    case "spec.nodeName":
      return pod.spec?.nodeName ?? "";
    case "spec.serviceAccountName":
      return pod.spec?.serviceAccountName ?? "";
    case "status.hostIP":
    case "status.hostIPs":
      return src.hostIP;
    case "status.podIP":
      return src.podIPs[0] ?? "";
    case "status.podIPs":
      return src.podIPs.join(",");
  }
  throw new ContainerConfigError(`unsupported fieldPath: ${fieldPath}`);
}

/** resourceFieldRef values: the value divided by the divisor, rounded up; limits default to allocatable. */
export function resourceFieldValue(
  pod: Pod,
  container: Container,
  ref: { containerName?: string; resource: string; divisor?: string | number },
  allocatable: EnvSources["allocatable"],
): string {
  const target = ref.containerName
    ? [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].find(
        (c) => c.name === ref.containerName,
      )
    : container;
  if (!target) throw new ContainerConfigError(`container ${ref.containerName} not found in pod`);
  const [kind, name] = ref.resource.split(".", 2) as [string, string | undefined];
  if ((kind !== "limits" && kind !== "requests") || !name || !(name in allocatable)) {
    throw new ContainerConfigError(`unsupported container resource : ${ref.resource}`);
  }
  const key = name as keyof EnvSources["allocatable"];
  const set = target.resources?.[kind]?.[key];
  const value = parseQuantity(set ?? (kind === "limits" ? allocatable[key] : "0"));
  const divisor = parseQuantity(ref.divisor ?? "1") || 1;
  return String(Math.ceil(key === "cpu" ? (value * 1000) / (divisor * 1000) : value / divisor));
}

/** The environment of one container, in the order the kubelet builds it. */
export function resolveEnv(pod: Pod, container: Container, src: EnvSources): Map<string, string> {
  const ns = pod.metadata?.namespace ?? "";
  const services = serviceEnv(pod, src.services);
  const env = new Map<string, string>();

  const configMap = (name: string, optional: boolean | undefined): ConfigMap | undefined => {
    const cm = src.configMaps.get(name);
    if (cm) return cm;
    if (optional) return undefined;
    throw new ContainerConfigError(`configmap "${name}" not found`);
  };
  const secret = (name: string, optional: boolean | undefined): Secret | undefined => {
    const s = src.secrets.get(name);
    if (s) return s;
    if (optional) return undefined;
    throw new ContainerConfigError(`secret "${name}" not found`);
  };
  const decode = (b64: string) => Buffer.from(b64, "base64").toString("utf8");

  for (const from of container.envFrom ?? []) {
    const prefix = from.prefix ?? "";
    if (from.configMapRef) {
      const cm = configMap(from.configMapRef.name ?? "", from.configMapRef.optional);
      for (const [k, v] of Object.entries(cm?.data ?? {})) env.set(prefix + k, v);
    } else if (from.secretRef) {
      const s = secret(from.secretRef.name ?? "", from.secretRef.optional);
      for (const [k, v] of Object.entries(s?.data ?? {})) env.set(prefix + k, decode(v));
    }
  }

  const lookup = (name: string) => env.get(name) ?? services.get(name);
  for (const e of container.env ?? []) {
    let value = e.value ?? "";
    const from = e.valueFrom;
    if (value !== "") {
      value = expand(value, lookup);
    } else if (from?.fieldRef) {
      value = fieldRefValue(pod, from.fieldRef.fieldPath, src);
    } else if (from?.resourceFieldRef) {
      value = resourceFieldValue(pod, container, from.resourceFieldRef, src.allocatable);
    } else if (from?.configMapKeyRef) {
      const ref = from.configMapKeyRef;
      const cm = configMap(ref.name ?? "", ref.optional);
      if (!cm) continue;
      const v = cm.data?.[ref.key];
      if (v === undefined) {
        if (ref.optional) continue;
        throw new ContainerConfigError(`couldn't find key ${ref.key} in ConfigMap ${ns}/${ref.name}`);
      }
      value = v;
    } else if (from?.secretKeyRef) {
      const ref = from.secretKeyRef;
      const s = secret(ref.name ?? "", ref.optional);
      if (!s) continue;
      const v = s.data?.[ref.key];
      if (v === undefined) {
        if (ref.optional) continue;
        throw new ContainerConfigError(`couldn't find key ${ref.key} in Secret ${ns}/${ref.name}`);
      }
      value = decode(v);
    }
    env.set(e.name, value);
  }

  for (const [k, v] of services) if (!env.has(k)) env.set(k, v);
  return env;
}
