// A small stand-in for the event handler, for the in-process recovery test: the wire format
// of src/handler/api.ts over real TLS, callers identified with the real pod-token verifier.
// Instead of a pod watch it keeps what the sidecars confirmed, and the test says which
// pods count as Ready. It is no model of the handler's checks (those have their own tests).
import { createServer, type Server } from "node:https";
import express from "express";
import type {
  Peer,
  PeerAccessRequest,
  PeerAccessResponse,
  PeersResponse,
  RecoveredRequest,
} from "../../src/handler/api.ts";
import { parseRecoveredRequest } from "../../src/handler/request.ts";
import { close, listen } from "../../src/http/listen.ts";
import { IdentityError, type PodIdentity, type PodTokenVerifier } from "../../src/identity/index.ts";
import { statefulSetOf } from "../../src/recovery/peer-authz.ts";
import { FakeHead } from "./fake-head.ts";

export interface PodEntry {
  uid: string;
  peerPort: number;
}

export interface Confirmation extends RecoveredRequest {
  pod: string;
}

export class FakeHandler {
  /** false: answer 503 to GET /v1/peers, as an unsynced handler does. */
  synced = true;
  /** true: refuse failedPeers, as a handler older than the field does. */
  refusesFailedPeers = false;
  /** Peers listed before the confirmed ones (a misbehaving peer). */
  extraPeers: Peer[] = [];
  /** Pods that are not listed as peers even when confirmed (not Ready). */
  readonly notReady = new Set<string>();
  readonly pods = new Map<string, PodEntry>();
  readonly confirmations: Confirmation[] = [];
  peerQueries = 0;
  peerAccessQueries = 0;
  /** The head routes and rules (fake-head.ts); without it, a handler from before heads (404). */
  head: FakeHead | undefined;
  private headRoutes: express.Router | undefined;
  private caller: ((auth: string | undefined) => Promise<PodIdentity>) | undefined;
  private server: Server | undefined;
  private readonly tls: { certPem: string; keyPem: string };
  private readonly verifier: PodTokenVerifier;

  constructor(tls: { certPem: string; keyPem: string }, verifier: PodTokenVerifier) {
    this.tls = tls;
    this.verifier = verifier;
  }

  /** Answers the head routes from now on. */
  withHead(): FakeHead {
    this.head = new FakeHead((pod) => this.pods.get(pod)?.peerPort);
    const routes = express.Router();
    this.head.routes(routes, (auth) => this.caller!(auth));
    this.headRoutes = routes;
    return this.head;
  }

  /** The last confirmation of each pod. */
  confirmed(pod: string): Confirmation | undefined {
    return this.confirmations.findLast((c) => c.pod === pod);
  }

  async start(port = 0): Promise<number> {
    const app = express();
    const caller = async (auth: string | undefined) => {
      const token = /^Bearer (.+)$/.exec(auth ?? "")?.[1];
      if (!token) throw new IdentityError("Malformed", "no token");
      return this.verifier.verify(token);
    };
    app.get("/v1/peers", async (req, res) => {
      this.peerQueries++;
      try {
        const who = await caller(req.headers.authorization);
        if (!this.synced) {
          res.status(503).json({ error: "pod cache not synced yet" });
          return;
        }
        const statefulSet = statefulSetOf(who.podName) ?? "";
        const peers: Peer[] = [...this.extraPeers];
        for (const [pod, entry] of [...this.pods].sort(([a], [b]) => a.localeCompare(b))) {
          const record = this.confirmed(pod);
          if (pod === who.podName || !record || this.notReady.has(pod)) continue;
          // With a head, peers are the pods that hold it.
          if (this.head?.committed && record.digest !== this.head.committed.digest) continue;
          peers.push({
            pod,
            uid: entry.uid,
            ip: "127.0.0.1",
            port: entry.peerPort,
            digest: record.digest,
            certSha256: record.certSha256,
          });
        }
        // Without the head routes this stand-in keeps no history: the head is the state its pods confirmed.
        const head = {
          digest: this.head ? (this.head.committed?.digest ?? null) : (peers[0]?.digest ?? null),
        };
        const body: PeersResponse = { namespace: who.namespace, statefulSet, peers, head };
        res.json(body);
      } catch (err) {
        res.status(401).json({ error: String(err) });
      }
    });
    app.post("/v1/recovered", express.json(), async (req, res) => {
      try {
        const who = await caller(req.headers.authorization);
        if (this.refusesFailedPeers && "failedPeers" in req.body) {
          res.status(400).json({ error: "unknown field(s): failedPeers" });
          return;
        }
        // The handler's own parser: what a sidecar sends must pass the real one.
        const parsed = parseRecoveredRequest(JSON.stringify(req.body));
        if (!parsed.ok) {
          res.status(400).json({ error: parsed.message });
          return;
        }
        const request = parsed.request;
        if (this.head && !this.head.confirmable(request.digest)) {
          res.status(409).json({ error: `${request.digest} is not the head`, reason: "stale_state" });
          return;
        }
        this.head?.confirmed(who.podName, request.digest);
        const last = this.confirmed(who.podName);
        const changed = last?.digest !== request.digest || last?.source !== request.source;
        this.confirmations.push({ ...request, pod: who.podName });
        res.json({ changed, reason: request.source ? "RecoveredFromPeer" : "Initialized", message: "" });
      } catch (err) {
        res.status(401).json({ error: String(err) });
      }
    });
    // A member is a pod the test started (this.pods) with the uid its token names.
    app.post("/v1/peer-access", express.json(), async (req, res) => {
      try {
        await caller(req.headers.authorization);
        this.peerAccessQueries++;
        const { pod, uid } = req.body as PeerAccessRequest;
        const allowed = this.pods.get(pod)?.uid === uid;
        const body: PeerAccessResponse = allowed
          ? { allowed: true }
          : { allowed: false, reason: "pod_gone", message: `pod ${pod} with uid ${uid} does not exist` };
        res.json(body);
      } catch (err) {
        res.status(401).json({ error: String(err) });
      }
    });
    // The head's routes, once a test asked for them (withHead), before or after the start.
    this.caller = caller;
    app.use((req, res, next) => {
      if (this.headRoutes) this.headRoutes(req, res, next);
      else next();
    });
    this.server = createServer({ cert: this.tls.certPem, key: this.tls.keyPem }, app);
    return listen(this.server, port, "127.0.0.1");
  }

  async stop(): Promise<void> {
    if (this.server) await close(this.server);
    this.server = undefined;
  }
}
