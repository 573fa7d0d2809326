import { describe, expect, it } from "vitest";
import { parseHandlerConfig } from "../../../src/handler/config.ts";

const required = { tlsCert: "/tls/tls.crt", tlsKey: "/tls/tls.key" };

describe("parseHandlerConfig", () => {
  it("has the chart's defaults", () => {
    const config = parseHandlerConfig(required);
    expect(config).toMatchObject({
      port: 8443,
      tlsCertFile: "/tls/tls.crt",
      tlsKeyFile: "/tls/tls.key",
      logLevel: "info",
    });
    expect(config.podSelector.text).toBe("app.kubernetes.io/name=coordinator");
    expect(config.issuer).toBeUndefined();
    expect(config.kubeconfig).toBeUndefined();
  });

  it("takes every flag", () => {
    const config = parseHandlerConfig({
      ...required,
      port: "9443",
      podSelector: "app=coord,tier in (a,b)",
      issuer: "https://kubernetes.default.svc.cluster.local",
      kubeconfig: "/root/.kube/config",
      logLevel: "debug",
    });
    expect(config).toMatchObject({
      port: 9443,
      issuer: "https://kubernetes.default.svc.cluster.local",
      kubeconfig: "/root/.kube/config",
    });
    expect(config.podSelector.matches({ app: "coord", tier: "b" })).toBe(true);
  });

  it("names every bad flag at once", () => {
    expect(() =>
      parseHandlerConfig({ port: "http", podSelector: "a in (", issuer: " ", logLevel: "loud" }),
    ).toThrow(
      /--port "http".*; --tls-cert is required; --tls-key is required; --pod-selector "a in \(".*; --issuer is empty.*; --log-level "loud"/,
    );
  });
});
