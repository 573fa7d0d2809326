// A Kubernetes label selector in its string form (`a=b,c!=d,e in (f,g),!h`): parsed once,
// handed verbatim to the apiserver for list/watch, and matched locally against a live pod
// so that both agree on what "selected" means.
export interface LabelSelector {
  /** The selector as the apiserver takes it (`labelSelector=`). */
  text: string;
  matches(labels: Record<string, string> | undefined): boolean;
}

type Requirement =
  { key: string; op: "in" | "notin"; values: string[] } | { key: string; op: "exists" | "!exists" };

// Label keys are [prefix/]name; values are empty or a name (k8s.io/apimachinery validation).
const NAME = "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?";
const KEY = new RegExp(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?${NAME}$`);
const VALUE = new RegExp(`^(${NAME})?$`);

/** Parses a selector string; throws an Error that names the bad part. */
export function parseLabelSelector(text: string): LabelSelector {
  const requirements = splitTopLevel(text.trim()).map(parseRequirement);
  if (requirements.length === 0) throw new Error("selector is empty; it would select every pod");
  return {
    text: text.trim(),
    matches: (labels) => requirements.every((r) => satisfies(r, labels ?? {})),
  };
}

function satisfies(r: Requirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, r.key);
  switch (r.op) {
    case "exists":
      return has;
    case "!exists":
      return !has;
    case "in":
      return has && r.values.includes(labels[r.key] as string);
    case "notin":
      return !has || !r.values.includes(labels[r.key] as string);
  }
}

/** Splits on the commas that are not inside `( … )`. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "(") depth++;
    else if (text[i] === ")") depth--;
    else if (text[i] === "," && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (text.length > 0) parts.push(text.slice(start));
  return parts.map((p) => p.trim());
}

function parseRequirement(part: string): Requirement {
  const bad = (why: string) => new Error(`selector requirement ${JSON.stringify(part)} ${why}`);
  const set = /^(\S+)\s+(in|notin)\s*\(([^()]*)\)$/.exec(part);
  if (set) {
    const values = (set[3] as string).split(",").map((v) => v.trim());
    if (values.some((v) => v === "" || !VALUE.test(v))) throw bad("has an empty or invalid value");
    return { key: checkKey(set[1] as string, bad), op: set[2] as "in" | "notin", values };
  }
  if (/[()]/.test(part)) throw bad("is not `key in (a,b)` or `key notin (a,b)`");
  const eq = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part);
  if (eq) {
    const value = eq[3] as string;
    if (!VALUE.test(value)) throw bad("has an invalid value");
    return { key: checkKey(eq[1] as string, bad), op: eq[2] === "!=" ? "notin" : "in", values: [value] };
  }
  if (part.startsWith("!")) return { key: checkKey(part.slice(1).trim(), bad), op: "!exists" };
  return { key: checkKey(part, bad), op: "exists" };
}

function checkKey(key: string, bad: (why: string) => Error): string {
  if (!KEY.test(key) || key.length > 253 + 1 + 63) throw bad("has an invalid label key");
  return key;
}
