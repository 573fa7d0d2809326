// The sidecar's calls to the event handler (wire format in src/handler/api.ts). The token
// (audience coordinator-ha, the handler's alone; peers get the other one) is re-read for
// every call: the kubelet rotates the projected token file.
//
// Only a 200 with a well-formed answer about this pod's own StatefulSet counts. Anything
// else (unreachable, 503 while the handler's cache is unsynced, a 4xx, a malformed body)
// is "unknown", and "unknown" is never read as "no peer exists" (DESIGN.md, Trust).
import { readFile } from "node:fs/promises";
import type { Agent } from "node:https";
import { isIP } from "node:net";
import type { Peer, PeerAccessRequest, PeersResponse, RecoveredRequest } from "../handler/api.ts";
import type { PodIdentity } from "../identity/index.ts";
import { requestJson, RequestError } from "../http/client.ts";
import { isDigest } from "../state/bundle.ts";
import type { SidecarConfig } from "./config.ts";
import type { MemberCheck } from "./peer-api.ts";
import { statefulSetOf } from "./peer-authz.ts";

export type PeersAnswer = { kind: "peers"; peers: Peer[] } | { kind: "unknown"; reason: string };
/** `changed`: the handler wrote the condition (false: it already said the same). */
export type ConfirmAnswer =
  | { ok: true; changed: boolean }
  /** `status`: the handler's answer, absent when none came. */
  | { ok: false; reason: string; status?: number };

export interface HandlerClient {
  peers(): Promise<PeersAnswer>;
  confirm(request: RecoveredRequest): Promise<ConfirmAnswer>;
  /** Is `caller` a live member of this pod's StatefulSet? Only a 200 verdict counts. */
  peerAccess(caller: PodIdentity): Promise<MemberCheck>;
}

const TIMEOUT_MS = 5000;
const MAX_RESPONSE_BYTES = 1024 * 1024;
const CERT_SHA256 = /^[0-9a-f]{64}$/;

/** Reads the projected token; fails with a message that names the file, never the token. */
export async function readToken(file: string): Promise<string> {
  let token: string;
  try {
    token = (await readFile(file, "utf8")).trim();
  } catch (err) {
    throw new RequestError(
      `cannot read the token file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`,
    );
  }
  if (token === "") throw new RequestError(`the token file ${file} is empty`);
  return token;
}

/**
 * One authenticated call to the handler; throws RequestError when there is no answer. With
 * `agent`, the connection is kept for the next call (http/client.ts).
 */
export function handlerCall(config: SidecarConfig, agent?: Agent) {
  return async (method: "GET" | "POST", path: string, body?: unknown, timeoutMs = TIMEOUT_MS) =>
    requestJson({
      agent,
      url: new URL(path, config.handlerUrl),
      method,
      headers: { authorization: `Bearer ${await readToken(config.tokenFile)}` },
      body,
      ca: config.handlerCa,
      timeoutMs,
      maxResponseBytes: MAX_RESPONSE_BYTES,
    });
}

export function handlerClient(config: SidecarConfig): HandlerClient {
  const call = handlerCall(config);

  return {
    async peers() {
      let res;
      try {
        res = await call("GET", "/v1/peers");
      } catch (err) {
        return { kind: "unknown", reason: (err as Error).message };
      }
      if (res.status !== 200)
        return { kind: "unknown", reason: `handler answered ${res.status}: ${errorOf(res.body)}` };
      const problem = peersProblem(res.body, config);
      if (problem) return { kind: "unknown", reason: `handler answered 200 with ${problem}` };
      const peers = (res.body as PeersResponse).peers.filter((p) => p.pod !== config.self.podName);
      return { kind: "peers", peers };
    },
    async confirm(request) {
      let res;
      try {
        res = await call("POST", "/v1/recovered", request);
      } catch (err) {
        return { ok: false, reason: (err as Error).message };
      }
      if (res.status !== 200)
        return {
          ok: false,
          reason: `handler answered ${res.status}: ${errorOf(res.body)}`,
          status: res.status,
        };
      return { ok: true, changed: isObject(res.body) && res.body["changed"] === true };
    },
    async peerAccess(caller) {
      const request: PeerAccessRequest = {
        namespace: caller.namespace,
        pod: caller.podName,
        uid: caller.podUid,
        serviceAccount: caller.serviceAccount,
      };
      let res;
      try {
        res = await call("POST", "/v1/peer-access", request);
      } catch (err) {
        return { kind: "unknown", reason: (err as Error).message };
      }
      if (res.status !== 200)
        return { kind: "unknown", reason: `handler answered ${res.status}: ${errorOf(res.body)}` };
      const body = isObject(res.body) ? res.body : {};
      if (body["allowed"] === true) return { kind: "allowed" };
      if (body["allowed"] === false) {
        return {
          kind: "denied",
          reason: String(body["reason"]).slice(0, 64),
          message: typeof body["message"] === "string" ? body["message"].slice(0, 300) : "no reason given",
        };
      }
      return { kind: "unknown", reason: "handler answered 200 without a verdict" };
    },
  };
}

/** What is wrong with a GET /v1/peers body, or undefined when it is usable. */
export function peersProblem(
  body: unknown,
  config: Pick<SidecarConfig, "self" | "statefulSet">,
): string | undefined {
  if (!isObject(body) || !Array.isArray(body["peers"])) return "no peers list";
  if (body["namespace"] !== config.self.namespace || body["statefulSet"] !== config.statefulSet) {
    return `peers of ${String(body["namespace"])}/${String(body["statefulSet"])}, not of ${config.self.namespace}/${config.statefulSet}`;
  }
  for (const [i, peer] of (body["peers"] as unknown[]).entries()) {
    const bad = (what: string) => `peer ${i} with ${what}`;
    if (!isObject(peer)) return bad("no object");
    if (typeof peer["pod"] !== "string" || statefulSetOf(peer["pod"]) !== config.statefulSet)
      return bad("a pod of another StatefulSet");
    if (typeof peer["uid"] !== "string" || peer["uid"] === "") return bad("no uid");
    if (typeof peer["ip"] !== "string" || isIP(peer["ip"]) === 0) return bad("no IP address");
    const port = peer["port"];
    if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535)
      return bad("no port");
    if (!isDigest(peer["digest"])) return bad("no digest");
    if (typeof peer["certSha256"] !== "string" || !CERT_SHA256.test(peer["certSha256"]))
      return bad("no certSha256");
  }
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function errorOf(body: unknown): string {
  return isObject(body) && typeof body["error"] === "string"
    ? body["error"].slice(0, 300)
    : "no reason given";
}
