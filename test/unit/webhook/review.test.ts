import { Buffer } from "node:buffer";
import { describe, expect, it } from "vitest";
import { RECOVERED_CONDITION, STATE_VOLUME, STATUS_ANNOTATION, TOKEN_VOLUME } from "../../../src/names.ts";
import type { Pod } from "../../../src/webhook/pod-shape.ts";
import { review, reviewBody, type ReviewResult } from "../../../src/webhook/review.ts";
import { applyPatch, decodePatch, params, podReview, readJson } from "./fixtures.ts";

const pod = () => readJson<Pod>("contrast-coordinator.in.json");

function answered(result: ReviewResult) {
  if (result.status !== 200) throw new Error(`expected an AdmissionReview, got 400: ${result.message}`);
  return result;
}

describe("review: skips", () => {
  it.each([
    ["another kind", { kind: { group: "apps", version: "v1", kind: "Deployment" } }, "not_pod"],
    ["a core kind that is not Pod", { kind: { group: "", version: "v1", kind: "ConfigMap" } }, "not_pod"],
    ["a pods subresource", { subResource: "ephemeralcontainers" }, "not_pod"],
    ["another resource", { resource: { group: "", version: "v1", resource: "configmaps" } }, "not_pod"],
    ["an UPDATE", { operation: "UPDATE" }, "not_create"],
    ["a DELETE without object", { operation: "DELETE", object: null }, "not_create"],
  ])("allows %s unchanged", (_what, request, reason) => {
    const result = answered(review(podReview(pod(), request), params));
    expect(result).toMatchObject({ outcome: "skipped", reason });
    expect(result.review.response).toEqual({ uid: expect.any(String), allowed: true });
  });

  it.each(["false", "False", " FALSE "])("skips a pod that opts out with %j", (value) => {
    const input = pod();
    input.metadata!.annotations!["coordinator-ha.io/inject"] = value;
    expect(review(podReview(input), params)).toMatchObject({ outcome: "skipped", reason: "opted_out" });
  });

  it.each(["true", "", "no"])("injects a pod whose inject annotation is %j", (value) => {
    const input = pod();
    input.metadata!.annotations!["coordinator-ha.io/inject"] = value;
    expect(review(podReview(input), params)).toMatchObject({ outcome: "injected" });
  });

  it("skips a pod that is already injected", () => {
    const input = readJson<Pod>("contrast-coordinator.golden.json");
    expect(input.metadata!.annotations![STATUS_ANNOTATION]).toBe("injected");
    const result = answered(review(podReview(input), params));
    expect(result).toMatchObject({ outcome: "skipped", reason: "already_injected" });
    expect(result.review.response.patch).toBeUndefined();
  });

  // The annotation alone is no opt-out: it counts only with the parts it stands for.
  it.each([
    ["the annotation alone", (_p: Pod) => undefined],
    ["everything but the readiness gate", (p: Pod) => (p.spec.readinessGates = [])],
    ["everything but the sidecar", (p: Pod) => p.spec.initContainers!.shift()],
    [
      "the sidecar, but not first",
      (p: Pod) => p.spec.initContainers!.unshift({ name: "setup", image: "busybox" }),
    ],
    [
      "everything but the token volume",
      (p: Pod) => (p.spec.volumes = p.spec.volumes!.filter((v) => v.name !== "coordinator-ha-token")),
    ],
    ["everything but the app's state mount", (p: Pod) => (p.spec.containers[0]!.volumeMounts = [])],
  ])("injects a pod that carries the status annotation with %s", (_what, edit) => {
    const input =
      _what === "the annotation alone" ? pod() : readJson<Pod>("contrast-coordinator.golden.json");
    input.metadata!.annotations![STATUS_ANNOTATION] = "injected";
    edit(input);
    const result = answered(review(podReview(input), params));
    expect(result).toMatchObject({ outcome: "injected" });
    const injected = applyPatch(input, decodePatch(result.review.response)) as Pod;
    expect(injected.spec.readinessGates).toContainEqual({ conditionType: "coordinator-ha.io/recovered" });
    expect(injected.spec.initContainers![0]!.name).toBe("coordinator-ha-recovery");
  });
});

describe("review: answers", () => {
  it("answers with the request's uid, apiVersion and kind", () => {
    const body = podReview(pod(), { uid: "705ab4f5-6393-11e8-b7cc-42010a800002" });
    const result = answered(review(body, params));
    expect(result.review.apiVersion).toBe("admission.k8s.io/v1");
    expect(result.review.kind).toBe("AdmissionReview");
    expect(result.review.response.uid).toBe("705ab4f5-6393-11e8-b7cc-42010a800002");
  });

  it("gives a dryRun request the same answer", () => {
    const input = pod();
    const wet = answered(review(podReview(input, { uid: "u" }), params));
    const dry = answered(review(podReview(input, { uid: "u", dryRun: true }), params));
    expect(dry.review).toEqual(wet.review);
    expect(dry.subject.dryRun).toBe(true);
  });

  it("adds arrays that are absent as whole arrays, not with /-", () => {
    const result = answered(review(podReview(readJson("minimal.in.json")), params));
    const ops = decodePatch(result.review.response);
    expect(ops).toContainEqual(expect.objectContaining({ op: "add", path: "/spec/initContainers" }));
    expect(ops).toContainEqual(expect.objectContaining({ op: "add", path: "/spec/volumes" }));
    expect(ops).toContainEqual(
      expect.objectContaining({
        op: "add",
        path: "/metadata/annotations",
        value: { [STATUS_ANNOTATION]: "injected" },
      }),
    );
    expect(ops.some((op) => op.path.endsWith("/-"))).toBe(false);
  });

  it("escapes the / of an annotation key in the patch", () => {
    const ops = decodePatch(answered(review(podReview(pod()), params)).review.response);
    expect(ops).toContainEqual({
      op: "add",
      path: "/metadata/annotations/coordinator-ha.io~1status",
      value: "injected",
    });
  });

  it("injects a review whose request does not name its kind, when the object is a Pod", () => {
    const body = podReview(pod());
    delete (body["request"] as Record<string, unknown>)["kind"];
    expect(review(body, params)).toMatchObject({ outcome: "injected" });
  });

  it("mounts the configured state directory", () => {
    const result = answered(review(podReview(pod()), { ...params, stateDir: "/state" }));
    const ops = decodePatch(result.review.response);
    expect(ops).toContainEqual({
      op: "add",
      path: "/spec/containers/0/volumeMounts/1",
      value: { name: "coordinator-ha-state", mountPath: "/state" },
    });
  });

  it("names the pod and namespace for the log, also for a pod made from generateName", () => {
    const result = review(podReview(readJson("minimal.in.json"), { name: "" }), params);
    expect(result.subject).toMatchObject({ namespace: "default", pod: "coordinator-", operation: "CREATE" });
  });
});

describe("review: repeated names of ours (found by the fuzz test)", () => {
  it("leaves exactly one of each volume and one gate when the pod repeats them", () => {
    const input = readJson<Pod>("minimal.in.json");
    input.spec.volumes = [
      { name: STATE_VOLUME, emptyDir: {} },
      { name: "data", emptyDir: {} },
      { name: STATE_VOLUME, emptyDir: {} },
      { name: TOKEN_VOLUME, emptyDir: {} },
      { name: TOKEN_VOLUME, emptyDir: {} },
    ];
    input.spec.readinessGates = [
      { conditionType: RECOVERED_CONDITION },
      { conditionType: "other.io/ready" },
      { conditionType: RECOVERED_CONDITION },
    ];
    const result = review(podReview(input), params);
    if (result.status !== 200) throw new Error(result.message);
    const injected = applyPatch(input, decodePatch(result.review.response));
    expect(injected.spec.volumes?.map((v) => v.name)).toEqual([STATE_VOLUME, "data", TOKEN_VOLUME]);
    expect(injected.spec.readinessGates).toEqual([
      { conditionType: RECOVERED_CONDITION },
      { conditionType: "other.io/ready" },
    ]);
  });
});

describe("review: pods that cannot be injected", () => {
  it("refuses a pod whose app container mounts something else at the state directory", () => {
    const input = pod();
    input.spec.volumes!.push({ name: "data", emptyDir: {} });
    input.spec.containers[0]!.volumeMounts!.push({
      name: "data",
      mountPath: "/var/run/coordinator-ha/state/",
    });
    const result = answered(review(podReview(input), params));
    expect(result).toMatchObject({ outcome: "rejected", reason: "state_dir_conflict" });
    expect(result.review.response.allowed).toBe(false);
    expect(result.review.response.patch).toBeUndefined();
    expect(result.review.response.status?.message).toBe(
      'container "coordinator" mounts volume "data" at /var/run/coordinator-ha/state, the coordinator-ha state ' +
        'directory; remove that mount or opt the pod out with the annotation coordinator-ha.io/inject: "false"',
    );
  });

  it("refuses a pod with an app container named like the sidecar", () => {
    const input = pod();
    input.spec.containers.push({ name: "coordinator-ha-recovery", image: "x" });
    const result = answered(review(podReview(input), params));
    expect(result).toMatchObject({ outcome: "rejected", reason: "reserved_name" });
    expect(result.review.response.status?.message).toContain('container "coordinator-ha-recovery" clashes');
  });

  it("still lets such a pod opt out", () => {
    const input = pod();
    input.spec.containers.push({ name: "coordinator-ha-recovery", image: "x" });
    input.metadata!.annotations!["coordinator-ha.io/inject"] = "false";
    expect(review(podReview(input), params)).toMatchObject({ outcome: "skipped", reason: "opted_out" });
  });
});

describe("review: bad input", () => {
  const bad = (body: unknown) => {
    const result = review(body, params);
    if (result.status !== 400) throw new Error(`expected 400, got ${result.outcome}/${result.reason}`);
    return result;
  };
  const withRequest = (request: Record<string, unknown>) => podReview(pod(), request);
  const withObject = (object: unknown) => podReview(object);

  it.each([
    ["a JSON array", [], "invalid_review", "body is not a JSON object (an AdmissionReview)"],
    ["null", null, "invalid_review", "body is not a JSON object (an AdmissionReview)"],
    [
      "another apiVersion",
      { apiVersion: "admission.k8s.io/v1beta1", kind: "AdmissionReview", request: {} },
      "invalid_review",
      'body is "admission.k8s.io/v1beta1"/"AdmissionReview"; expected apiVersion "admission.k8s.io/v1", kind "AdmissionReview"',
    ],
    [
      "no request",
      { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" },
      "invalid_review",
      "AdmissionReview has no request",
    ],
    ["no uid", withRequest({ uid: undefined }), "invalid_review", "AdmissionReview request has no uid"],
    [
      "no operation",
      withRequest({ operation: undefined }),
      "invalid_review",
      "AdmissionReview request has no operation",
    ],
    ["no object", withObject(undefined), "object_not_pod", "request.object is missing"],
    ["a string object", withObject("pod"), "object_not_pod", "request.object is not a JSON object"],
    [
      "a ConfigMap object",
      withObject({ apiVersion: "v1", kind: "ConfigMap", data: {} }),
      "object_not_pod",
      'request.object is a "ConfigMap", not a Pod',
    ],
    [
      "an object without spec",
      withObject({ kind: "Pod" }),
      "object_not_pod",
      "request.object has no spec: not a Pod",
    ],
    [
      "a pod without containers",
      withObject({ kind: "Pod", spec: { containers: [] } }),
      "object_not_pod",
      "request.object.spec.containers is missing or empty: not a Pod",
    ],
    [
      "volumes that are not a list",
      withObject({ spec: { containers: [{ name: "a" }], volumes: {} } }),
      "object_not_pod",
      "request.object.spec.volumes is not a list of objects",
    ],
    [
      "annotations that are not strings",
      withObject({ metadata: { annotations: { a: 1 } }, spec: { containers: [{ name: "a" }] } }),
      "object_not_pod",
      "request.object.metadata.annotations is not a map of strings",
    ],
    [
      "a container without name",
      withObject({ spec: { containers: [{ image: "a" }] } }),
      "object_not_pod",
      "request.object.spec.containers[0].name is missing",
    ],
    [
      "mounts without mountPath",
      withObject({ spec: { containers: [{ name: "a", volumeMounts: [{ name: "v" }] }] } }),
      "object_not_pod",
      "request.object.spec.containers[0].volumeMounts is not a list of mounts with a mountPath",
    ],
    [
      "a probe port that is neither number nor name",
      withObject({ spec: { containers: [{ name: "a", readinessProbe: { httpGet: { port: {} } } }] } }),
      "object_not_pod",
      "request.object.spec.containers[0].readinessProbe.httpGet needs a port (number or name), and path and scheme must be strings",
    ],
  ])("answers 400 to %s", (_what, body, reason, message) => {
    expect(bad(body)).toMatchObject({ reason, message });
  });

  it("answers 400 to a review without kind whose object is not a Pod", () => {
    const body = withObject({ apiVersion: "v1", kind: "Secret" });
    delete (body["request"] as Record<string, unknown>)["kind"];
    expect(bad(body)).toMatchObject({ reason: "object_not_pod" });
  });

  it("answers 400 to a body that is not JSON, and to an empty one", () => {
    expect(reviewBody(Buffer.from("{not json"), params)).toMatchObject({
      status: 400,
      reason: "invalid_json",
      message: expect.stringMatching(/^body is not JSON: /),
    });
    expect(reviewBody(Buffer.alloc(0), params)).toMatchObject({
      status: 400,
      reason: "invalid_json",
      message: "body is empty; POST an AdmissionReview (admission.k8s.io/v1) as JSON",
    });
  });
});

describe("review: hostile input", () => {
  /** The review of `pod` as JSON text, with `"__DEEP__"` replaced by `depth` nested arrays. */
  const deepBody = (pod: Pod, depth: number) =>
    Buffer.from(JSON.stringify(podReview(pod)).replace('"__DEEP__"', "[".repeat(depth) + "]".repeat(depth)));

  // A deep value in an init container ends up in an "add" of the patch, which the diff and
  // JSON.stringify copy recursively: 100,000 levels overflowed the stack (HTTP 500).
  it("refuses an object nested 100,000 levels deep with a 400, before diffing it", () => {
    const input = pod();
    input.spec.initContainers = [
      { name: "setup", image: "busybox", args: "__DEEP__" as unknown as string[] },
    ];
    const result = reviewBody(deepBody(input, 100_000), params);
    expect(result).toMatchObject({
      status: 400,
      reason: "object_not_pod",
      message: "request.object nests deeper than 64 levels: not a Pod",
    });
  });

  it("injects a pod whose deepest field is at the bound", () => {
    const input = pod();
    input.spec.initContainers = [
      { name: "setup", image: "busybox", args: "__DEEP__" as unknown as string[] },
    ];
    // object > spec > initContainers > [0] > args: the fifth level, then the arrays.
    expect(reviewBody(deepBody(input, 64 - 4), params)).toMatchObject({ status: 200, outcome: "injected" });
    expect(reviewBody(deepBody(input, 64 - 3), params)).toMatchObject({ status: 400 });
  });

  it("refuses a uid that is no uid, and never echoes or logs more than a line of it", () => {
    const result = review(podReview(pod(), { uid: "u".repeat(3 * 1024 * 1024) }), params);
    expect(result).toMatchObject({ status: 400, reason: "invalid_review" });
    expect(result.message).toMatch(/^AdmissionReview request.uid is not a uid/);
    expect(JSON.stringify(result).length).toBeLessThan(2048);
  });

  it("bounds every field of the subject and every message, whatever the body holds", () => {
    const huge = "x".repeat(1024 * 1024);
    const results = [
      review(podReview(pod(), { namespace: huge, operation: huge, name: huge }), params),
      review({ apiVersion: huge, kind: "AdmissionReview" }, params),
      review(podReview({ kind: huge, spec: {} }), params),
      reviewBody(Buffer.from(`{"a": ${huge}`), params),
    ];
    for (const result of results) expect(JSON.stringify(result).length).toBeLessThan(4096);
  });
});
