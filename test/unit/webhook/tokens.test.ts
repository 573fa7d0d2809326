// The tokens in the sidecar's coordinator-ha-token volume, read from an injected pod the
// way the kubelet and the sidecar read it: each env file must be a source of the volume,
// under its mount, with the audience its reader expects. The audiences are written out, not
// taken from src/names.ts, so that a change on our side shows up here as a failure.
import { posix } from "node:path";
import type { V1Container, V1ServiceAccountTokenProjection } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { SIDECAR_NAME, TOKEN_VOLUME } from "../../../src/names.ts";
import { SidecarEnv } from "../../../src/recovery/sidecar-env.ts";
import { injectPod } from "../../../src/webhook/inject.ts";
import type { Pod } from "../../../src/webhook/pod-shape.ts";
import { params, readJson } from "./fixtures.ts";

const injected = injectPod(readJson<Pod>("minimal.in.json"), params);
const sidecar = injected.spec.initContainers?.find((c) => c.name === SIDECAR_NAME) as V1Container;
const volume = injected.spec.volumes?.find((v) => v.name === TOKEN_VOLUME);
const projections = volume?.projected?.sources ?? [];
const sources = projections.flatMap((s) => (s.serviceAccountToken ? [s.serviceAccountToken] : []));
const mount = sidecar.volumeMounts?.find((m) => m.name === TOKEN_VOLUME);
const envValue = (name: string) => sidecar.env?.find((e) => e.name === name)?.value;

/** The projected token that the kubelet writes at this path of the sidecar's file system. */
function tokenAt(file: string | undefined): V1ServiceAccountTokenProjection | undefined {
  if (!file || !mount) return undefined;
  const relative = posix.relative(mount.mountPath, file);
  return sources.find((s) => s?.path === relative);
}

describe("the sidecar's tokens", () => {
  it("keep DESIGN's handler token first and unchanged, then the peer token, then the API token", () => {
    expect(projections.slice(0, 2)).toEqual([
      { serviceAccountToken: { audience: "coordinator-ha", expirationSeconds: 3600, path: "token" } },
      {
        serviceAccountToken: { audience: "coordinator-ha-peer", expirationSeconds: 3600, path: "peer-token" },
      },
    ]);
    // The API credentials' token, for the apiserver's own audience (none given).
    expect(sources.slice(2)).toEqual([{ expirationSeconds: 3607, path: "kube-api-token" }]);
    expect(mount).toMatchObject({ readOnly: true });
  });

  it("are where the env says: the handler's token for the handler, the peer token for peers", () => {
    expect(tokenAt(envValue(SidecarEnv.tokenFile))?.audience).toBe("coordinator-ha");
    expect(tokenAt(envValue(SidecarEnv.peerTokenFile))?.audience).toBe("coordinator-ha-peer");
  });

  it("leave every file of the volume to one source", () => {
    const paths = projections.flatMap((s) => [
      ...(s.serviceAccountToken ? [s.serviceAccountToken.path] : []),
      ...(s.configMap?.items ?? []).map((i) => i.path),
      ...(s.downwardAPI?.items ?? []).map((i) => i.path),
    ]);
    expect(paths).toEqual(["token", "peer-token", "kube-api-token", "ca.crt", "namespace"]);
  });

  it("are mounted in the sidecar only", () => {
    for (const container of injected.spec.containers) {
      expect(container.volumeMounts?.some((m) => m.name === TOKEN_VOLUME)).not.toBe(true);
    }
  });
});
