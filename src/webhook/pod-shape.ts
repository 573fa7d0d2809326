// The apiserver only sends valid pods, but this is an HTTP endpoint: anything can arrive.
// These checks cover exactly the fields that injection reads or writes, so that a
// malformed object is refused with a message that names the field, instead of failing
// halfway through the mutation.
import type { V1Pod, V1PodSpec } from "@kubernetes/client-node";

/** A pod that has passed checkPod: the fields that injection touches have their JSON types. */
export type Pod = V1Pod & { spec: V1PodSpec };

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const isOptional = (v: unknown, check: (v: unknown) => boolean): boolean =>
  v === undefined || v === null || check(v);
const isString = (v: unknown): v is string => typeof v === "string";

/** The object as a Pod, or what is wrong with it (naming the field). */
export function checkPod(object: unknown): { pod: Pod } | { problem: string } {
  const problem = podProblem(object);
  return problem === undefined ? { pod: object as Pod } : { problem };
}

function podProblem(object: unknown): string | undefined {
  if (object === undefined || object === null) return "request.object is missing";
  if (!isObject(object)) return "request.object is not a JSON object";
  if (object["kind"] !== undefined && object["kind"] !== "Pod") {
    return `request.object is a ${JSON.stringify(object["kind"])}, not a Pod`;
  }
  const metadata = object["metadata"];
  if (!isOptional(metadata, isObject)) return "request.object.metadata is not an object";
  const annotations = isObject(metadata) ? metadata["annotations"] : undefined;
  if (!isOptional(annotations, (a) => isObject(a) && Object.values(a).every(isString))) {
    return "request.object.metadata.annotations is not a map of strings";
  }

  const spec = object["spec"];
  if (!isObject(spec)) return "request.object has no spec: not a Pod";
  const containers = spec["containers"];
  if (!Array.isArray(containers) || containers.length === 0) {
    return "request.object.spec.containers is missing or empty: not a Pod";
  }
  for (const field of ["initContainers", "volumes", "readinessGates"]) {
    const list = spec[field];
    if (!isOptional(list, (l) => Array.isArray(l) && l.every(isObject))) {
      return `request.object.spec.${field} is not a list of objects`;
    }
  }
  return containers.map((c, i) => containerProblem(c, `request.object.spec.containers[${i}]`)).find(Boolean);
}

function containerProblem(container: unknown, at: string): string | undefined {
  if (!isObject(container)) return `${at} is not an object`;
  if (!isString(container["name"])) return `${at}.name is missing`;
  const mounts = container["volumeMounts"];
  if (
    !isOptional(mounts, (l) => Array.isArray(l) && l.every((m) => isObject(m) && isString(m["mountPath"])))
  ) {
    return `${at}.volumeMounts is not a list of mounts with a mountPath`;
  }
  const ports = container["ports"];
  if (!isOptional(ports, (l) => Array.isArray(l) && l.every(isObject)))
    return `${at}.ports is not a list of objects`;
  const probe = container["readinessProbe"];
  if (!isOptional(probe, isObject)) return `${at}.readinessProbe is not an object`;
  const httpGet = isObject(probe) ? probe["httpGet"] : undefined;
  if (
    !isOptional(
      httpGet,
      (h) =>
        isObject(h) &&
        (isString(h["port"]) || typeof h["port"] === "number") &&
        isOptional(h["path"], isString) &&
        isOptional(h["scheme"], isString),
    )
  ) {
    return `${at}.readinessProbe.httpGet needs a port (number or name), and path and scheme must be strings`;
  }
  return undefined;
}
