// The patch is the difference between the pod and its mutated copy, so JSON-pointer
// escaping (`~1` for the `/` in annotation keys) and absent arrays (no
// `/spec/initContainers/-` on a pod without init containers) are right by construction.
import jsonpatch from "fast-json-patch";
import type { Operation } from "fast-json-patch";

export function diffPatch(original: object, mutated: object): Operation[] {
  return jsonpatch.compare(original, mutated);
}
