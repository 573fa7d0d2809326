// The commit path of the updater: what the app's commit call answers for each thing the
// handler can say, on a real state directory (the swap, the staging area). The handler's
// answers are scripted: their own rules are tested with the handler.
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Head, HeadAnswer, HeadClient, ProposeAnswer } from "../../../src/recovery/head-client.ts";
import { createUpdater, type CommitResult } from "../../../src/recovery/updater.ts";
import { bundleDigest, createBundle } from "../../../src/state/bundle.ts";
import { stateDigest, writeBundle } from "../../../src/state/store.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cha-updater-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const bundle = (content: string) => createBundle([{ path: "state.json", content: Buffer.from(content) }]);
const OLD = bundle("old");
const NEW = bundle("new");
const OTHER = `sha256:${"c".repeat(64)}`;
const proposal = (digest: string) => ({
  digest,
  parent: bundleDigest(OLD),
  by: "coordinator-1",
  ip: "10.0.0.2",
  port: 7443,
  certSha256: "f".repeat(64),
});

function updater(propose: ProposeAnswer | ProposeAnswer[], heads: (Head | "unsupported")[]) {
  // Each poll (and each proposal) gets the next answer; the last one stays.
  let polls = 0;
  const proposals = [propose].flat();
  let proposed = 0;
  const head: HeadClient = {
    head: async (): Promise<HeadAnswer> => {
      const next = heads[Math.min(polls++, heads.length - 1)] ?? { committed: null, proposal: null };
      return next === "unsupported" ? { kind: "unsupported", reason: "404" } : { kind: "head", head: next };
    },
    propose: async () => proposals[Math.min(proposed++, proposals.length - 1)]!,
    hold: async () => ({ kind: "held", committed: false }),
  };
  return createUpdater(
    {
      self: "coordinator-1",
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
      waitSeconds: 1,
      pollMs: 10,
      idlePollMs: 80,
      retryMs: 10,
      unsupportedRetryMs: 10,
      commitTimeoutMs: 2000,
      proposeRetryMs: 200,
    },
  );
}

describe("the updater's commit", () => {
  const parent = bundleDigest(OLD);
  const digest = bundleDigest(NEW);
  type Expected = { status: CommitResult["status"]; digest?: string; head?: string; error?: RegExp };
  const cases: [string, ProposeAnswer | ProposeAnswer[], Head[], Expected, "new" | "old"][] = [
    [
      "committed at once (the proposer alone is a quorum)",
      { kind: "committed" },
      [],
      { status: 200, digest },
      "new",
    ],
    [
      "pending, then committed by a quorum",
      { kind: "pending" },
      [
        { committed: parent, proposal: proposal(digest) },
        { committed: digest, proposal: null },
      ],
      { status: 200, digest },
      "new",
    ],
    [
      "pending, then another update committed first",
      { kind: "pending" },
      [{ committed: OTHER, proposal: null }],
      { status: 409, head: OTHER, error: /another update was committed first/ },
      "old",
    ],
    [
      "pending, then abandoned (expired) before a quorum",
      { kind: "pending" },
      [
        { committed: parent, proposal: proposal(digest) },
        { committed: parent, proposal: null },
      ],
      { status: 503, error: /abandoned before a quorum/ },
      "old",
    ],
    [
      "pending until the deadline",
      { kind: "pending" },
      [{ committed: parent, proposal: proposal(digest) }],
      { status: 503, error: /no quorum held .* within 2 s/ },
      "old",
    ],
    [
      "refused: another pod is committing",
      {
        kind: "refused",
        reason: "update_in_progress",
        error: "pod coordinator-0 is committing",
        head: parent,
      },
      [],
      { status: 409, error: /coordinator-0 is committing/ },
      "old",
    ],
    [
      "the handler unreachable throughout the proposal's retries",
      { kind: "unknown", reason: "ECONNREFUSED" },
      [],
      { status: 503, error: /cannot reach the handler: ECONNREFUSED; nothing committed/ },
      "old",
    ],
    [
      "the handler unreachable, then back (its replicas restarted): the proposal is sent again",
      [
        { kind: "unknown", reason: "ECONNREFUSED" },
        { kind: "unknown", reason: "ECONNREFUSED" },
        { kind: "committed" },
      ],
      [],
      { status: 200, digest },
      "new",
    ],
  ];

  it.each(cases)("%s", async (_name, propose, heads, expected, live) => {
    await writeBundle(dir, OLD);
    const result = await updater(propose, heads).commit(parent, NEW);
    const { error, ...rest } = expected;
    expect(result).toMatchObject(rest);
    if (error) expect((result as { error: string }).error).toMatch(error);
    expect(await stateDigest(dir)).toBe(live === "new" ? digest : parent);
  });

  it("refuses a parent that is not the live state, without asking the handler", async () => {
    await writeBundle(dir, OLD);
    const result = await updater({ kind: "committed" }, []).commit(OTHER, NEW);
    expect(result).toMatchObject({ status: 409, error: expect.stringMatching(/is not the live state/) });
    expect(await stateDigest(dir)).toBe(parent);
    expect(await readdir(join(dir, ".coordinator-ha")).catch(() => [])).toEqual([]);
  });

  it("answers 503 when the handler keeps no head", async () => {
    await writeBundle(dir, OLD);
    const u = updater({ kind: "committed" }, ["unsupported"]);
    const abort = new AbortController();
    const running = u.run(abort.signal).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await u.commit(parent, NEW)).toMatchObject({
      status: 503,
      error: expect.stringMatching(/keeps no head/),
    });
    abort.abort();
    await running;
  });
});
