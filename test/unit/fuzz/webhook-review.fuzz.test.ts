// Fuzz of the webhook's review (src/webhook/review.ts) with generated AdmissionReviews: pods
// shaped like real ones with every field the injection reads or writes drawn at random (names
// that collide with ours, our annotations with any value, missing and empty lists, mounts
// at the state directory), and junk in any place. Whatever arrives: no exception, only 200
// or 400; a 200 answers the request's uid, and its patch applies as the apiserver applies it,
// leaves exactly one sidecar (first among the init containers), one readiness gate and one
// of each volume, and a second review of the patched pod injects nothing (idempotent).
import { Buffer } from "node:buffer";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  INJECT_ANNOTATION,
  RECOVERED_CONDITION,
  SIDECAR_NAME,
  STATE_VOLUME,
  STATUS_ANNOTATION,
  STATUS_INJECTED,
  TOKEN_VOLUME,
} from "../../../src/names.ts";
import { checkPod, type Pod } from "../../../src/webhook/pod-shape.ts";
import { review, reviewBody } from "../../../src/webhook/review.ts";
import { applyPatch, decodePatch, params } from "../webhook/fixtures.ts";
import { fuzz, hostileString, fuzzTimeout } from "./fuzz.ts";

// fc.oneof and small integers are biased towards their first and smallest choices, so the rare
// choices here are drawn from an unbiased percentage: most reviews must reach the injection path.
const percent = fc.noBias(fc.integer({ min: 0, max: 99 }));

/** The value, or in 1 case of 50 anything at all, or nothing. */
const orJunk = <T>(arb: fc.Arbitrary<T>) =>
  percent.chain((n) => (n < 1 ? fc.anything() : n < 2 ? fc.constant(undefined) : arb));

/** Mostly `value`, in 1 case of 20 one of `others`. */
const mostly = <T>(value: T, ...others: T[]) =>
  percent.chain((n) => (n < 5 ? fc.constantFrom(...others) : fc.constant(value)));

const name = fc.oneof(
  fc.constantFrom(SIDECAR_NAME, "coordinator", "app", "sidecar", STATE_VOLUME, TOKEN_VOLUME, "data"),
  fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
);
const mountPath = fc.oneof(
  fc.constantFrom(
    params.stateDir,
    `${params.stateDir}/`,
    "/var/run/coordinator-ha",
    "/data",
    "/",
    "/var/run/secrets/coordinator-ha",
  ),
  fc.string(),
);
const volumeMount = fc.record({ name, mountPath: orJunk(mountPath) }, { requiredKeys: ["mountPath"] });
const probe = fc.record(
  {
    httpGet: orJunk(
      fc.record(
        {
          port: fc.oneof(
            fc.integer({ min: -5, max: 70000 }),
            fc.constantFrom("http", "probes", ""),
            fc.string(),
          ),
          path: fc.oneof(fc.constantFrom("/probe/readiness", "", "/"), fc.string()),
          scheme: fc.constantFrom("HTTP", "HTTPS", "http", "ftp"),
          host: fc.constantFrom("127.0.0.1", "::1", "example.com"),
        },
        { requiredKeys: ["port"] },
      ),
    ),
    tcpSocket: fc.record({ port: fc.integer({ min: 1, max: 65535 }) }),
  },
  { requiredKeys: [] },
);
const container = fc.record(
  {
    name: orJunk(name),
    image: fc.constantFrom("coordinator:1", "ghcr.io/edgelesssys/contrast/coordinator:v1"),
    volumeMounts: orJunk(fc.array(volumeMount, { maxLength: 4 })),
    readinessProbe: orJunk(probe),
    ports: fc.array(
      fc.record({
        name: fc.constantFrom("probes", "http", "cha-peer"),
        containerPort: fc.integer({ min: 1, max: 65535 }),
      }),
      { maxLength: 3 },
    ),
    restartPolicy: fc.constantFrom("Always", "Never"),
    env: fc.array(
      fc.record({ name: fc.constantFrom("A", "CHA_POD_NAME", "NODE_OPTIONS"), value: fc.string() }),
      {
        maxLength: 2,
      },
    ),
  },
  { requiredKeys: ["name"] },
);
const volume = fc.record(
  {
    name: orJunk(name),
    emptyDir: fc.oneof(fc.constant({}), fc.constant({ medium: "Memory" })),
    projected: fc.record({ sources: fc.constant([]) }),
  },
  { requiredKeys: ["name"] },
);
const annotations = fc.dictionary(
  fc.oneof(fc.constantFrom(INJECT_ANNOTATION, STATUS_ANNOTATION, "other.io/x"), fc.string({ maxLength: 20 })),
  fc.oneof(fc.constantFrom("false", "true", STATUS_INJECTED, "", "FALSE"), fc.string()),
  { maxKeys: 4 },
);
const pod = fc.record(
  {
    apiVersion: fc.constantFrom("v1", "v2"),
    kind: mostly("Pod", "Deployment"),
    metadata: orJunk(
      fc.record(
        {
          name: fc.stringMatching(/^[a-z][a-z0-9-]{0,12}-[0-9]$/),
          generateName: fc.constantFrom("coordinator-", ""),
          namespace: fc.constantFrom("default", "contrast"),
          labels: fc.dictionary(
            fc.constantFrom("app.kubernetes.io/name", "app"),
            fc.string({ maxLength: 12 }),
          ),
          annotations: orJunk(annotations),
        },
        { requiredKeys: [] },
      ),
    ),
    spec: orJunk(
      fc.record(
        {
          containers: orJunk(fc.array(container, { minLength: 1, maxLength: 3 })),
          initContainers: orJunk(fc.array(container, { maxLength: 3 })),
          volumes: orJunk(fc.array(volume, { maxLength: 4 })),
          readinessGates: orJunk(
            fc.array(
              fc.record({ conditionType: fc.constantFrom(RECOVERED_CONDITION, "other.io/ready", "") }),
              { maxLength: 3 },
            ),
          ),
          serviceAccountName: fc.constantFrom("coordinator", "default"),
          automountServiceAccountToken: fc.boolean(),
        },
        { requiredKeys: ["containers"] },
      ),
    ),
  },
  { requiredKeys: ["spec"] },
);
const admissionReview = fc.record(
  {
    apiVersion: mostly("admission.k8s.io/v1", "admission.k8s.io/v1beta1"),
    kind: mostly("AdmissionReview", "AdmissionReviewX"),
    request: orJunk(
      fc.record(
        {
          uid: percent.chain((n) =>
            n < 5 ? fc.constantFrom("", "x".repeat(200)) : n < 10 ? hostileString : fc.uuid(),
          ),
          kind: orJunk(
            fc.record({
              group: mostly("", "apps"),
              version: fc.constant("v1"),
              kind: mostly("Pod", "Deployment"),
            }),
          ),
          resource: orJunk(
            fc.record({
              group: fc.constant(""),
              version: fc.constant("v1"),
              resource: mostly("pods", "deployments"),
            }),
          ),
          subResource: mostly<string | undefined>(undefined, "", "status", "binding"),
          operation: orJunk(mostly("CREATE", "UPDATE", "DELETE", "CONNECT")),
          namespace: fc.constantFrom("default", "contrast"),
          name: fc.constantFrom("", "coordinator-0"),
          object: orJunk(pod),
          dryRun: fc.boolean(),
        },
        { requiredKeys: ["uid", "operation", "object"] },
      ),
    ),
  },
  { requiredKeys: ["apiVersion", "kind", "request"] },
);

const named = (list: { name?: unknown }[] | undefined, n: string) => (list ?? []).filter((c) => c.name === n);

/** Checks everything a 200 promises; returns the injected pod when there was a patch. */
function checkAnswer(input: Record<string, unknown>, reasons: Map<string, number>): Pod | undefined {
  // As the server sees it: bytes (the JSON round trip also drops undefined fields).
  const result = reviewBody(Buffer.from(JSON.stringify(input)), params);
  const key = result.status === 400 ? result.message.slice(0, 40) : result.reason || result.outcome;
  reasons.set(key, (reasons.get(key) ?? 0) + 1);
  expect([200, 400]).toContain(result.status);
  if (result.status === 400) {
    expect(result.message.length).toBeGreaterThan(0);
    expect(result.message.length).toBeLessThanOrEqual(513);
    return undefined;
  }
  const request = input["request"] as Record<string, unknown>;
  const { response } = result.review;
  expect(response.uid).toBe(request["uid"]);
  if (response.patch === undefined) return undefined;
  expect(response.allowed).toBe(true);
  const object = JSON.parse(JSON.stringify(request["object"])) as Pod;
  const injected = applyPatch(object, decodePatch(response));
  expect("pod" in checkPod(injected)).toBe(true);
  const init = injected.spec.initContainers ?? [];
  expect(named(init, SIDECAR_NAME)).toHaveLength(1);
  expect(init[0]?.name).toBe(SIDECAR_NAME);
  expect(named(injected.spec.containers, SIDECAR_NAME)).toHaveLength(0);
  expect(named(injected.spec.volumes, STATE_VOLUME)).toHaveLength(1);
  expect(named(injected.spec.volumes, TOKEN_VOLUME)).toHaveLength(1);
  expect(
    (injected.spec.readinessGates ?? []).filter((g) => g.conditionType === RECOVERED_CONDITION),
  ).toHaveLength(1);
  expect(injected.metadata?.annotations?.[STATUS_ANNOTATION]).toBe(STATUS_INJECTED);
  return injected;
}

describe("fuzz: the webhook's review of generated AdmissionReviews", () => {
  it(
    "answers 200 or 400, never throws; every patch applies, leaves one sidecar, and injects once",
    () => {
      let injectedCount = 0;
      const reasons = new Map<string, number>();
      fc.assert(
        fc.property(admissionReview, (input) => {
          const injected = checkAnswer(input as Record<string, unknown>, reasons);
          if (!injected) return;
          injectedCount++;
          const request = (input as { request: Record<string, unknown> }).request;
          const again = review(
            JSON.parse(JSON.stringify({ ...input, request: { ...request, object: injected } })),
            params,
          );
          expect(again.status).toBe(200);
          if (again.status === 200) {
            expect(again.review.response.allowed).toBe(true);
            expect(again.review.response.patch).toBeUndefined();
          }
        }),
        fuzz(1000),
      );
      // The generator must reach the injection path often, or the property says little.
      expect(injectedCount, JSON.stringify([...reasons])).toBeGreaterThan(200);
    },
    fuzzTimeout(10_000),
  );

  it(
    "answers any body (bytes, JSON of any shape) with 200 or 400",
    () => {
      const body = fc.oneof(
        fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
        hostileString.map((s) => Buffer.from(s)),
        fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v))),
        fc
          .anything()
          .map((v) =>
            Buffer.from(
              JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: v }) ??
                "",
            ),
          ),
      );
      fc.assert(
        fc.property(body, (bytes) => {
          const result = reviewBody(bytes, params);
          expect([200, 400]).toContain(result.status);
        }),
        fuzz(1000),
      );
    },
    fuzzTimeout(10_000),
  );
});
