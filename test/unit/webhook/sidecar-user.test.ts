// The sidecar runs as the app's user when the pod names a non-root one, so that each may
// replace the other's files in the sticky state volume; otherwise as 65532.
import type { V1Container, V1PodSecurityContext } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { injectPod } from "../../../src/webhook/inject.ts";
import { checkPod } from "../../../src/webhook/pod-shape.ts";
import { sidecarUser } from "../../../src/webhook/sidecar-user.ts";
import { SIDECAR_NAME } from "../../../src/names.ts";
import { params } from "./fixtures.ts";

const app = (securityContext?: V1Container["securityContext"]): V1Container => ({
  name: "coordinator",
  ...(securityContext ? { securityContext } : {}),
});

const cases: [string, V1PodSecurityContext | undefined, V1Container, [number, number]][] = [
  ["nothing said: the image's user is unknown", undefined, app(), [65532, 65532]],
  ["the pod's user and group", { runAsUser: 1000, runAsGroup: 2000 }, app(), [1000, 2000]],
  ["the pod's user, no group: the user's id", { runAsUser: 1000 }, app(), [1000, 1000]],
  [
    "the container's user wins over the pod's",
    { runAsUser: 1000, runAsGroup: 2000 },
    app({ runAsUser: 3000 }),
    [3000, 2000],
  ],
  [
    "the container's group wins over the pod's",
    { runAsUser: 1000, runAsGroup: 2000 },
    app({ runAsGroup: 4000 }),
    [1000, 4000],
  ],
  ["an app that runs as root: the sidecar does not", { runAsUser: 0 }, app(), [65532, 65532]],
  ["root in the container over a pod's user", { runAsUser: 1000 }, app({ runAsUser: 0 }), [65532, 65532]],
  ["the chart's user", { runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532 }, app(), [65532, 65532]],
  ["only an fsGroup", { fsGroup: 1000 }, app(), [65532, 65532]],
];

describe("the sidecar's user", () => {
  it.each(cases)("%s", (_, pod, container, [uid, gid]) => {
    expect(sidecarUser(pod, container)).toEqual({ runAsUser: uid, runAsGroup: gid });
  });

  it("is what injection puts into the sidecar's securityContext, never root", () => {
    for (const [, pod, container, [uid, gid]] of cases) {
      const injected = injectPod(
        { metadata: { name: "coordinator-0" }, spec: { securityContext: pod, containers: [container] } },
        params,
      );
      const sidecar = injected.spec.initContainers!.find((c) => c.name === SIDECAR_NAME)!;
      expect(sidecar.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: uid, runAsGroup: gid });
    }
  });

  it("comes from ids that checkPod has seen to be non-negative integers", () => {
    const pod = (securityContext: unknown, container: unknown = {}) => ({
      spec: { securityContext, containers: [{ name: "app", securityContext: container }] },
    });
    expect(checkPod(pod({ runAsUser: 1000 }))).toHaveProperty("pod");
    expect(checkPod(pod({ runAsUser: "1000" }))).toEqual({
      problem: "request.object.spec.securityContext.runAsUser is not a non-negative integer",
    });
    expect(checkPod(pod({}, { runAsGroup: -1 }))).toEqual({
      problem: "request.object.spec.containers[0].securityContext.runAsGroup is not a non-negative integer",
    });
    expect(checkPod(pod([]))).toEqual({ problem: "request.object.spec.securityContext is not an object" });
  });
});
