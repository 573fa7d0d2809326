// Helpers for tests against the local cluster that global-setup.ts started.
import { readFileSync } from "node:fs";
import { request, type RequestOptions } from "node:https";
import { setTimeout as sleep } from "node:timers/promises";
import {
  ApiextensionsV1Api,
  ApiException,
  CoreV1Api,
  KubeConfig,
  type V1CustomResourceDefinition,
  type V1Pod,
} from "@kubernetes/client-node";
import { parse } from "yaml";
import { paths } from "./launcher/config.ts";

/** The admin kubeconfig of the local cluster. */
export function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(paths.kubeconfig);
  return kc;
}

/** GET a path of the apiserver as the admin, and parse the JSON answer. */
export async function getJson<T>(kc: KubeConfig, path: string): Promise<T> {
  const url = new URL(path, kc.getCurrentCluster()!.server);
  // No Accept header: the JWKS is served only as application/jwk-set+json.
  const opts: RequestOptions = { method: "GET" };
  await kc.applyToHTTPSOptions(opts);
  return new Promise((resolve, reject) => {
    const req = request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        if (res.statusCode !== 200) reject(new Error(`GET ${path}: HTTP ${res.statusCode}: ${body}`));
        else resolve(JSON.parse(body) as T);
      });
    });
    req.on("error", reject);
    req.end();
  });
}

/** A fresh namespace, so that tests never see each other's objects; `generateName` makes it unique. */
export async function createNamespace(kc: KubeConfig, prefix: string): Promise<string> {
  const ns = await kc
    .makeApiClient(CoreV1Api)
    .createNamespace({ body: { metadata: { generateName: `${prefix}-` } } });
  return ns.metadata!.name!;
}

/** Deletes a namespace without waiting: the namespace controller empties it in the background. */
export async function deleteNamespace(kc: KubeConfig, name: string): Promise<void> {
  await kc.makeApiClient(CoreV1Api).deleteNamespace({ name });
}

/** Polls `probe` until it returns a value other than undefined. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeoutMs = 30_000, intervalMs = 250 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError === undefined ? "" : `; last error: ${String(lastError)}`;
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${why}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * A service-account token bound to the pod (TokenRequest with boundObjectRef), as the kubelet
 * projects it: it names the pod's namespace, service account, name and uid.
 */
export async function requestPodToken(core: CoreV1Api, pod: V1Pod, audiences: string[]): Promise<string> {
  const name = pod.metadata!.name!;
  const answer = await core.createNamespacedServiceAccountToken({
    namespace: pod.metadata!.namespace!,
    name: pod.spec!.serviceAccountName!,
    body: {
      spec: {
        audiences,
        expirationSeconds: 600,
        boundObjectRef: { apiVersion: "v1", kind: "Pod", name, uid: pod.metadata!.uid! },
      },
    },
  });
  const token = answer.status?.token;
  if (!token) throw new Error(`the TokenRequest for pod ${name} returned no token`);
  return token;
}

/**
 * The chart's StateHead CRD (charts/coordinator-ha/crds), created if the cluster lacks it, as
 * `helm install` does; resolves once the apiserver serves it.
 */
export async function ensureStateHeadCrd(kc: KubeConfig): Promise<void> {
  const file = new URL("../../charts/coordinator-ha/crds/stateheads.coordinator-ha.io.yaml", import.meta.url);
  const crd = parse(readFileSync(file, "utf8")) as V1CustomResourceDefinition;
  const api = kc.makeApiClient(ApiextensionsV1Api);
  try {
    await api.createCustomResourceDefinition({ body: crd });
  } catch (err) {
    if (!(err instanceof ApiException && err.code === 409)) throw err;
  }
  await eventually("the StateHead CRD to be established", async () => {
    const got = await api.readCustomResourceDefinition({ name: crd.metadata!.name! });
    return got.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")
      ? true
      : undefined;
  });
}
