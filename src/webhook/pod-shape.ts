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
const isStringMap = (v: unknown): boolean => isObject(v) && Object.values(v).every(isString);
const isObjectList = (v: unknown): boolean => Array.isArray(v) && v.every(isObject);
const isMount = (v: unknown): boolean => isObject(v) && isString(v["mountPath"]);
const isMountList = (v: unknown): boolean => Array.isArray(v) && v.every(isMount);
const isPort = (v: unknown): boolean => isString(v) || typeof v === "number";
const isHttpGet = (v: unknown): boolean =>
  isObject(v) && isPort(v["port"]) && isOptional(v["path"], isString) && isOptional(v["scheme"], isString);

/** The object as a Pod, or what is wrong with it (naming the field). */
export function checkPod(object: unknown): { pod: Pod } | { problem: string } {
  const problem = podProblem(object);
  return problem === undefined ? { pod: object as Pod } : { problem };
}

/**
 * No pod nests deeper than this: the apiserver sends its decoded, typed object, whose deepest
 * fields (a projected volume's items, a probe's headers) are about a dozen levels down. The
 * diff (fast-json-patch) and JSON.stringify recurse, so a hostile body nested a hundred
 * thousand levels would overflow the stack: it is refused here, before anything recurses.
 */
export const MAX_POD_DEPTH = 64;

function podProblem(object: unknown): string | undefined {
  if (object === undefined || object === null) return "request.object is missing";
  if (!isObject(object)) return "request.object is not a JSON object";
  if (nestsDeeperThan(object, MAX_POD_DEPTH)) {
    return `request.object nests deeper than ${MAX_POD_DEPTH} levels: not a Pod`;
  }
  if (object["kind"] !== undefined && object["kind"] !== "Pod") {
    return `request.object is a ${JSON.stringify(object["kind"])}, not a Pod`;
  }
  const metadata = object["metadata"];
  if (!isOptional(metadata, isObject)) return "request.object.metadata is not an object";
  const annotations = isObject(metadata) ? metadata["annotations"] : undefined;
  if (!isOptional(annotations, isStringMap)) {
    return "request.object.metadata.annotations is not a map of strings";
  }

  const spec = object["spec"];
  if (!isObject(spec)) return "request.object has no spec: not a Pod";
  const containers = spec["containers"];
  if (!Array.isArray(containers) || containers.length === 0) {
    return "request.object.spec.containers is missing or empty: not a Pod";
  }
  for (const field of LIST_FIELDS) {
    if (!isOptional(spec[field], isObjectList))
      return `request.object.spec.${field} is not a list of objects`;
  }
  const securityProblem = securityContextProblem(
    spec["securityContext"],
    "request.object.spec.securityContext",
  );
  if (securityProblem !== undefined) return securityProblem;
  for (let i = 0; i < containers.length; i++) {
    const problem = containerProblem(containers[i], i);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

const LIST_FIELDS = ["initContainers", "volumes", "readinessGates"] as const;

function containerProblem(container: unknown, i: number): string | undefined {
  if (!isObject(container)) return `${containerAt(i)} is not an object`;
  if (!isString(container["name"])) return `${containerAt(i)}.name is missing`;
  if (!isOptional(container["volumeMounts"], isMountList)) {
    return `${containerAt(i)}.volumeMounts is not a list of mounts with a mountPath`;
  }
  if (!isOptional(container["ports"], isObjectList))
    return `${containerAt(i)}.ports is not a list of objects`;
  const securityProblem = securityContextProblem(
    container["securityContext"],
    `${containerAt(i)}.securityContext`,
  );
  if (securityProblem !== undefined) return securityProblem;
  const probe = container["readinessProbe"];
  if (!isOptional(probe, isObject)) return `${containerAt(i)}.readinessProbe is not an object`;
  if (isObject(probe) && !isOptional(probe["httpGet"], isHttpGet)) {
    return `${containerAt(i)}.readinessProbe.httpGet needs a port (number or name), and path and scheme must be strings`;
  }
  return undefined;
}

/** The ids that the sidecar's user is taken from (sidecar-user.ts) are non-negative integers. */
function securityContextProblem(context: unknown, where: string): string | undefined {
  if (!isOptional(context, isObject)) return `${where} is not an object`;
  if (!isObject(context)) return undefined;
  for (const field of ["runAsUser", "runAsGroup"]) {
    if (!isOptional(context[field], isId)) return `${where}.${field} is not a non-negative integer`;
  }
  return undefined;
}

const isId = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;

const containerAt = (i: number): string => `request.object.spec.containers[${i}]`;

/** Whether `value` has objects or arrays nested more than `max` levels deep; iterative, so that it cannot overflow. */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (typeof node !== "object" || node === null) continue;
    if (depth > max) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}
