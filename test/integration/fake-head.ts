// The head routes of the handler (docs/recovery.md, "Updating the state"), for the in-process
// update test: POST /v1/proposals, POST /v1/holds, GET /v1/head (long-poll), over the fake
// handler's real TLS and real token checks. It keeps the head in memory instead of in a
// StateHead object, with the protocol's rules for a proposal, a hold and the quorum, and
// one-at-a-time updates (JavaScript's single thread stands in for the compare-and-swap). It
// is a test double of our own component at integration level; the e2e tests run the real one.
import { EventEmitter } from "node:events";
import express, { type Router } from "express";
import type { PodIdentity } from "../../src/identity/index.ts";

export interface Commit {
  digest: string;
  parent: string | null;
  by: string;
}

export interface FakeProposal extends Commit {
  certSha256: string;
  holders: Set<string>;
  expiresAt: number;
}

export class FakeHead {
  committed: Commit | null = null;
  readonly history: string[] = [];
  proposal: FakeProposal | null = null;
  quorum = 2;
  ttlMs = 60_000;
  /** Every decision, for the test to read. */
  readonly log: string[] = [];
  private readonly changed = new EventEmitter();

  private readonly peerPortOf: (pod: string) => number | undefined;

  constructor(peerPortOf: (pod: string) => number | undefined) {
    this.peerPortOf = peerPortOf;
    this.changed.setMaxListeners(100);
  }

  /** The quorum changes (the StatefulSet scaled): a proposal that reaches it now is committed. */
  setQuorum(n: number): void {
    this.quorum = n;
    if (this.proposal) this.reached();
  }

  /** A proposal whose proposer is gone is abandoned (the handler's watch does this). */
  abandon(reason: string): void {
    if (!this.proposal) return;
    this.log.push(`abandon ${this.proposal.digest} ${reason}`);
    this.proposal = null;
    this.changed.emit("change");
  }

  /** Whether a confirmation of `digest` is accepted. */
  confirmable(digest: string): boolean {
    if (this.committed) return this.committed.digest === digest;
    return this.proposal === null;
  }

  /** The legacy first state: a confirmation with no head commits it (protocol: confirm). */
  confirmed(pod: string, digest: string): void {
    if (this.committed === null && this.proposal === null) {
      this.commit({ digest, parent: null, by: pod });
    }
  }

  routes(app: Router, caller: (auth: string | undefined) => Promise<PodIdentity>): void {
    const head = () => this.expire();
    app.post("/v1/proposals", express.json(), async (req, res) => {
      const who = await caller(req.headers.authorization).catch(() => undefined);
      if (!who) return void res.status(401).json({ error: "token refused" });
      const { digest, parent, certSha256 } = req.body as {
        digest: string;
        parent: string | null;
        certSha256: string;
      };
      head();
      const current = this.committed?.digest ?? null;
      if (digest === current) return void res.json({ committed: this.committed });
      const pending = this.proposal;
      if (pending && pending.by === who.podName && pending.digest === digest && pending.parent === parent) {
        return void res.status(202).json({ proposal: this.view() });
      }
      if (pending && pending.by !== who.podName) {
        this.log.push(`refuse ${digest} by ${who.podName}: update_in_progress`);
        return void res.status(409).json({
          error: `pod ${pending.by} is committing ${pending.digest}; wait for it, then update from the new head`,
          reason: "update_in_progress",
          head: current,
        });
      }
      if (parent !== current) {
        const reason = parent !== null && this.history.includes(parent) ? "stale_parent" : "conflict";
        this.log.push(`refuse ${digest} by ${who.podName}: ${reason}`);
        return void res.status(409).json({
          error: `parent ${parent} is not the head ${current}; fetch the head and update from it`,
          reason,
          head: current,
        });
      }
      this.proposal = {
        digest,
        parent,
        by: who.podName,
        certSha256,
        holders: new Set([who.podName]),
        expiresAt: Date.now() + this.ttlMs,
      };
      this.log.push(`propose ${digest} by ${who.podName}`);
      if (this.reached()) return void res.json({ committed: this.committed });
      this.changed.emit("change");
      res.status(202).json({ proposal: this.view() });
    });

    app.post("/v1/holds", express.json(), async (req, res) => {
      const who = await caller(req.headers.authorization).catch(() => undefined);
      if (!who) return void res.status(401).json({ error: "token refused" });
      const { digest } = req.body as { digest: string };
      head();
      if (this.committed?.digest === digest) return void res.json({ committed: true });
      if (this.proposal?.digest !== digest) {
        return void res
          .status(409)
          .json({ error: `no update of ${digest} is pending`, reason: "no_proposal" });
      }
      this.proposal.holders.add(who.podName);
      this.log.push(`hold ${digest} by ${who.podName}`);
      const committed = this.reached();
      if (!committed) this.changed.emit("change");
      res.json({ committed });
    });

    app.get("/v1/head", async (req, res) => {
      const who = await caller(req.headers.authorization).catch(() => undefined);
      if (!who) return void res.status(401).json({ error: "token refused" });
      const known = String(req.query["known"] ?? "");
      const proposal = String(req.query["proposal"] ?? "");
      const wait = Math.min(Number(req.query["waitSeconds"] ?? 0), 30) * 1000;
      const differs = () => {
        head();
        return (this.committed?.digest ?? "") !== known || (this.proposal?.digest ?? "") !== proposal;
      };
      if (!differs() && wait > 0) {
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            this.changed.off("change", done);
            resolve();
          };
          const timer = setTimeout(done, wait);
          this.changed.on("change", done);
          res.on("close", done);
        });
      }
      head();
      res.json({ committed: this.committed, proposal: this.view(), quorum: this.quorum });
    });
  }

  private view() {
    const p = this.proposal;
    if (!p) return null;
    return {
      digest: p.digest,
      parent: p.parent,
      by: p.by,
      ip: "127.0.0.1",
      port: this.peerPortOf(p.by) ?? 1,
      certSha256: p.certSha256,
      holders: [...p.holders],
    };
  }

  private expire(): void {
    if (this.proposal && Date.now() > this.proposal.expiresAt) this.abandon("expired");
  }

  private reached(): boolean {
    const p = this.proposal!;
    if (p.holders.size < this.quorum) return false;
    this.commit(p);
    return true;
  }

  private commit(c: Commit): void {
    this.committed = { digest: c.digest, parent: c.parent, by: c.by };
    this.history.push(c.digest);
    this.proposal = null;
    this.log.push(`commit ${c.digest} by ${c.by}`);
    this.changed.emit("change");
  }
}
