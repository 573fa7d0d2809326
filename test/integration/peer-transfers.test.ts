// The peer API under many simultaneous transfers: twenty pods fetch a 2 MiB state from one
// peer at once, over real TLS with the pinned certificate and the real JWE transfer. The peer
// serves one transfer at a time (MAX_TRANSFERS), so its memory holds one transfer's worth
// however many arrive; a caller that waits longer than the limiter allows gets 503 and
// retries, as the recovery loop does. What must hold: every caller gets the whole state, no
// two transfers are ever served at once, and a caller past the wait bound gets a clear 503.
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:https";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { Peer } from "../../src/handler/api.ts";
import { limiter } from "../../src/http/limiter.ts";
import { close, listen } from "../../src/http/listen.ts";
import type { PodIdentity } from "../../src/identity/index.ts";
import { peerApi, type PeerApiOptions } from "../../src/recovery/peer-api.ts";
import { createPeerCertificate } from "../../src/recovery/peer-cert.ts";
import { fetchFromPeer, PeerError } from "../../src/recovery/peer-client.ts";
import { bundleDigest, createBundle, type Bundle } from "../../src/state/bundle.ts";

const logger = pino({ level: process.env["LOG_LEVEL"] ?? "silent" });
const self: PodIdentity = {
  namespace: "default",
  serviceAccount: "coordinator",
  podName: "coordinator-0",
  podUid: "uid-0",
};
const servers: Server[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map(close));
});

/** A peer serving `bundle`; it counts the transfers that read the state at once. */
async function startPeer(bundle: Bundle, over: Partial<PeerApiOptions> = {}) {
  const stats = { reading: 0, peakReading: 0, reads: 0 };
  const cert = await createPeerCertificate(self.podName);
  const app = peerApi({
    self,
    // Tokens are "pod-<n>"; the verifier's own rules have their tests.
    verifier: {
      verify: async (token) => ({
        ...self,
        podName: `coordinator-${token.slice(4)}`,
        podUid: `uid-${token.slice(4)}`,
      }),
    },
    checkMember: async () => ({ kind: "allowed" }),
    readState: async () => {
      stats.reads++;
      stats.peakReading = Math.max(stats.peakReading, ++stats.reading);
      await new Promise((r) => setTimeout(r, 5));
      stats.reading--;
      return bundle;
    },
    logger,
    ...over,
  });
  const server = createServer({ cert: cert.certPem, key: cert.keyPem, minVersion: "TLSv1.3" }, app);
  servers.push(server);
  const port = await listen(server, 0, "127.0.0.1");
  const peer: Peer = {
    pod: self.podName,
    uid: self.podUid,
    ip: "127.0.0.1",
    port,
    digest: bundleDigest(bundle),
    certSha256: cert.sha256,
  };
  return { peer, stats };
}

const bundleOf = (bytes: number) =>
  createBundle([
    { path: "seed", content: randomBytes(bytes / 2) },
    { path: "manifest.json", content: randomBytes(bytes / 2) },
  ]);

describe("the peer API under simultaneous transfers", () => {
  it("serves twenty callers at once one transfer at a time, and each gets the whole state", async () => {
    const bundle = bundleOf(2 * 1024 * 1024);
    const { peer, stats } = await startPeer(bundle);
    let busy = 0;
    const fetchWithRetry = async (n: number): Promise<Bundle> => {
      for (;;) {
        try {
          return await fetchFromPeer(peer, `pod-${n}`);
        } catch (err) {
          if (!(err instanceof PeerError) || !err.message.includes("503")) throw err;
          busy++;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    };
    const started = performance.now();
    const got = await Promise.all(Array.from({ length: 20 }, (_, i) => fetchWithRetry(i + 1)));
    console.log(
      `20 transfers of 2 MiB in ${((performance.now() - started) / 1000).toFixed(1)} s, ` +
        `${busy} answers 503 (busy) on the way, at most ${stats.peakReading} served at once`,
    );
    for (const b of got) expect(bundleDigest(b)).toBe(peer.digest);
    expect(stats.peakReading).toBe(1);
  }, 60_000);

  it("answers 503 to a caller that waited longer than the limiter allows, and serves it later", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const bundle = bundleOf(1024);
    let first = true;
    const { peer } = await startPeer(bundle, {
      transfers: limiter(1, 50),
      readState: async () => {
        if (first) {
          first = false;
          await gate;
        }
        return bundle;
      },
    });
    const held = fetchFromPeer(peer, "pod-1");
    await new Promise((r) => setTimeout(r, 20));
    await expect(fetchFromPeer(peer, "pod-2")).rejects.toThrow(
      "peer answered 503: this pod is serving its state to other peers; try again later",
    );
    release();
    expect(bundleDigest(await held)).toBe(peer.digest);
    expect(bundleDigest(await fetchFromPeer(peer, "pod-2"))).toBe(peer.digest);
  });
});
