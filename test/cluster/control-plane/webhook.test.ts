// The real kube-apiserver calls a mutating webhook over TLS and applies its JSON patch: the
// mechanism our webhook relies on, here with a webhook that only this test serves.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { IncomingMessage, ServerResponse } from "node:http";
import { AdmissionregistrationV1Api, CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RECOVERED_CONDITION } from "../../../src/names.ts";
import { startTlsServer, type TlsServer } from "../../../src/http/tls-server.ts";
import { createCa, issueServingCert } from "../../../webhook-certs/x509.ts";
import { createNamespace, deleteNamespace, eventually, kubeConfig } from "../kube.ts";
import { WEBHOOK_LIMITS } from "../../../src/http/limits.ts";

const MUTATED = "test.coordinator-ha.io/mutated";

interface AdmissionRequest {
  uid: string;
  kind: { kind: string };
  operation: string;
  namespace: string;
  dryRun: boolean;
  object: V1Pod;
}

describe("kube-apiserver with a mutating webhook", () => {
  const kc = kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  const reviews: AdmissionRequest[] = [];
  let dir: string;
  let server: TlsServer;
  let namespace: string;
  let configName: string;

  // Adds a readiness gate and an annotation, as the product's webhook does to Coordinator pods.
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const review = JSON.parse(Buffer.concat(chunks).toString()) as { request: AdmissionRequest };
      reviews.push(review.request);
      const pod = review.request.object;
      const patch = [
        { op: "add", path: "/spec/readinessGates", value: [{ conditionType: RECOVERED_CONDITION }] },
        pod.metadata?.annotations
          ? { op: "add", path: `/metadata/annotations/${MUTATED.replace("/", "~1")}`, value: "true" }
          : { op: "add", path: "/metadata/annotations", value: { [MUTATED]: "true" } },
      ];
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify({
          apiVersion: "admission.k8s.io/v1",
          kind: "AdmissionReview",
          response: {
            uid: review.request.uid,
            allowed: true,
            patchType: "JSONPatch",
            patch: Buffer.from(JSON.stringify(patch)).toString("base64"),
          },
        }),
      );
    });
  };

  const pod = (name: string): V1Pod => ({
    metadata: { name },
    spec: { containers: [{ name: "app", image: "registry.invalid/app:1" }] },
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "cha-webhook-"));
    const ca = await createCa({ commonName: "webhook-test-ca" });
    const serving = await issueServingCert(ca, { ips: ["127.0.0.1"] });
    writeFileSync(join(dir, "tls.crt"), serving.certPem);
    writeFileSync(join(dir, "tls.key"), serving.keyPem);
    server = await startTlsServer({
      port: 0,
      host: "127.0.0.1",
      certFile: join(dir, "tls.crt"),
      keyFile: join(dir, "tls.key"),
      handler,
      logger: pino({ level: "silent" }),
      limits: WEBHOOK_LIMITS,
    });
    namespace = await createNamespace(kc, "webhook");
    const config = await admission.createMutatingWebhookConfiguration({
      body: {
        metadata: { generateName: "cluster-test-" },
        webhooks: [
          {
            name: "pods.test.coordinator-ha.io",
            clientConfig: {
              url: `https://127.0.0.1:${server.port}/mutate`,
              caBundle: Buffer.from(ca.certPem).toString("base64"),
            },
            rules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"] }],
            // Only this test's namespace: other tests in the same cluster never meet this webhook.
            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } },
            sideEffects: "None",
            admissionReviewVersions: ["v1"],
            failurePolicy: "Fail",
            timeoutSeconds: 10,
          },
        ],
      },
    });
    configName = config.metadata!.name!;
  });

  afterAll(async () => {
    if (configName) await admission.deleteMutatingWebhookConfiguration({ name: configName });
    if (namespace) await deleteNamespace(kc, namespace);
    if (server?.server.listening) await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("calls the webhook at its URL over TLS and stores the patched pod", async () => {
    // The apiserver picks up a new webhook configuration within a moment: probe with dry runs
    // (a webhook without side effects is called for them too) until it is in effect.
    await eventually("the webhook configuration to take effect", async () => {
      const probe = await core.createNamespacedPod({ namespace, body: pod("probe"), dryRun: "All" });
      return probe.metadata?.annotations?.[MUTATED] === "true" ? true : undefined;
    });

    const created = await core.createNamespacedPod({ namespace, body: pod("mutated") });
    expect(created.metadata?.annotations?.[MUTATED]).toBe("true");
    expect(created.spec?.readinessGates).toEqual([{ conditionType: RECOVERED_CONDITION }]);

    const stored = await core.readNamespacedPod({ namespace, name: "mutated" });
    expect(stored.metadata?.annotations?.[MUTATED]).toBe("true");
    expect(stored.spec?.readinessGates).toEqual([{ conditionType: RECOVERED_CONDITION }]);

    const review = reviews.find((r) => !r.dryRun && r.object.metadata?.name === "mutated");
    expect(review).toMatchObject({ kind: { kind: "Pod" }, operation: "CREATE", namespace });
    // Admission runs after defaulting and the ServiceAccount plugin: the webhook sees the
    // pod as it will be stored.
    expect(review?.object.spec?.serviceAccountName).toBe("default");
  });

  // Last: it stops the webhook server.
  it("rejects the pod while the webhook is unreachable, as failurePolicy Fail demands", async () => {
    await server.close();
    await expect(core.createNamespacedPod({ namespace, body: pod("unserved") })).rejects.toThrow(
      /failed calling webhook .*pods\.test\.coordinator-ha\.io.*connection refused/,
    );
  });
});
