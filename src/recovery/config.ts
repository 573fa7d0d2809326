// The recovery sidecar's configuration: the env that the webhook injects (sidecar-env.ts),
// parsed and checked in one place. An error lists every bad variable with its value.
import { X509Certificate } from "node:crypto";
import { posix } from "node:path";
import type { PodIdentity } from "../identity/index.ts";
import {
  DEFAULT_STATE_DIR,
  PEER_PORT,
  PEER_TOKEN_AUDIENCE,
  PEER_TOKEN_FILE,
  SIDECAR_PROBE_PORT,
  COMMIT_PORT,
  TOKEN_FILE,
} from "../names.ts";
import { statefulSetOf } from "./peer-authz.ts";
import { SidecarEnv } from "./sidecar-env.ts";
import { ConfigError } from "../config/problems.ts";

export interface SidecarConfig {
  /** This pod, as the downward API describes it; peers are checked against it. */
  self: PodIdentity;
  statefulSet: string;
  handlerUrl: URL;
  /** PEM bundle that verifies the handler; undefined means the system trust store. */
  handlerCa: string | undefined;
  stateDir: string;
  /** The token for the handler (audience coordinator-ha); never sent to a peer. */
  tokenFile: string;
  /** The token for peers (audience coordinator-ha-peer); never sent to the handler. */
  peerTokenFile: string;
  peerPort: number;
  probePort: number;
  /** The local commit API, on 127.0.0.1 only. */
  commitPort: number;
  /** The app's readiness endpoint; undefined means "state present" stands for "app ready". */
  appReadinessUrl: URL | undefined;
}

export { ConfigError };

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Parses the env; throws a ConfigError that lists every bad variable. */
export function parseSidecarConfig(env: NodeJS.ProcessEnv): SidecarConfig {
  const problems: string[] = [];
  const value = (name: string): string => env[name]?.trim() ?? "";
  const required = (name: string): string => {
    const v = value(name);
    if (v === "") problems.push(`${name} is required`);
    return v;
  };
  const quoted = (name: string) => `${name}=${JSON.stringify(env[name] ?? "")}`;

  const podName = required(SidecarEnv.podName);
  const self: PodIdentity = {
    namespace: required(SidecarEnv.podNamespace),
    serviceAccount: required(SidecarEnv.serviceAccount),
    podName,
    podUid: required(SidecarEnv.podUid),
  };
  const statefulSet = statefulSetOf(podName) ?? "";
  if (podName !== "" && statefulSet === "") {
    problems.push(`${quoted(SidecarEnv.podName)} is not a StatefulSet pod name (<statefulset>-<ordinal>)`);
  }

  let handlerUrl: URL | undefined;
  const handlerText = required(SidecarEnv.handlerUrl);
  if (handlerText !== "") {
    try {
      handlerUrl = new URL(handlerText);
      // The sidecar sends its token there: never in the clear.
      if (handlerUrl.protocol !== "https:")
        problems.push(`${quoted(SidecarEnv.handlerUrl)} is not an https URL`);
    } catch {
      problems.push(`${quoted(SidecarEnv.handlerUrl)} is not a URL`);
    }
  }

  const caText = value(SidecarEnv.handlerCa);
  let handlerCa: string | undefined;
  if (caText !== "") {
    const blocks = caText.match(PEM_CERTIFICATE) ?? [];
    try {
      if (blocks.length === 0) throw new Error("no certificate");
      for (const block of blocks) new X509Certificate(block);
      handlerCa = caText;
    } catch {
      problems.push(`${SidecarEnv.handlerCa} is not a PEM certificate bundle`);
    }
  }

  const stateText = value(SidecarEnv.stateDir) || DEFAULT_STATE_DIR;
  if (!posix.isAbsolute(stateText) || posix.normalize(stateText) === "/") {
    problems.push(`${quoted(SidecarEnv.stateDir)} is not an absolute directory path below /`);
  }
  const tokenFile = value(SidecarEnv.tokenFile) || TOKEN_FILE;
  if (!posix.isAbsolute(tokenFile)) problems.push(`${quoted(SidecarEnv.tokenFile)} is not an absolute path`);
  const peerTokenFile = value(SidecarEnv.peerTokenFile) || PEER_TOKEN_FILE;
  if (!posix.isAbsolute(peerTokenFile))
    problems.push(`${quoted(SidecarEnv.peerTokenFile)} is not an absolute path`);
  // One file for both would hand peers the handler's token again, which is what the two
  // audiences are there to prevent.
  if (posix.normalize(peerTokenFile) === posix.normalize(tokenFile)) {
    problems.push(
      `${quoted(SidecarEnv.peerTokenFile)} is the same file as ${SidecarEnv.tokenFile}; peers need their own token (audience ${PEER_TOKEN_AUDIENCE})`,
    );
  }

  const port = (name: string, fallback: number): number => {
    const text = value(name);
    if (text === "") return fallback;
    const n = Number(text);
    // 0 asks the OS for a free port (tests); the log says which one.
    if (!/^\d+$/.test(text) || n > 65535) problems.push(`${quoted(name)} is not a port number (0-65535)`);
    return n;
  };
  const peerPort = port(SidecarEnv.peerPort, PEER_PORT);
  const probePort = port(SidecarEnv.probePort, SIDECAR_PROBE_PORT);
  const commitPort = port(SidecarEnv.commitPort, COMMIT_PORT);

  let appReadinessUrl: URL | undefined;
  const readinessText = value(SidecarEnv.appReadinessUrl);
  if (readinessText !== "") {
    try {
      appReadinessUrl = new URL(readinessText);
      if (appReadinessUrl.protocol !== "http:" && appReadinessUrl.protocol !== "https:") {
        problems.push(`${quoted(SidecarEnv.appReadinessUrl)} is not an http(s) URL`);
      }
    } catch {
      problems.push(`${quoted(SidecarEnv.appReadinessUrl)} is not a URL`);
    }
  }

  if (problems.length > 0 || !handlerUrl)
    throw new ConfigError(`invalid sidecar environment: ${problems.join("; ")}`);
  return {
    self,
    statefulSet,
    handlerUrl,
    handlerCa,
    stateDir: posix.normalize(stateText),
    tokenFile,
    peerTokenFile,
    peerPort,
    probePort,
    commitPort,
    appReadinessUrl,
  };
}
