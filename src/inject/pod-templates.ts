// Where a Kubernetes object keeps the pods it makes: a Pod is one, the workload kinds hold a
// template (`spec.template`, a CronJob one level deeper), and a List holds objects. Found by
// shape as well as by kind, so that a custom workload with a standard template (Argo
// Rollouts, OpenKruise) is covered too.
type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

export interface PodTemplateRef {
  /** Path from the document's root to the object that has `metadata` and `spec`. */
  path: (string | number)[];
  /** The object that holds it, as the user names it: `StatefulSet/coordinator`. */
  owner: string;
  template: Json;
}

export function findPodTemplates(object: unknown, path: (string | number)[] = []): PodTemplateRef[] {
  if (!isObject(object)) return [];
  const kind = typeof object["kind"] === "string" ? object["kind"] : "";
  if (kind.endsWith("List") && Array.isArray(object["items"])) {
    return object["items"].flatMap((item, i) => findPodTemplates(item, [...path, "items", i]));
  }
  const metadata = isObject(object["metadata"]) ? object["metadata"] : {};
  const owner = `${kind || "object"}/${String(metadata["name"] ?? metadata["generateName"] ?? "")}`;
  const spec = object["spec"];
  if (!isObject(spec)) return [];
  if (kind === "Pod") return [{ path, owner, template: object }];
  if (kind === "PodTemplate" && isObject(object["template"])) {
    return [{ path: [...path, "template"], owner, template: object["template"] }];
  }
  const jobTemplate = spec["jobTemplate"];
  if (isObject(jobTemplate) && isObject(jobTemplate["spec"]) && isObject(jobTemplate["spec"]["template"])) {
    const template = jobTemplate["spec"]["template"];
    return [{ path: [...path, "spec", "jobTemplate", "spec", "template"], owner, template }];
  }
  const template = spec["template"];
  if (isObject(template) && isObject(template["spec"]) && Array.isArray(template["spec"]["containers"])) {
    return [{ path: [...path, "spec", "template"], owner, template }];
  }
  return [];
}
