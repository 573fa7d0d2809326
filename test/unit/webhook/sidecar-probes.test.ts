// --sidecar-probes: the kubelet probes the sidecar over the pod network (http, the default),
// or runs `coordinator-ha probe` inside it (exec) for pods closed to inbound connections.
import { describe, expect, it } from "vitest";
import { SIDECAR_PROBE_PORT } from "../../../src/names.ts";
import { sidecarContainer } from "../../../src/webhook/sidecar.ts";
import { params } from "./fixtures.ts";

const user = { runAsUser: 65532, runAsGroup: 65532 };

describe("the sidecar's probes", () => {
  it("are httpGet on the probe port by default", () => {
    const sidecar = sidecarContainer(params, "", user);
    expect(sidecar.startupProbe).toEqual({
      httpGet: { path: "/startupz", port: SIDECAR_PROBE_PORT },
      periodSeconds: 1,
      failureThreshold: 600,
    });
    expect(sidecar.livenessProbe?.httpGet).toEqual({ path: "/healthz", port: SIDECAR_PROBE_PORT });
  });

  it("are exec actions of the image's CLI with --sidecar-probes exec, with the same schedule", () => {
    const sidecar = sidecarContainer({ ...params, probes: "exec" }, "", user);
    expect(sidecar.startupProbe).toEqual({
      exec: { command: ["node", "/app/dist/cli.js", "probe", "startup"] },
      timeoutSeconds: 5,
      periodSeconds: 1,
      failureThreshold: 600,
    });
    expect(sidecar.livenessProbe).toEqual({
      exec: { command: ["node", "/app/dist/cli.js", "probe", "liveness"] },
      timeoutSeconds: 5,
      periodSeconds: 10,
      failureThreshold: 3,
    });
    // Nothing reaches the sidecar from outside the pod but its peers, on the peer port.
    expect(JSON.stringify(sidecar)).not.toContain("httpGet");
  });
});
