import { describe, expect, it } from "vitest";
import { PEER_TOKEN_FILE, TOKEN_FILE } from "../../../src/names.ts";
import { ConfigError, parseSidecarConfig } from "../../../src/recovery/config.ts";
import { SidecarEnv } from "../../../src/recovery/sidecar-env.ts";

const env = {
  [SidecarEnv.podName]: "coordinator-1",
  [SidecarEnv.podNamespace]: "ns",
  [SidecarEnv.podUid]: "uid-1",
  [SidecarEnv.podIp]: "10.244.0.7",
  [SidecarEnv.serviceAccount]: "coordinator",
  [SidecarEnv.handlerUrl]: "https://coordinator-ha-handler.coordinator-ha.svc:8443",
  [SidecarEnv.handlerCa]: "",
  [SidecarEnv.stateDir]: "/var/run/coordinator-ha/state",
  [SidecarEnv.tokenFile]: "/var/run/secrets/coordinator-ha/token",
  [SidecarEnv.peerTokenFile]: "/var/run/secrets/coordinator-ha/peer-token",
  [SidecarEnv.peerPort]: "7443",
  [SidecarEnv.probePort]: "7444",
  [SidecarEnv.appReadinessUrl]: "http://127.0.0.1:9102/probe/readiness",
};

describe("parseSidecarConfig", () => {
  it("reads the env that the webhook injects", () => {
    const config = parseSidecarConfig(env);
    expect(config.self).toEqual({
      namespace: "ns",
      serviceAccount: "coordinator",
      podName: "coordinator-1",
      podUid: "uid-1",
    });
    expect(config.statefulSet).toBe("coordinator");
    expect(config.handlerUrl.href).toBe("https://coordinator-ha-handler.coordinator-ha.svc:8443/");
    expect(config.handlerCa).toBeUndefined();
    expect(config.tokenFile).toBe("/var/run/secrets/coordinator-ha/token");
    expect(config.peerTokenFile).toBe("/var/run/secrets/coordinator-ha/peer-token");
    expect(config.peerPort).toBe(7443);
    expect(config.probePort).toBe(7444);
    expect(config.appReadinessUrl?.href).toBe("http://127.0.0.1:9102/probe/readiness");
  });

  it("defaults both token files to the projected volume's", () => {
    const config = parseSidecarConfig({
      ...env,
      [SidecarEnv.tokenFile]: undefined,
      [SidecarEnv.peerTokenFile]: "",
    });
    expect(config.tokenFile).toBe(TOKEN_FILE);
    expect(config.peerTokenFile).toBe(PEER_TOKEN_FILE);
  });

  it("refuses one file for both tokens: peers would get the handler's", () => {
    expect(() =>
      parseSidecarConfig({ ...env, [SidecarEnv.peerTokenFile]: "/var/run/secrets/coordinator-ha//token" }),
    ).toThrow(
      'CHA_PEER_TOKEN_FILE="/var/run/secrets/coordinator-ha//token" is the same file as CHA_TOKEN_FILE; peers need their own token (audience coordinator-ha-peer)',
    );
  });

  it("treats an empty readiness URL as none", () => {
    expect(parseSidecarConfig({ ...env, [SidecarEnv.appReadinessUrl]: "" }).appReadinessUrl).toBeUndefined();
  });

  it("lists every bad variable with its value", () => {
    const bad = {
      ...env,
      [SidecarEnv.podName]: "standalone",
      [SidecarEnv.podUid]: "",
      [SidecarEnv.handlerUrl]: "http://handler:8080",
      [SidecarEnv.handlerCa]: "not a certificate",
      [SidecarEnv.stateDir]: "relative/dir",
      [SidecarEnv.peerTokenFile]: "peer-token",
      [SidecarEnv.peerPort]: "70000",
      [SidecarEnv.appReadinessUrl]: "ftp://x",
    };
    let message = "";
    try {
      parseSidecarConfig(bad);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    expect(message).toContain('CHA_POD_NAME="standalone" is not a StatefulSet pod name');
    expect(message).toContain("CHA_POD_UID is required");
    expect(message).toContain('CHA_HANDLER_URL="http://handler:8080" is not an https URL');
    expect(message).toContain("CHA_HANDLER_CA is not a PEM certificate bundle");
    expect(message).toContain('CHA_STATE_DIR="relative/dir" is not an absolute directory path');
    expect(message).toContain('CHA_PEER_TOKEN_FILE="peer-token" is not an absolute path');
    expect(message).toContain('CHA_PEER_PORT="70000" is not a port number');
    expect(message).toContain('CHA_APP_READINESS_URL="ftp://x" is not an http(s) URL');
  });

  it("refuses a missing handler URL", () => {
    expect(() => parseSidecarConfig({ ...env, [SidecarEnv.handlerUrl]: undefined })).toThrow(
      /CHA_HANDLER_URL is required/,
    );
  });
});
