// The sidecar's peer API (HTTPS on the cha-peer port, self-signed certificate that peers pin):
//
//   POST /v1/state  Authorization: Bearer <pod-bound token, audience coordinator-ha-peer>
//                   {"publicKey": <P-256 JWK>}
//     200 {"digest": "sha256:…", "jwe": "<compact JWE of the bundle, to publicKey>"}
//     401 bad token, 403 not a peer, 400 bad key, 409 no state here, 503 cannot verify now
//
// The token is checked before the body is even read, so a stranger costs one header parse
// and one signature check. Every refusal is {"error": …} and a log line; nothing here
// throws past the error handler.
import express, { type NextFunction, type Request, type Response } from "express";
import type { Logger } from "pino";
import { errorHandler, unmatchedRoute, sendError } from "../http/errors.ts";
import {
  createPodTokenVerifier,
  IdentityError,
  type JwksSource,
  type PodIdentity,
  type PodTokenVerifier,
} from "../identity/index.ts";
import { PEER_TOKEN_AUDIENCE } from "../names.ts";
import { encodeBundle, digestOf, type Bundle } from "../state/bundle.ts";
import { authorizePeer } from "./peer-authz.ts";
import { recipientKey, sealBundle, TransferError } from "./transfer.ts";

/** A P-256 JWK is about 150 bytes. */
const BODY_LIMIT = 4 * 1024;

export interface PeerApiOptions {
  self: PodIdentity;
  /** Verifies callers' tokens: peerTokenVerifier, or a stand-in for it. */
  verifier: PodTokenVerifier;
  /** This pod's state now; undefined (or an empty bundle) when it holds none. */
  readState: () => Promise<Bundle | undefined>;
  logger: Logger;
}

/**
 * The verifier of the peer API's callers: tokens for the peer audience only. A token for the
 * handler's audience is refused, so that the handler's token never needs to leave the pod.
 */
export function peerTokenVerifier(issuer: string, keys: JwksSource): PodTokenVerifier {
  return createPodTokenVerifier({ issuer, audience: PEER_TOKEN_AUDIENCE, keys });
}

export function peerApi(opts: PeerApiOptions): express.Express {
  const { logger } = opts;
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);

  const authenticate = async (req: Request, res: Response, next: NextFunction) => {
    const header = req.headers.authorization ?? "";
    const match = /^Bearer ([^\s]+)$/i.exec(header);
    if (!match) {
      res.setHeader("www-authenticate", "Bearer");
      refuse(
        req,
        res,
        401,
        `expected Authorization: Bearer <pod-bound service-account token, audience ${PEER_TOKEN_AUDIENCE}>`,
      );
      return;
    }
    let caller: PodIdentity;
    try {
      caller = await opts.verifier.verify(match[1]!);
    } catch (err) {
      if (err instanceof IdentityError) {
        refuse(req, res, 401, `token refused: ${err.message}`, { reason: err.reason });
      } else {
        logger.error({ err: String(err) }, "cannot verify peer tokens: the issuer's keys are unavailable");
        sendError(res, 503, "cannot verify tokens right now; try again later");
      }
      return;
    }
    const decision = authorizePeer(opts.self, caller);
    if (!decision.ok) {
      refuse(req, res, 403, decision.reason, { caller: caller.podName, callerNamespace: caller.namespace });
      return;
    }
    res.locals["caller"] = caller;
    next();
  };

  app.post(
    "/v1/state",
    authenticate,
    express.json({ limit: BODY_LIMIT }),
    async (req: Request, res: Response) => {
      const caller = res.locals["caller"] as PodIdentity;
      const body: unknown = req.body;
      if (typeof body !== "object" || body === null || Array.isArray(body) || !("publicKey" in body)) {
        refuse(req, res, 400, 'expected a JSON body {"publicKey": <EC P-256 JWK>}', {
          caller: caller.podName,
        });
        return;
      }
      const unknown = Object.keys(body).filter((k) => k !== "publicKey");
      if (unknown.length > 0) {
        refuse(req, res, 400, `unknown field(s): ${unknown.join(", ")}`, { caller: caller.podName });
        return;
      }
      let recipient;
      try {
        recipient = await recipientKey((body as { publicKey: unknown }).publicKey);
      } catch (err) {
        if (!(err instanceof TransferError)) throw err;
        refuse(req, res, 400, err.message, { caller: caller.podName });
        return;
      }
      const bundle = await opts.readState();
      if (!bundle || bundle.files.length === 0) {
        refuse(req, res, 409, "this pod holds no state (yet)", { caller: caller.podName });
        return;
      }
      const encoding = encodeBundle(bundle);
      const digest = digestOf(encoding);
      const jwe = await sealBundle(encoding, recipient);
      logger.info({ caller: caller.podName, digest }, "served the state to a peer");
      res.json({ digest, jwe });
    },
  );

  app.use(unmatchedRoute({ "/v1/state": ["POST"] }));
  app.use(errorHandler(logger));

  function refuse(req: Request, res: Response, status: number, message: string, fields: object = {}): void {
    logger.warn(
      { ...fields, status, path: req.path, remote: req.socket.remoteAddress },
      `refused a peer request: ${message}`,
    );
    sendError(res, status, message);
  }
  return app;
}
