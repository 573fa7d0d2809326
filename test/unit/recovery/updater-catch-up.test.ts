// The updater's catch-up when the peer that serves the head fails in the middle of the
// transfer: on a real state directory, the head is scripted and the transfers are stand-ins
// (the in-process transfer itself breaking is test/integration/transfer-fault.test.ts). The
// old state stays whole and live until a whole new bundle is in hand; a failing peer makes the
// updater try the next one that holds the head, and with none left it tries again later.
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Peer } from "../../../src/handler/api.ts";
import type { HeadClient } from "../../../src/recovery/head-client.ts";
import { sourceOf } from "../../../src/recovery/source-record.ts";
import { createUpdater } from "../../../src/recovery/updater.ts";
import { bundleDigest, createBundle, type Bundle } from "../../../src/state/bundle.ts";
import { RESERVED_PREFIX } from "../../../src/state/paths.ts";
import { stateDigest, writeBundle } from "../../../src/state/store.ts";

let dir: string;
let abort: AbortController;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cha-catch-up-"));
  abort = new AbortController();
});
afterEach(async () => {
  abort.abort();
  await rm(dir, { recursive: true, force: true });
});

const OLD = createBundle([
  { path: "state.json", content: Buffer.from("old") },
  { path: "keys/seed", content: Buffer.from("old seed") },
]);
const NEW = createBundle([
  { path: "state.json", content: Buffer.from("new") },
  { path: "keys/seed", content: Buffer.from("new seed") },
]);
const peer = (pod: string, digest = bundleDigest(NEW)): Peer => ({
  pod,
  uid: `uid-${pod}`,
  ip: "10.0.0.9",
  port: 7443,
  digest,
  certSha256: "f".repeat(64),
});

async function tree(): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.map((e) => relative(dir, join(e.parentPath, e.name))).sort();
}

/**
 * An updater of a pod that holds OLD, told that NEW is committed, with `fetch` as its transfers;
 * returns the directory's tree before it started.
 */
async function startUpdater(fetch: (peer: Peer) => Promise<Bundle>, peers: Peer[]): Promise<string[]> {
  await writeBundle(dir, OLD);
  const before = await tree();
  const head: HeadClient = {
    head: async () => ({ kind: "head", head: { committed: bundleDigest(NEW), proposal: null } }),
    propose: async () => ({ kind: "pending" }),
    hold: async () => ({ kind: "held", committed: false }),
  };
  const updater = createUpdater(
    {
      self: "coordinator-2",
      dir,
      certSha256: "e".repeat(64),
      head,
      peers: async () => ({ kind: "peers", peers }),
      fetch: (p) => fetch(p),
      logger: pino({ level: "silent" }),
    },
    {
      waitSeconds: 1,
      pollMs: 10,
      idlePollMs: 80,
      retryMs: 10,
      unsupportedRetryMs: 10,
      commitTimeoutMs: 1000,
      proposeRetryMs: 200,
    },
  );
  void updater.run(abort.signal).catch(() => undefined);
  return before;
}

describe("catching up when the serving peer fails mid-transfer", () => {
  it("keeps the old state whole, falls back to the next peer that holds the head, and swaps the new one in whole", async () => {
    const seen: { pod: string; digest: string | undefined; tree: string[] }[] = [];
    const before = await startUpdater(
      async (p) => {
        seen.push({ pod: p.pod, digest: await stateDigest(dir), tree: await tree() });
        if (p.pod === "coordinator-0") throw new Error("socket hang up (ECONNRESET)");
        return NEW;
      },
      [peer("coordinator-0"), peer("coordinator-1"), peer("coordinator-3", bundleDigest(OLD))],
    );
    await vi.waitFor(async () => expect(await stateDigest(dir)).toBe(bundleDigest(NEW)), { timeout: 5000 });
    // Tried in order, only peers that hold the head, the failing one first.
    expect(seen.slice(0, 2).map((s) => s.pod)).toEqual(["coordinator-0", "coordinator-1"]);
    // Whenever a transfer was under way, the directory held the old state as it was.
    for (const s of seen) {
      expect(s.digest).toBe(bundleDigest(OLD));
      expect(s.tree).toEqual(before);
    }
    const after = await tree();
    expect(after.filter((p) => p.includes(`${RESERVED_PREFIX}-tmp-`))).toEqual([]);
    // One version left: nothing of an earlier attempt stays behind.
    expect(after.filter((p) => /^\.coordinator-ha\/versions\/[^/]+$/.test(p))).toHaveLength(1);
    // The confirmer reports where the head came from, and the peer that failed first.
    expect(await sourceOf(dir, bundleDigest(NEW))).toEqual({
      source: "coordinator-1",
      failedPeers: [{ pod: "coordinator-0", reason: "socket hang up (ECONNRESET)" }],
    });
  });

  it("with every peer failing, the old state stays live and it tries again", async () => {
    let attempts = 0;
    await startUpdater(async () => {
      attempts++;
      throw new Error("no answer within 15000 ms");
    }, [peer("coordinator-0"), peer("coordinator-1")]);
    await vi.waitFor(() => expect(attempts).toBeGreaterThanOrEqual(6), { timeout: 5000 });
    expect(await stateDigest(dir)).toBe(bundleDigest(OLD));
    expect((await tree()).filter((p) => p.includes(`${RESERVED_PREFIX}-tmp-`))).toEqual([]);
  });
});
