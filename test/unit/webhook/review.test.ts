import { Buffer } from "node:buffer";
import { describe, expect, it } from "vitest";
import { STATUS_ANNOTATION } from "../../../src/names.ts";
import type { Pod } from "../../../src/webhook/pod-shape.ts";
import { review, reviewBody, type ReviewResult } from "../../../src/webhook/review.ts";
import { decodePatch, params, podReview, readJson } from "./fixtures.ts";

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
    const input = pod();
    input.metadata!.annotations![STATUS_ANNOTATION] = "injected";
    const result = answered(review(podReview(input), params));
    expect(result).toMatchObject({ outcome: "skipped", reason: "already_injected" });
    expect(result.review.response.patch).toBeUndefined();
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
