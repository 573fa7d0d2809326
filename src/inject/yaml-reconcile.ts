// Brings a parsed YAML node to a new value while keeping what a reviewer of the file cares
// about: comments, key order, quoting and the style of every node whose value stays. Only
// what changed is rebuilt. Lists of named things (containers, volumes, mounts, readiness
// gates) are matched by name rather than by position, so that an item inserted in front
// (the sidecar, first among the init containers) moves the user's items and their comments
// along instead of overwriting them one slot at a time.
import {
  isMap,
  isScalar,
  isSeq,
  type Document,
  type Node,
  type Pair,
  type YAMLMap,
  type YAMLSeq,
} from "yaml";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const isObject = (v: unknown): v is Record<string, Json> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** The node to keep in place of `node` so that it reads as `target`; `node` may be changed. */
export function reconcile(doc: Document, node: unknown, target: Json): Node {
  if (isObject(target) && isMap(node)) return reconcileMap(doc, node, target);
  if (Array.isArray(target) && isSeq(node)) return reconcileSeq(doc, node, target);
  if (isScalar(node) && !isObject(target) && !Array.isArray(target) && node.value === target) return node;
  return doc.createNode(target);
}

function reconcileMap(doc: Document, node: YAMLMap, target: Record<string, Json>): Node {
  const keyOf = (pair: Pair) => String(isScalar(pair.key) ? pair.key.value : pair.key);
  const wasEmpty = node.items.length === 0;
  node.items = node.items.filter((pair) => Object.hasOwn(target, keyOf(pair)));
  for (const [key, value] of Object.entries(target)) {
    const pair = node.items.find((p) => keyOf(p) === key);
    if (pair) pair.value = reconcile(doc, pair.value, value);
    else node.items.push(doc.createPair(key, value));
  }
  // An empty `{}` that receives structured entries reads better as a block.
  if (node.flow && wasEmpty && node.items.some((p) => !isScalar(p.value))) node.flow = false;
  return node;
}

function reconcileSeq(doc: Document, node: YAMLSeq, target: Json[]): Node {
  const unused = [...node.items];
  const wasEmpty = unused.length === 0;
  node.items = target.map((value, i) => {
    const id = identity(value);
    const at =
      id === undefined
        ? unused.findIndex((item) => item === node.items[i] && identity(toJson(item)) === undefined)
        : unused.findIndex((item) => identity(toJson(item)) === id);
    if (at < 0) return doc.createNode(value);
    const [item] = unused.splice(at, 1);
    return reconcile(doc, item, value);
  });
  if (node.flow && wasEmpty && node.items.some((item) => !isScalar(item))) node.flow = false;
  return node;
}

/** What names a list item in a pod spec: `name` (containers, volumes, mounts) or a gate's type. */
function identity(value: Json): string | undefined {
  if (!isObject(value)) return undefined;
  for (const key of ["name", "conditionType"]) {
    const id = value[key];
    if (typeof id === "string") return `${key}=${id}`;
  }
  return undefined;
}

function toJson(node: unknown): Json {
  return (node as { toJSON?: () => Json } | null)?.toJSON?.() ?? (node as Json);
}
