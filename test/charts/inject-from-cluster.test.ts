// `inject --from-cluster` reads the chart's own objects: its MutatingWebhookConfiguration and
// the webhook's Deployment. Rendered here by `helm template`, so that a change of the chart's
// flags or names that `inject` would miss fails this test.
import type { V1Deployment, V1MutatingWebhookConfiguration } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { findWebhook, installedWebhook } from "../../src/inject/from-cluster.ts";
import { injectOptions } from "../../src/inject/run.ts";
import { IMAGE_REPOSITORY } from "../../src/names.ts";
import { CHARTS, PACKAGE_VERSION, find, render } from "./helm.ts";

describe("inject --from-cluster on the chart's objects", () => {
  it("takes the webhook's image, handler URL, CA, state directory and objectSelector", () => {
    const objects = render(CHARTS.coordinatorHa, {
      values: {
        sidecar: { stateDir: "/data/state", image: { pullPolicy: "Always" } },
        webhook: { objectSelector: { matchExpressions: [{ key: "tier", operator: "In", values: ["a"] }] } },
      },
    });
    const configuration = find(
      objects,
      "MutatingWebhookConfiguration",
    ) as unknown as V1MutatingWebhookConfiguration;
    const { service } = findWebhook([configuration]);
    expect(service).toEqual({ namespace: "cha-system", name: "cha-coordinator-ha-webhook" });
    const deployment = find(objects, "Deployment", service.name) as unknown as V1Deployment;
    const installed = installedWebhook(configuration, deployment);
    const caPem = Buffer.from(configuration.webhooks![0]!.clientConfig.caBundle!, "base64").toString();
    expect(installed.params).toEqual({
      image: `${IMAGE_REPOSITORY}:${PACKAGE_VERSION}`,
      imagePullPolicy: "Always",
      handlerUrl: "https://cha-coordinator-ha-handler.cha-system.svc:443",
      handlerCa: caPem,
      stateDir: "/data/state",
      probes: "http",
    });
    expect(caPem).toContain("-----BEGIN CERTIFICATE-----");
    expect(installed.selector).toBe(
      "app.kubernetes.io/name=coordinator,coordinator-ha.io/inject notin (false),tier in (a)",
    );
    const { selector } = injectOptions({ filename: "-", fromCluster: true }, installed);
    expect(selector.matches({ "app.kubernetes.io/name": "coordinator", tier: "a" })).toBe(true);
    expect(
      selector.matches({
        "app.kubernetes.io/name": "coordinator",
        tier: "a",
        "coordinator-ha.io/inject": "false",
      }),
    ).toBe(false);
  });

  it("says what is missing when coordinator-ha is not installed", () => {
    expect(() => findWebhook([])).toThrow(
      /no MutatingWebhookConfiguration in this cluster has the webhook inject.coordinator-ha.io/,
    );
  });
});
