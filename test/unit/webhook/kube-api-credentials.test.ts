// The sidecar's own API credentials, in its token volume beside the identity tokens, and how
// they get along with the ServiceAccount admission plugin. The apiserver runs that plugin before the webhooks and, because the
// webhook's patch changes the pod, once more afterwards (admission reinvocation). The plugin
// is modelled here as Kubernetes v1.35 has it (plugin/pkg/admission/serviceaccount/
// admission.go, mountServiceAccountToken), with its constants written out rather than taken
// from src/names.ts, so that a rename on our side shows up here as a failure.
import { posix } from "node:path";
import type { V1Container } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { SIDECAR_NAME, STATE_VOLUME, TOKEN_VOLUME } from "../../../src/names.ts";
import { SIDECAR_KUBE_API_CREDENTIALS } from "../../../src/recovery/kube-api.ts";
import { injectPod } from "../../../src/webhook/inject.ts";
import type { Pod } from "../../../src/webhook/pod-shape.ts";
import { review } from "../../../src/webhook/review.ts";
import { applyPatch, decodePatch, params, podReview, readJson } from "./fixtures.ts";

const DEFAULT_API_TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount";
const SERVICE_ACCOUNT_VOLUME_PREFIX = "kube-api-access-";

/**
 * The plugin's mount step: a volume whose name has its prefix counts as its token volume;
 * every container and init container that mounts nothing at the default path (compared as
 * a plain string) gets that volume there; the volume is added if some container needed it.
 */
function serviceAccountAdmission(input: Pod): Pod {
  const pod = structuredClone(input);
  if (pod.spec.automountServiceAccountToken === false) return pod;
  const volumes = pod.spec.volumes ?? [];
  const name = volumes.find((v) => v.name.startsWith(SERVICE_ACCOUNT_VOLUME_PREFIX))?.name;
  const tokenVolume = name ?? `${SERVICE_ACCOUNT_VOLUME_PREFIX}abcde`;
  let needed = false;
  for (const container of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
    if (container.volumeMounts?.some((m) => m.mountPath === DEFAULT_API_TOKEN_MOUNT_PATH)) continue;
    container.volumeMounts = [
      ...(container.volumeMounts ?? []),
      { name: tokenVolume, readOnly: true, mountPath: DEFAULT_API_TOKEN_MOUNT_PATH },
    ];
    needed = true;
  }
  if (name === undefined && needed) {
    pod.spec.volumes = [...volumes, { name: tokenVolume, projected: { sources: [] } }];
  }
  return pod;
}

/** Admission as the apiserver runs it: plugin, webhook patch, plugin again. */
function admit(input: Pod): Pod {
  const before = serviceAccountAdmission(input);
  const result = review(podReview(before), params);
  if (result.status !== 200) throw new Error(result.message);
  return serviceAccountAdmission(applyPatch(before, decodePatch(result.review.response)));
}

const sidecarOf = (pod: Pod): V1Container => {
  const sidecar = pod.spec.initContainers?.find((c) => c.name === SIDECAR_NAME);
  if (!sidecar) throw new Error("no sidecar");
  return sidecar;
};

const mountsAt = (container: V1Container, path: string) =>
  (container.volumeMounts ?? []).filter((m) => m.mountPath === path);

const allContainers = (pod: Pod): V1Container[] => [
  ...(pod.spec.initContainers ?? []),
  ...pod.spec.containers,
];

const volumeNames = (pod: Pod) => (pod.spec.volumes ?? []).map((v) => v.name);

const plainPod = (): Pod => readJson<Pod>("minimal.in.json");
const noAutomountPod = (): Pod => readJson<Pod>("no-automount.in.json");

/** The source of the token volume that the kubelet writes at `file` in the sidecar, if any. */
function sourceAt(pod: Pod, file: string) {
  const mount = sidecarOf(pod).volumeMounts?.find((m) => m.name === TOKEN_VOLUME);
  const volume = pod.spec.volumes?.find((v) => v.name === TOKEN_VOLUME);
  if (!mount || !volume?.projected) return undefined;
  const path = posix.relative(mount.mountPath, file);
  return volume.projected.sources?.find(
    (s) =>
      s.serviceAccountToken?.path === path ||
      s.configMap?.items?.some((i) => i.path === path) ||
      s.downwardAPI?.items?.some((i) => i.path === path),
  );
}

describe("the sidecar's API credentials", () => {
  it("are in the token volume, where the sidecar reads them", () => {
    const injected = injectPod(plainPod(), params);
    expect(sourceAt(injected, SIDECAR_KUBE_API_CREDENTIALS.tokenFile)).toEqual({
      serviceAccountToken: { expirationSeconds: 3607, path: "kube-api-token" },
    });
    expect(sourceAt(injected, SIDECAR_KUBE_API_CREDENTIALS.caFile)).toEqual({
      configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] },
    });
    expect(sourceAt(injected, SIDECAR_KUBE_API_CREDENTIALS.namespaceFile)).toEqual({
      downwardAPI: {
        items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }],
      },
    });
  });

  it("come in DESIGN's two volumes, no third", () => {
    const input = plainPod();
    const added = volumeNames(injectPod(input, params)).filter((n) => !volumeNames(input).includes(n));
    expect(added).toEqual([STATE_VOLUME, TOKEN_VOLUME]);
  });

  it("leave the standard path to the ServiceAccount plugin: the webhook mounts nothing there", () => {
    expect(mountsAt(sidecarOf(injectPod(plainPod(), params)), DEFAULT_API_TOKEN_MOUNT_PATH)).toEqual([]);
  });

  it("are mounted in no app container", () => {
    const injected = admit(readJson<Pod>("multi-container.in.json"));
    for (const container of injected.spec.containers) {
      expect(container.volumeMounts?.map((m) => m.name)).not.toContain(TOKEN_VOLUME);
    }
  });

  it("are there when the pod turns automountServiceAccountToken off, and the default token is not", () => {
    const admitted = admit(noAutomountPod());
    expect(sourceAt(admitted, SIDECAR_KUBE_API_CREDENTIALS.tokenFile)).toBeDefined();
    // The pod's choice stands for all its containers: the plugin mounts nothing anywhere.
    for (const container of allContainers(admitted)) {
      expect(mountsAt(container, DEFAULT_API_TOKEN_MOUNT_PATH)).toEqual([]);
    }
    expect(volumeNames(admitted).filter((n) => n.startsWith(SERVICE_ACCOUNT_VOLUME_PREFIX))).toEqual([]);
  });

  it.each([
    ["a pod that the plugin already gave its token volume", "contrast-coordinator.in.json"],
    ["a pod without one yet", "minimal.in.json"],
    ["a pod with init containers", "existing-init-containers.in.json"],
  ])(
    "get along with the reinvoked ServiceAccount plugin, which mounts the default token as without us: %s",
    (_, file) => {
      const admitted = admit(readJson<Pod>(file));
      // With automount on, every container gets the pod's default token, the sidecar too; the
      // sidecar does not use it. One token volume of the plugin's, not a second.
      for (const container of allContainers(admitted)) {
        expect(mountsAt(container, DEFAULT_API_TOKEN_MOUNT_PATH)).toEqual([
          expect.objectContaining({ name: expect.stringMatching(/^kube-api-access-/), readOnly: true }),
        ]);
      }
      expect(volumeNames(admitted).filter((n) => n.startsWith(SERVICE_ACCOUNT_VOLUME_PREFIX))).toHaveLength(
        1,
      );
      // The apiserver refuses a container with two mounts at one path, and two volumes of one name.
      for (const container of allContainers(admitted)) {
        const paths = (container.volumeMounts ?? []).map((m) => m.mountPath);
        expect(new Set(paths).size).toBe(paths.length);
      }
      expect(new Set(volumeNames(admitted)).size).toBe(volumeNames(admitted).length);
    },
  );
});
