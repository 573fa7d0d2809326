import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { registerHandlerCommand } from "../../../src/handler/command.ts";
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

describe("--namespace", () => {
  it("is unset (every namespace) when not given", () => {
    expect(parseHandlerConfig(required).namespaces).toBeUndefined();
  });

  it("takes repeated flags and comma-separated lists, each namespace once, in order", () => {
    expect(parseHandlerConfig({ ...required, namespace: ["team-a"] }).namespaces).toEqual(["team-a"]);
    expect(
      parseHandlerConfig({ ...required, namespace: ["team-a", "b,c", " d ", "team-a"] }).namespaces,
    ).toEqual(["team-a", "b", "c", "d"]);
  });

  it("collects the repeated flag as commander hands it over", async () => {
    const program = new Command().exitOverride();
    registerHandlerCommand(program);
    const handler = program.commands.find((c) => c.name() === "handler")!;
    handler.action(() => undefined);
    await program.parseAsync(["handler", "--namespace", "a", "--namespace=b,c"], { from: "user" });
    expect(handler.opts()["namespace"]).toEqual(["a", "b,c"]);
  });

  it.each([
    ["Team-A", "Team-A"],
    ["a_b", "a_b"],
    ["-a", "-a"],
    ["a.b", "a.b"],
    ["a,,b", ""],
    ["", ""],
    ["x".repeat(64), "x".repeat(64)],
  ])("refuses %j, naming the flag and the value", (given, bad) => {
    expect(() => parseHandlerConfig({ ...required, namespace: ["ok", given] })).toThrow(
      `--namespace ${JSON.stringify(given)}: ${JSON.stringify(bad)} is not a namespace name (a DNS-1123 label`,
    );
  });

  it("names every bad namespace along with the other bad flags", () => {
    expect(() => parseHandlerConfig({ ...required, port: "x", namespace: ["A", "b_c"] })).toThrow(
      /^--port "x".*; --namespace "A": "A" is not.*; --namespace "b_c": "b_c" is not/,
    );
  });
});
