// What the handler's pod cache keeps of a pod: everything but server-side apply's bookkeeping.
import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { withoutManagedFields } from "../../../src/kube/pod-list-watch.ts";

describe("withoutManagedFields", () => {
  it("drops metadata.managedFields and keeps every other field", () => {
    const pod: V1Pod = {
      metadata: {
        name: "coordinator-0",
        uid: "u",
        labels: { "app.kubernetes.io/name": "coordinator" },
        managedFields: [{ manager: "kubelet", operation: "Update", fieldsType: "FieldsV1", fieldsV1: {} }],
      },
      spec: { containers: [{ name: "coordinator" }] },
      status: { podIP: "10.0.0.1" },
    };
    const kept = withoutManagedFields(structuredClone(pod));
    const { managedFields: _dropped, ...metadata } = pod.metadata!;
    expect(kept).toEqual({ ...pod, metadata });
  });

  it("leaves a pod without them as it is", () => {
    const pod: V1Pod = { metadata: { name: "coordinator-0" } };
    expect(withoutManagedFields(structuredClone(pod))).toEqual(pod);
  });
});
