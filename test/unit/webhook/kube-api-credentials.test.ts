// The sidecar's own API credentials, and how they get along with the ServiceAccount
// admission plugin. The apiserver runs that plugin before the webhooks and, because the
// webhook's patch changes the pod, once more afterwards (admission reinvocation). The plugin
// is modelled here as Kubernetes v1.35 has it (plugin/pkg/admission/serviceaccount/
// admission.go, mountServiceAccountToken), with its constants written out rather than taken
// from src/names.ts, so that a rename on our side shows up here as a failure.
import type { V1Container, V1Volume } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { KUBE_API_VOLUME, SIDECAR_NAME } from "../../../src/names.ts";
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

const plainPod = (): Pod => readJson<Pod>("minimal.in.json");
const noAutomountPod = (): Pod => readJson<Pod>("no-automount.in.json");

describe("the sidecar's API credentials", () => {
  it("are mounted read-only in the sidecar at the path in-cluster clients read", () => {
    const injected = injectPod(plainPod(), params);
    expect(mountsAt(sidecarOf(injected), DEFAULT_API_TOKEN_MOUNT_PATH)).toEqual([
      { name: KUBE_API_VOLUME, mountPath: DEFAULT_API_TOKEN_MOUNT_PATH, readOnly: true },
    ]);
  });

  it("are a projected token for the apiserver's audience with the cluster CA and the namespace", () => {
    const volume = injectPod(plainPod(), params).spec.volumes?.find((v) => v.name === KUBE_API_VOLUME);
    expect(volume).toEqual<V1Volume>({
      name: KUBE_API_VOLUME,
      projected: {
        sources: [
          { serviceAccountToken: { expirationSeconds: 3607, path: "token" } },
          { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
          {
            downwardAPI: {
              items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }],
            },
          },
        ],
      },
    });
  });

  it("are mounted in no app container", () => {
    const injected = admit(readJson<Pod>("multi-container.in.json"));
    for (const container of injected.spec.containers) {
      expect(container.volumeMounts?.map((m) => m.name)).not.toContain(KUBE_API_VOLUME);
    }
  });

  it("are there when the pod turns automountServiceAccountToken off", () => {
    const admitted = admit(noAutomountPod());
    expect(mountsAt(sidecarOf(admitted), DEFAULT_API_TOKEN_MOUNT_PATH)).toEqual([
      expect.objectContaining({ name: KUBE_API_VOLUME }),
    ]);
    expect(admitted.spec.volumes?.map((v) => v.name)).toContain(KUBE_API_VOLUME);
    // The pod's choice stands for its own containers.
    expect(mountsAt(admitted.spec.containers[0]!, DEFAULT_API_TOKEN_MOUNT_PATH)).toEqual([]);
  });

  it.each([
    ["a pod that the plugin already gave its token volume", "contrast-coordinator.in.json"],
    ["a pod without one yet", "minimal.in.json"],
    ["a pod with init containers", "existing-init-containers.in.json"],
  ])(
    "keep the reinvoked ServiceAccount plugin from mounting a second token in the sidecar: %s",
    (_, file) => {
      const admitted = admit(readJson<Pod>(file));
      expect(mountsAt(sidecarOf(admitted), DEFAULT_API_TOKEN_MOUNT_PATH)).toEqual([
        expect.objectContaining({ name: KUBE_API_VOLUME }),
      ]);
      // The plugin still mounts its own volume in every other container, as without us.
      for (const container of [...(admitted.spec.initContainers ?? []), ...admitted.spec.containers]) {
        if (container.name === SIDECAR_NAME) continue;
        expect(mountsAt(container, DEFAULT_API_TOKEN_MOUNT_PATH)).toEqual([
          expect.objectContaining({ name: expect.stringMatching(/^kube-api-access-/) }),
        ]);
      }
      // The apiserver refuses a container with two mounts at one path, and two volumes of one name.
      for (const container of [...(admitted.spec.initContainers ?? []), ...admitted.spec.containers]) {
        const paths = (container.volumeMounts ?? []).map((m) => m.mountPath);
        expect(new Set(paths).size).toBe(paths.length);
      }
      const names = (admitted.spec.volumes ?? []).map((v) => v.name);
      expect(new Set(names).size).toBe(names.length);
    },
  );

  it("replace a volume of the same name instead of adding a second one", () => {
    const input = plainPod();
    input.spec.volumes = [
      { name: "data", emptyDir: {} },
      { name: KUBE_API_VOLUME, secret: { secretName: "coordinator-token-legacy" } },
    ];
    const volumes = injectPod(input, params).spec.volumes ?? [];
    expect(volumes.filter((v) => v.name === KUBE_API_VOLUME)).toEqual([
      expect.objectContaining({ projected: expect.any(Object) }),
    ]);
    // In place: the order of the pod's volumes is kept.
    expect(volumes.map((v) => v.name).slice(0, 2)).toEqual(["data", KUBE_API_VOLUME]);
  });
});
