// Shared inputs of the webhook tests: fixed injection parameters and AdmissionReviews
// shaped as the apiserver sends them.
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import jsonpatch, { type Operation } from "fast-json-patch";
import { expect } from "vitest";
import type { AdmissionResponse } from "../../../src/webhook/review.ts";
import type { InjectionParams } from "../../../src/webhook/sidecar.ts";
import { DEFAULT_STATE_DIR } from "../../../src/names.ts";

export const TESTDATA = new URL("./testdata/", import.meta.url);

export const params: InjectionParams = {
  image: "coordinator-ha:test",
  imagePullPolicy: "IfNotPresent",
  handlerUrl: "https://coordinator-ha-handler.coordinator-ha.svc",
  handlerCa: "-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n",
  stateDir: DEFAULT_STATE_DIR,
};

export function readJson<T = unknown>(name: string): T {
  return JSON.parse(readFileSync(new URL(name, TESTDATA), "utf8")) as T;
}

let uids = 0;

/** An AdmissionReview for a Pod CREATE, as the apiserver sends it; `request` overrides. */
export function podReview(object: unknown, request: Record<string, unknown> = {}): Record<string, unknown> {
  const metadata = (object as { metadata?: { name?: string; namespace?: string } } | null)?.metadata;
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: `00000000-0000-0000-0000-${String(++uids).padStart(12, "0")}`,
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      requestKind: { group: "", version: "v1", kind: "Pod" },
      requestResource: { group: "", version: "v1", resource: "pods" },
      name: metadata?.name ?? "",
      namespace: metadata?.namespace ?? "default",
      operation: "CREATE",
      userInfo: { username: "system:serviceaccount:kube-system:statefulset-controller" },
      object,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: "meta.k8s.io/v1", kind: "CreateOptions" },
      ...request,
    },
  };
}

export function decodePatch(response: AdmissionResponse): Operation[] {
  if (response.patch === undefined) return [];
  expect(response.patchType).toBe("JSONPatch");
  return JSON.parse(Buffer.from(response.patch, "base64").toString("utf8")) as Operation[];
}

/** Applies the patch as the apiserver would: to a copy, validating every operation. */
export function applyPatch<T>(document: T, patch: Operation[]): T {
  return jsonpatch.applyPatch(structuredClone(document), patch, true, false).newDocument;
}
