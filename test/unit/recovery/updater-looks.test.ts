// When the updater looks at the state directory: its own looks slow down to idlePollMs while
// nothing changes, so a write of the app is found by the confirmer's look, which tells the
// updater the digest it saw (`saw`); a new digest makes the updater look at once.
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { HeadClient } from "../../../src/recovery/head-client.ts";
import { createUpdater } from "../../../src/recovery/updater.ts";
import { bundleDigest, createBundle } from "../../../src/state/bundle.ts";
import { stateDigest, writeBundle } from "../../../src/state/store.ts";

let dir: string;
const abort = new AbortController();
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cha-updater-looks-"));
});
afterEach(async () => {
  abort.abort();
  await rm(dir, { recursive: true, force: true });
});

const bundle = (content: string) => createBundle([{ path: "state.json", content: Buffer.from(content) }]);

/** An updater of coordinator-0 on `dir` whose own looks never come during a test (60 s apart). */
function slowUpdater(head: HeadClient) {
  return createUpdater(
    {
      self: "coordinator-0",
      dir,
      certSha256: "f".repeat(64),
      head,
      peers: async () => ({ kind: "peers", peers: [] }),
      fetch: async () => {
        throw new Error("no peers in this test");
      },
      logger: pino({ level: "silent" }),
    },
    {
      waitSeconds: 25,
      pollMs: 60_000,
      idlePollMs: 60_000,
      retryMs: 10,
      unsupportedRetryMs: 10,
      commitTimeoutMs: 2000,
      proposeRetryMs: 200,
    },
  );
}

describe("the updater's looks", () => {
  it("finds a write of the app when told of a new digest, not before its own (slow) look", async () => {
    const old = bundle("old");
    await writeBundle(dir, old);
    const proposed: { digest: string; parent: string | null }[] = [];
    let asked = 0;
    const head: HeadClient = {
      // The first ask answers the head at once; the long-polls after it never return.
      head: async () =>
        asked++ === 0
          ? { kind: "head", head: { committed: bundleDigest(old), proposal: null } }
          : new Promise(() => undefined),
      propose: async (digest, parent) => {
        proposed.push({ digest, parent });
        return { kind: "pending" };
      },
      hold: async () => ({ kind: "held", committed: false }),
    };
    const updater = slowUpdater(head);
    void updater.run(abort.signal);
    await vi.waitFor(() => expect(asked).toBe(2));
    updater.saw(bundleDigest(old));

    // The app writes a new state without asking (temp file and rename).
    await writeFile(join(dir, "state.json.tmp"), "new");
    await rename(join(dir, "state.json.tmp"), join(dir, "state.json"));
    const live = (await stateDigest(dir))!;
    await sleep(300);
    expect(proposed).toEqual([]);

    updater.saw(live);
    await vi.waitFor(() => expect(proposed).toEqual([{ digest: live, parent: bundleDigest(old) }]));
  });

  it("asks a busy handler for the head again only after its pollAfterMs, not at once", async () => {
    const old = bundle("old");
    await writeBundle(dir, old);
    let asked = 0;
    const head: HeadClient = {
      // A handler that holds no long-poll: it answers at once, and says when to ask again.
      head: async () => {
        asked++;
        return { kind: "head", head: { committed: bundleDigest(old), proposal: null }, pollAfterMs: 60_000 };
      },
      propose: async () => ({ kind: "pending" }),
      hold: async () => ({ kind: "held", committed: false }),
    };
    const updater = slowUpdater(head);
    // Its own controller: the file's is aborted after the first test.
    const running = new AbortController();
    // run() ends with an AbortError from its wait once aborted, as the sidecar expects.
    const done = updater.run(running.signal).catch(() => undefined);
    try {
      await vi.waitFor(() => expect(asked).toBe(1));
      await sleep(300);
      expect(asked).toBe(1);
    } finally {
      running.abort();
      await done;
    }
  });
});
