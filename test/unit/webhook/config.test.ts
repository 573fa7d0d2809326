import { describe, expect, it } from "vitest";
import { parseWebhookConfig, type WebhookFlags } from "../../../src/webhook/config.ts";

const valid: WebhookFlags = {
  tlsCert: "/tls/tls.crt",
  tlsKey: "/tls/tls.key",
  sidecarImage: "coordinator-ha:0.1.0",
  handlerUrl: "https://coordinator-ha-handler.coordinator-ha.svc",
};

describe("parseWebhookConfig", () => {
  it("applies the defaults", () => {
    expect(parseWebhookConfig(valid)).toEqual({
      port: 8443,
      tlsCertFile: "/tls/tls.crt",
      tlsKeyFile: "/tls/tls.key",
      sidecarImage: "coordinator-ha:0.1.0",
      handlerUrl: "https://coordinator-ha-handler.coordinator-ha.svc",
      stateDir: "/var/run/coordinator-ha/state",
      sidecarProbes: "http",
      logLevel: "info",
    });
  });

  it("takes every flag", () => {
    const config = parseWebhookConfig({
      ...valid,
      port: "9443",
      sidecarImagePullPolicy: "Never",
      handlerCaFile: "/ca/ca.crt",
      stateDir: "/state/",
      sidecarProbes: "exec",
      logLevel: "debug",
    });
    expect(config).toMatchObject({
      port: 9443,
      sidecarProbes: "exec",
      sidecarImagePullPolicy: "Never",
      handlerCaFile: "/ca/ca.crt",
      stateDir: "/state",
      logLevel: "debug",
    });
  });

  it.each<[WebhookFlags, string]>([
    [{ ...valid, port: "84a3" }, '--port "84a3" is not a port number (0-65535)'],
    [{ ...valid, port: "65536" }, '--port "65536" is not a port number (0-65535)'],
    [{ ...valid, tlsCert: undefined }, "--tls-cert is required"],
    [{ ...valid, tlsKey: " " }, "--tls-key is required"],
    [{ ...valid, sidecarImage: undefined }, "--sidecar-image is required"],
    [{ ...valid, sidecarImage: "a b" }, '--sidecar-image "a b" contains whitespace'],
    [
      { ...valid, sidecarImagePullPolicy: "always" },
      '--sidecar-image-pull-policy "always" is not one of Always, IfNotPresent, Never',
    ],
    [{ ...valid, handlerUrl: undefined }, "--handler-url is required"],
    [{ ...valid, handlerUrl: "handler:8443" }, '--handler-url "handler:8443" must be an https URL'],
    [{ ...valid, handlerUrl: "not a url" }, '--handler-url "not a url" is not a URL'],
    [{ ...valid, handlerUrl: "http://handler" }, '--handler-url "http://handler" must be an https URL'],
    [
      { ...valid, handlerUrl: "https://u:p@handler" },
      '--handler-url "https://u:p@handler" must not carry credentials',
    ],
    [{ ...valid, stateDir: "state" }, '--state-dir "state" is not an absolute directory path below /'],
    [{ ...valid, stateDir: "/" }, '--state-dir "/" is not an absolute directory path below /'],
    [{ ...valid, logLevel: "verbose" }, '--log-level "verbose" is not one of fatal, error, warn'],
    [{ ...valid, handlerCaFile: "" }, "--handler-ca-file is empty"],
    [{ ...valid, sidecarProbes: "tcp" }, '--sidecar-probes "tcp" is not one of http, exec'],
  ])("rejects %j", (flags, message) => {
    expect(() => parseWebhookConfig(flags)).toThrow(message);
  });

  it("names every bad flag at once", () => {
    expect(() => parseWebhookConfig({ port: "x", handlerUrl: "http://h" })).toThrow(
      '--port "x" is not a port number (0-65535); --tls-cert is required; --tls-key is required; ' +
        '--sidecar-image is required; --handler-url "http://h" must be an https URL (sidecars send their token there)',
    );
  });
});
