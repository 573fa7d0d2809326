// What `inject` keeps and what it reports: a reviewer sees only the injected parts change
// (comments, order, quoting and the other documents stay as written), and every template it
// leaves alone comes with the reason.
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import { injectManifest, type InjectOptions } from "../../../src/inject/manifest.ts";
import { parseLabelSelector } from "../../../src/kube/label-selector.ts";
import { RECOVERED_CONDITION, SIDECAR_NAME, STATE_VOLUME } from "../../../src/names.ts";
import { params } from "../webhook/fixtures.ts";

const options: InjectOptions = { params, selector: parseLabelSelector("app.kubernetes.io/name=coordinator") };

const MANIFEST = `# The demo's objects.
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings # kept
data:
  quoted: "value"
  flow: {a: 1}
---
# The Coordinator.
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: coordinator
spec:
  replicas: 3 # three
  selector:
    matchLabels: {app.kubernetes.io/name: coordinator}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: coordinator
    spec:
      initContainers:
        - name: prepare # runs first today
          image: busybox
      containers:
        - name: coordinator
          image: "ghcr.io/edgelesssys/contrast/coordinator:v1.5.0"
          ports: [{name: probes, containerPort: 9102}]
          readinessProbe:
            httpGet: {path: /probe/readiness, port: probes}
...
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    metadata:
      labels: {app: web}
    spec:
      containers: [{name: web, image: nginx}]
`;

describe("inject on a multi-document YAML manifest", () => {
  const result = injectManifest(MANIFEST, options);
  const docs = parseAllDocuments(result.text).map((d) => d.toJS() as unknown);

  it("injects the selected template and says why it left the other alone", () => {
    expect(result.reports).toEqual([
      { owner: "StatefulSet/coordinator", outcome: "injected" },
      {
        owner: "Deployment/web",
        outcome: "skipped",
        reason: "not_selected",
        message: "its labels do not match the selector app.kubernetes.io/name=coordinator",
      },
    ]);
    const pod = (docs[1] as { spec: { template: { spec: Record<string, { name: string }[]> } } }).spec
      .template.spec;
    expect(pod["initContainers"]!.map((c) => c.name)).toEqual([SIDECAR_NAME, "prepare"]);
    expect(pod["readinessGates"]).toEqual([{ conditionType: RECOVERED_CONDITION }]);
    expect(pod["volumes"]!.map((v) => v.name)).toContain(STATE_VOLUME);
  });

  it("writes untouched documents back byte for byte", () => {
    const [first, , third] = MANIFEST.split(/^---\n/m);
    expect(result.text.startsWith(first!)).toBe(true);
    expect(result.text.endsWith(third!)).toBe(true);
  });

  it("keeps comments, quoting, flow style and order in the injected document", () => {
    for (const line of [
      "# The Coordinator.",
      "  replicas: 3 # three",
      "    matchLabels: {app.kubernetes.io/name: coordinator}",
      "        - name: prepare # runs first today",
      '          image: "ghcr.io/edgelesssys/contrast/coordinator:v1.5.0"',
      "          ports: [{name: probes, containerPort: 9102}]",
      "...",
    ]) {
      expect(result.text.split("\n")).toContain(line);
    }
    // The user's init container keeps its comment as it moves behind the sidecar.
    expect(result.text.indexOf(`- name: ${SIDECAR_NAME}`)).toBeLessThan(
      result.text.indexOf("- name: prepare # runs first today"),
    );
    const keys = Object.keys((docs[1] as { spec: object }).spec);
    expect(keys).toEqual(["replicas", "selector", "template"]);
  });

  it("is idempotent: a second run changes nothing and says so", () => {
    const again = injectManifest(result.text, options);
    expect(again.text).toBe(result.text);
    expect(again.reports[0]).toMatchObject({ outcome: "skipped", reason: "already_injected" });
  });
});

describe("inject's decisions, one template each", () => {
  const statefulSet = (template: object) =>
    JSON.stringify({
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: { name: "c" },
      spec: { template },
    });
  const labels = { "app.kubernetes.io/name": "coordinator" };
  const containers = [{ name: "app", image: "app" }];

  it.each<[string, object, object]>([
    [
      "an opt-out annotation",
      { metadata: { labels, annotations: { "coordinator-ha.io/inject": "false" } }, spec: { containers } },
      { outcome: "skipped", reason: "opted_out" },
    ],
    [
      "an opt-out label",
      { metadata: { labels: { ...labels, "coordinator-ha.io/inject": "false" } }, spec: { containers } },
      { outcome: "skipped", reason: "opted_out" },
    ],
    [
      "a template without containers",
      { metadata: { labels }, spec: { containers: [] } },
      {
        outcome: "refused",
        reason: "invalid_template",
        message: expect.stringContaining("the pod template.spec.containers"),
      },
    ],
    [
      "a container named like the sidecar",
      { metadata: { labels }, spec: { containers: [{ name: SIDECAR_NAME, image: "x" }] } },
      { outcome: "refused", reason: "reserved_name" },
    ],
    [
      "another volume at the state directory",
      {
        metadata: { labels },
        spec: { containers: [{ name: "app", volumeMounts: [{ name: "data", mountPath: params.stateDir }] }] },
      },
      { outcome: "refused", reason: "state_dir_conflict" },
    ],
  ])("%s", (_what, template, report) => {
    const text = statefulSet(template);
    const result = injectManifest(text, options);
    expect(result.reports).toEqual([expect.objectContaining({ owner: "StatefulSet/c", ...report })]);
    expect(result.text).toBe(text);
  });

  it("finds templates in a List, and leaves objects without one alone", () => {
    const list = {
      apiVersion: "v1",
      kind: "List",
      items: [
        { apiVersion: "v1", kind: "Service", metadata: { name: "c" }, spec: { ports: [{ port: 1313 }] } },
        { apiVersion: "v1", kind: "Pod", metadata: { name: "p", labels }, spec: { containers } },
      ],
    };
    const result = injectManifest(JSON.stringify(list), options);
    expect(result.reports).toEqual([{ owner: "Pod/p", outcome: "injected" }]);
    const out = JSON.parse(result.text) as typeof list;
    expect(out.items[0]).toEqual(list.items[0]);
    expect(result.text).toMatch(/^\{\n {2}"apiVersion"/);
  });

  it("refuses a document that is not YAML, naming it", () => {
    expect(() => injectManifest("a: 1\n---\nb: [\n", options)).toThrow(/document 2 is not valid YAML/);
  });

  it("keeps a YAML file without templates exactly as it was", () => {
    const text = "# only a comment\n---\nkind: ConfigMap\ndata: {a: b}\n";
    expect(injectManifest(text, options)).toEqual({ text, reports: [] });
  });

  it("keeps lists flush with their key when the document writes them so (kubectl, toYaml)", () => {
    const flush = [
      "apiVersion: v1",
      "kind: Pod",
      "metadata:",
      "  name: c",
      "  labels:",
      "    app.kubernetes.io/name: coordinator",
      "spec:",
      "  containers:",
      "  - name: app",
      "    image: app",
      "    args:",
      "    - serve",
      "",
    ].join("\n");
    const out = injectManifest(flush, options).text.split("\n");
    for (const line of flush.split("\n")) expect(out).toContain(line);
    expect(out).toContain("  - name: coordinator-ha-recovery");
  });

  it.each([
    ["a comment above the first document", "# head\n{pod}---\nkind: X\n"],
    ["comments around ---", "# head\n---\n# in doc\n{pod}"],
    ["... and comments after the last document", "kind: X\n...\n# between\n---\n{pod}...\n# tail\n"],
    ["a comment at the end", "kind: X\n---\n{pod}# tail\n"],
  ])("writes %s exactly once", (_what, template) => {
    const pod =
      "kind: Pod\nmetadata:\n  labels: {app.kubernetes.io/name: coordinator}\nspec:\n  containers: [{name: a, image: a}]\n";
    const text = template.replace("{pod}", pod);
    const out = injectManifest(text, options).text;
    for (const comment of text.match(/# \w+( \w+)*/g)!)
      expect(out.split(comment).length - 1, comment).toBe(1);
    expect(parseAllDocuments(out).map((d) => d.errors)).toEqual(parseAllDocuments(text).map(() => []));
  });
});
