// The sidecar's peer API (HTTPS on the cha-peer port, self-signed certificate that peers pin):
//
//   POST /v1/state  Authorization: Bearer <pod-bound token, audience coordinator-ha-peer>
//                   {"publicKey": <P-256 JWK>, "digest"?: "sha256:…"}
//     without digest: the live state; with it: that state, live or staged here (a proposal
//     that other pods stage from its proposer before it is committed)
//     200 {"digest": "sha256:…", "jwe": "<compact JWE of the bundle, to publicKey>"}
//     401 bad token, 403 not a live member, 400 bad key, 409 no state here,
//     503 cannot verify now (issuer keys or the handler unreachable), or busy serving another
//         peer for longer than TRANSFER_WAIT_MS
//
// Who gets the state: a live member of this pod's StatefulSet, as the handler finds it in
// the cluster at the time of the request (POST /v1/peer-access, src/handler/peer-access.ts).
// The token alone proves only who the caller was when it was issued. So: the token first
// (before the body is read), then this pod's cheap local checks, then the handler; only a
// "yes" from the handler opens the body. Every refusal is {"error": …} and a log line with
// the caller's namespace, name and uid; nothing here throws past the error handler.
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { closeAfterAnswer, readRawBody } from "../http/body.ts";
import { answerUnmatched, bodyReadProblem, sendError } from "../http/errors.ts";
import { sendJson } from "../http/json.ts";
import { BusyError, limiter, type Limiter } from "../http/limiter.ts";
import { IdentityError, type PodIdentity, type PodTokenVerifier } from "../identity/index.ts";
import { PEER_TOKEN_AUDIENCE } from "../names.ts";
import { encodeBundle, digestOf, isDigest, type Bundle } from "../state/bundle.ts";
import { authorizePeer } from "./peer-authz.ts";
import { recipientKey, sealBundle, TransferError } from "./transfer.ts";

/**
 * Transfers served at once, and how long another may wait for its turn. One transfer of a
 * large state holds several times its size in memory; the wait leaves the caller (15 s
 * deadline, peer-client.ts) time for the transfer itself.
 */
export const MAX_TRANSFERS = 1;
export const TRANSFER_WAIT_MS = 5_000;

/** A P-256 JWK is about 150 bytes. */
const BODY_LIMIT = 4 * 1024;

/** The handler's verdict on a caller (handler-client.ts, peerAccess). */
export type MemberCheck =
  | { kind: "allowed" }
  | { kind: "denied"; reason: string; message: string }
  | { kind: "unknown"; reason: string };

export interface PeerApiOptions {
  self: PodIdentity;
  /** Verifies callers' tokens: peerTokenVerifier (peer-token.ts), or a stand-in for it. */
  verifier: PodTokenVerifier;
  /** Asks the handler whether the caller is a live member of this pod's StatefulSet. */
  checkMember: (caller: PodIdentity) => Promise<MemberCheck>;
  /**
   * This pod's state now, or with `digest` the state of that digest (live or staged);
   * undefined (or an empty bundle) when it holds none.
   */
  readState: (digest?: string) => Promise<Bundle | undefined>;
  logger: Logger;
  /** Transfers at once (default MAX_TRANSFERS, waiting TRANSFER_WAIT_MS at most). */
  transfers?: Limiter;
}

/** The one route of the peer API. */
const ROUTES = { "/v1/state": ["POST"] } as const;

/**
 * The peer API as a bare request listener: no express, which would cost every sidecar a few
 * MiB and the first transfer of each pod a few hundred milliseconds to load (docs/performance.md).
 */
export function peerApi(opts: PeerApiOptions): RequestListener {
  const { logger } = opts;
  const transfers = opts.transfers ?? limiter(MAX_TRANSFERS, TRANSFER_WAIT_MS);

  return (req, res) => {
    let path: string;
    try {
      path = new URL(req.url ?? "/", "https://peer").pathname;
    } catch {
      closeAfterAnswer(res);
      sendError(res, 400, "the request target is not a path");
      return;
    }
    serve(req, res, path).catch((err: unknown) => {
      const problem = bodyReadProblem(err);
      if (problem) {
        logger.warn({ method: req.method, path, status: problem.status }, problem.message);
        closeAfterAnswer(res);
        if (!res.headersSent) sendError(res, problem.status, problem.message);
        return;
      }
      logger.error({ err: String(err), method: req.method, path }, "request failed");
      if (!res.headersSent) sendError(res, 500, "internal error; see the server log");
    });
  };

  async function serve(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (path !== "/v1/state" || req.method !== "POST") {
      answerUnmatched(ROUTES, req.method ?? "", path, res);
      return;
    }
    const caller = await authenticate(req, res, path);
    if (!caller) return;
    const who = callerFields(caller);
    const raw = await readRawBody(req, BODY_LIMIT);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch {
      body = undefined;
    }
    if (typeof body !== "object" || body === null || Array.isArray(body) || !("publicKey" in body)) {
      refuse(req, res, path, 400, 'expected a JSON body {"publicKey": <EC P-256 JWK>}', who);
      return;
    }
    const unknown = Object.keys(body).filter((k) => k !== "publicKey" && k !== "digest");
    if (unknown.length > 0) {
      refuse(req, res, path, 400, `unknown field(s): ${unknown.join(", ").slice(0, 200)}`, who);
      return;
    }
    const wanted = (body as { digest?: unknown }).digest;
    if (wanted !== undefined && !isDigest(wanted)) {
      refuse(req, res, path, 400, "digest must be sha256:<64 hex>", who);
      return;
    }
    let recipient;
    try {
      recipient = await recipientKey((body as { publicKey: unknown }).publicKey);
    } catch (err) {
      if (!(err instanceof TransferError)) throw err;
      refuse(req, res, path, 400, err.message, who);
      return;
    }
    // One transfer at a time (see src/http/limiter.ts); a caller that waits too long gets 503
    // and tries again or asks another peer, as for any refusal of a peer.
    try {
      await transfers.run(async () => {
        const bundle = await opts.readState(wanted);
        if (!bundle || bundle.files.length === 0) {
          refuse(
            req,
            res,
            path,
            409,
            `this pod holds ${wanted === undefined ? "no state (yet)" : `no state ${wanted}`}`,
            who,
          );
          return;
        }
        const encoding = encodeBundle(bundle);
        const digest = digestOf(encoding);
        if (wanted !== undefined && digest !== wanted) {
          refuse(req, res, path, 409, `this pod holds no state ${wanted}`, who);
          return;
        }
        const jwe = await sealBundle(encoding, recipient);
        logger.info({ ...who, digest }, "served the state to a peer");
        sendJson(res, 200, { digest, jwe });
        // The answer is in memory until the caller has read it: the turn ends then (or after
        // a bound, so that a slow reader cannot hold every other peer off).
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, TRANSFER_WAIT_MS);
          const done = () => {
            clearTimeout(timer);
            resolve();
          };
          res.once("finish", done);
          res.once("close", done);
        });
      });
    } catch (err) {
      if (!(err instanceof BusyError)) throw err;
      refuse(req, res, path, 503, "this pod is serving its state to other peers; try again later", who);
    }
  }

  /** The caller, checked: its token, this pod's local rules, then the handler; else answered. */
  async function authenticate(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
  ): Promise<PodIdentity | undefined> {
    const header = req.headers.authorization ?? "";
    const match = /^Bearer ([^\s]+)$/i.exec(header);
    if (!match) {
      res.setHeader("www-authenticate", "Bearer");
      refuse(
        req,
        res,
        path,
        401,
        `expected Authorization: Bearer <pod-bound service-account token, audience ${PEER_TOKEN_AUDIENCE}>`,
      );
      return undefined;
    }
    let caller: PodIdentity;
    try {
      caller = await opts.verifier.verify(match[1]!);
    } catch (err) {
      if (err instanceof IdentityError) {
        refuse(req, res, path, 401, `token refused: ${err.message}`, { reason: err.reason });
      } else {
        logger.error({ err: String(err) }, "cannot verify peer tokens: the issuer's keys are unavailable");
        closeAfterAnswer(res);
        sendError(res, 503, "cannot verify tokens right now; try again later");
      }
      return undefined;
    }
    const who = callerFields(caller);
    const decision = authorizePeer(opts.self, caller);
    if (!decision.ok) {
      refuse(req, res, path, 403, decision.reason, who);
      return undefined;
    }
    let member: MemberCheck;
    try {
      member = await opts.checkMember(caller);
    } catch (err) {
      member = { kind: "unknown", reason: String(err) };
    }
    if (member.kind === "unknown") {
      // Fail closed: without the handler's yes, nothing is served. The caller tries another
      // peer, or this one again later.
      refuse(
        req,
        res,
        path,
        503,
        "cannot check with the handler whether the caller is a member; try again later",
        { ...who, handler: member.reason.slice(0, 300) },
      );
      return undefined;
    }
    if (member.kind === "denied") {
      refuse(req, res, path, 403, `not a live member of this StatefulSet: ${member.message}`, {
        ...who,
        reason: member.reason,
      });
      return undefined;
    }
    return caller;
  }

  function refuse(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    status: number,
    message: string,
    fields: object = {},
  ): void {
    logger.warn(
      { ...fields, status, path, remote: req.socket.remoteAddress },
      `refused a peer request: ${message}`,
    );
    // A refused caller's body is never read: the connection ends with the answer.
    if (!req.complete) closeAfterAnswer(res);
    sendError(res, status, message);
  }
}

/** The caller as every log line about a transfer names it. */
function callerFields(caller: PodIdentity) {
  return { callerNamespace: caller.namespace, caller: caller.podName, callerUid: caller.podUid };
}
