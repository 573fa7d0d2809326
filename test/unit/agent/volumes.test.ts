// The node agent's projected volumes, with the webhook's coordinator-ha-token volume as the
// case that matters: several serviceAccountToken sources (two audiences and the apiserver's
// own), a ConfigMap and the downward API in one volume. The TokenRequests go to a recording
// stand-in for the apiserver; the files are written as the agent writes them and read back.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, describe, expect, it } from "vitest";
import type { ConfigMap, Pod } from "../../cluster/agent/kube/wire.ts";
import { writeAtomically } from "../../cluster/agent/pod/atomic-writer.ts";
import { TokenManager } from "../../cluster/agent/pod/tokens.ts";
import { PodVolumes, VolumeError, type VolumeSources } from "../../cluster/agent/pod/volumes.ts";
import { TOKEN_VOLUME } from "../../../src/names.ts";
import { tokenVolume } from "../../../src/webhook/sidecar.ts";

type Volume = NonNullable<NonNullable<Pod["spec"]>["volumes"]>[number];

interface TokenRequestCall {
  name: string;
  namespace: string;
  body: {
    spec: {
      audiences?: string[];
      expirationSeconds: number;
      boundObjectRef: { kind: string; name: string; uid: string };
    };
  };
}

const CA_PEM = "-----BEGIN CERTIFICATE-----\nTEST CA\n-----END CERTIFICATE-----\n";

const pod: Pod = {
  metadata: { name: "coordinator-0", namespace: "contrast", uid: "b1c2d3e4-0000-4000-8000-000000000001" },
  spec: { serviceAccountName: "coordinator", containers: [{ name: "coordinator", image: "busybox" }] },
};

/** A TokenRequest API that records each call and answers with a token naming it. */
function tokenApi(now: () => number) {
  const calls: TokenRequestCall[] = [];
  const api = {
    createNamespacedServiceAccountToken: async (req: TokenRequestCall) => {
      calls.push(req);
      const spec = req.body.spec;
      const audience = spec.audiences?.join(",") ?? "apiserver";
      return {
        status: {
          token: `${audience}#${calls.length}`,
          expirationTimestamp: new Date(now() + spec.expirationSeconds * 1000).toISOString(),
        },
      };
    },
  };
  return { calls, api: api as unknown as CoreV1Api };
}

function volumes(opts: { configMaps?: Record<string, ConfigMap>; now?: () => number } = {}) {
  const now = opts.now ?? Date.now;
  const { calls, api } = tokenApi(now);
  const configMaps = opts.configMaps ?? { "kube-root-ca.crt": { data: { "ca.crt": CA_PEM } } };
  const src: VolumeSources = {
    getConfigMap: async (namespace, name) => (namespace === "contrast" ? (configMaps[name] ?? null) : null),
    getSecret: async () => null,
    tokens: new TokenManager(api, now),
    hostIP: "10.244.0.1",
    allocatable: { cpu: "2", memory: "4Gi", "ephemeral-storage": "10Gi" },
  };
  return { calls, podVolumes: new PodVolumes(pod, "/nonexistent", src) };
}

/** The webhook's token volume, as a wire object. */
const injectedTokenVolume = (): Volume => JSON.parse(JSON.stringify(tokenVolume())) as Volume;

const contents = (files: Map<string, { data: Buffer }> | undefined) =>
  Object.fromEntries([...(files ?? [])].map(([path, f]) => [path, f.data.toString()]));

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("a projected volume with several kinds of sources", () => {
  it("gets a file for every source of the webhook's token volume, tokens by audience", async () => {
    const { calls, podVolumes } = volumes();
    const files = await podVolumes.files(injectedTokenVolume());
    expect(contents(files)).toEqual({
      token: "coordinator-ha#1",
      "peer-token": "coordinator-ha-peer#2",
      "kube-api-token": "apiserver#3",
      "ca.crt": CA_PEM,
      namespace: "contrast",
    });
    // Each token is a TokenRequest of its own, bound to the pod; the one without an audience
    // asks for none, so that the apiserver gives its own.
    expect(
      calls.map((c) => [c.name, c.namespace, c.body.spec.audiences, c.body.spec.expirationSeconds]),
    ).toEqual([
      ["coordinator", "contrast", ["coordinator-ha"], 3600],
      ["coordinator", "contrast", ["coordinator-ha-peer"], 3600],
      ["coordinator", "contrast", undefined, 3607],
    ]);
    expect(calls[2]!.body.spec).not.toHaveProperty("audiences");
    for (const call of calls) {
      expect(call.body.spec.boundObjectRef).toMatchObject({
        kind: "Pod",
        name: "coordinator-0",
        uid: pod.metadata!.uid,
      });
    }
  });

  it("serves them as files, whatever the volume is called", async () => {
    const dir = mkdtempSync(join(tmpdir(), "agent-volumes-"));
    dirs.push(dir);
    const { podVolumes } = volumes();
    const files = await podVolumes.files({ ...injectedTokenVolume(), name: "any-name" });
    await writeAtomically(dir, files!);
    expect(readFileSync(join(dir, "kube-api-token"), "utf8")).toBe("apiserver#3");
    expect(readFileSync(join(dir, "ca.crt"), "utf8")).toBe(CA_PEM);
    expect(readFileSync(join(dir, "namespace"), "utf8")).toBe("contrast");
    expect(readFileSync(join(dir, "peer-token"), "utf8")).toBe("coordinator-ha-peer#2");
  });

  it("renews each token at 80% of its own lifetime and keeps the others", async () => {
    let clock = Date.parse("2025-01-01T00:00:00Z");
    const { calls, podVolumes } = volumes({ now: () => clock });
    await podVolumes.files(injectedTokenVolume());
    clock += 2880 * 1000 + 1; // 80% of 3600 s: the two identity tokens are due, not the 3607 s one.
    const renewed = contents(await podVolumes.files(injectedTokenVolume()));
    expect(calls).toHaveLength(5);
    expect(renewed).toMatchObject({ token: "coordinator-ha#4", "peer-token": "coordinator-ha-peer#5" });
    expect(renewed["kube-api-token"]).toBe("apiserver#3");
  });

  it("waits for the cluster CA's ConfigMap, naming the volume", async () => {
    const { podVolumes } = volumes({ configMaps: {} });
    const setUp = podVolumes.files(injectedTokenVolume());
    await expect(setUp).rejects.toBeInstanceOf(VolumeError);
    await expect(setUp).rejects.toThrow(
      `MountVolume.SetUp failed for volume "${TOKEN_VOLUME}" : configmap "kube-root-ca.crt" not found`,
    );
  });
});
