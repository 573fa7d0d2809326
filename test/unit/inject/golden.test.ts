// `inject` against the webhook, for every webhook fixture (test/unit/webhook/testdata): the
// pod that `inject` writes, and the pod template of every workload kind that `inject` writes,
// equal the webhook's JSON Patch applied to the same pod. And the webhook leaves what
// `inject` wrote alone (already injected), as does a second `inject`.
import { readdirSync } from "node:fs";
import { parse, stringify } from "yaml";
import { describe, expect, it } from "vitest";
import { injectManifest, type InjectOptions } from "../../../src/inject/manifest.ts";
import { parseLabelSelector } from "../../../src/kube/label-selector.ts";
import type { Pod } from "../../../src/webhook/pod-shape.ts";
import { review } from "../../../src/webhook/review.ts";
import type { InjectionParams } from "../../../src/webhook/sidecar.ts";
import { applyPatch, decodePatch, params, podReview, readJson, TESTDATA } from "../webhook/fixtures.ts";

const cases = readdirSync(TESTDATA)
  .filter((f) => f.endsWith(".in.json"))
  .map((f) => f.slice(0, -".in.json".length));

// The apiserver calls the webhook only for selected pods; the fixtures' labels vary, so this
// selector takes them all, as the webhook's own tests do.
const selector = parseLabelSelector("!coordinator-ha.io/none");
// Both forms of the sidecar's probes (--sidecar-probes http and exec).
const variants: [string, InjectOptions][] = [
  ["http probes", { params, selector }],
  ["exec probes", { params: { ...params, probes: "exec" }, selector }],
];

function webhookResult(pod: Pod, params: InjectionParams): Pod {
  const result = review(podReview(pod), params);
  if (result.status !== 200) throw new Error(result.message);
  return applyPatch(pod, decodePatch(result.review.response));
}

type Workload = (template: { metadata: unknown; spec: unknown }) => {
  object: Record<string, unknown>;
  template: (o: Record<string, unknown>) => { metadata: unknown; spec: unknown };
};

const spec = (o: Record<string, unknown>) => o["spec"] as Record<string, Record<string, unknown>>;
const withTemplate =
  (apiVersion: string, kind: string): Workload =>
  (template) => ({
    object: { apiVersion, kind, metadata: { name: "coordinator" }, spec: { replicas: 3, template } },
    template: (o) => spec(o)["template"] as never,
  });

const workloads: Record<string, Workload> = {
  StatefulSet: withTemplate("apps/v1", "StatefulSet"),
  Deployment: withTemplate("apps/v1", "Deployment"),
  ReplicaSet: withTemplate("apps/v1", "ReplicaSet"),
  DaemonSet: withTemplate("apps/v1", "DaemonSet"),
  Job: withTemplate("batch/v1", "Job"),
  CronJob: (template) => ({
    object: {
      apiVersion: "batch/v1",
      kind: "CronJob",
      metadata: { name: "coordinator" },
      spec: { schedule: "@hourly", jobTemplate: { spec: { template } } },
    },
    template: (o) => (spec(o)["jobTemplate"]!["spec"] as Record<string, unknown>)["template"] as never,
  }),
};

describe.each(cases.flatMap((name) => variants.map(([probes, options]) => ({ name, probes, options }))))(
  "$name with $probes: inject equals the webhook",
  ({ name, options }) => {
    const input = readJson<Pod>(`${name}.in.json`);
    const expected = webhookResult(input, options.params);

    it("as a Pod in YAML and in JSON", () => {
      const yaml = injectManifest(stringify(input), options);
      expect(yaml.reports).toEqual([{ owner: expect.stringMatching(/^Pod\//), outcome: "injected" }]);
      expect(parse(yaml.text)).toEqual(expected);
      const json = injectManifest(JSON.stringify(input, null, 2), options);
      expect(JSON.parse(json.text)).toEqual(expected);
    });

    it.each(Object.keys(workloads))("as the pod template of a %s", (kind) => {
      const template = { metadata: input.metadata, spec: input.spec };
      const workload = workloads[kind]!(template);
      const out = injectManifest(stringify(workload.object), options);
      expect(out.reports).toEqual([{ owner: `${kind}/coordinator`, outcome: "injected" }]);
      const injected = workload.template(parse(out.text) as Record<string, unknown>);
      expect(injected).toEqual({ metadata: expected.metadata, spec: expected.spec });
    });

    it("is left alone by the webhook, and by a second inject", () => {
      const once = injectManifest(stringify(input), options).text;
      const pod = parse(once) as Pod;
      expect(review(podReview(pod), options.params)).toMatchObject({
        status: 200,
        outcome: "skipped",
        reason: "already_injected",
      });
      const twice = injectManifest(once, options);
      expect(twice.text).toBe(once);
      expect(twice.reports).toEqual([
        expect.objectContaining({ outcome: "skipped", reason: "already_injected" }),
      ]);
    });
  },
);
