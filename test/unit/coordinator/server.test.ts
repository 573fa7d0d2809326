import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, readdir, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { startCoordinator, type RunningCoordinator } from "../../../src/coordinator/server.ts";
import { ownerKeyDigest, signUpdate } from "../../../src/coordinator/owner-key.ts";
import type { CommitAnswer } from "../../../src/recovery/commit-client.ts";
import { bundleDigest, type Bundle } from "../../../src/state/bundle.ts";
import { readBundle, writeBundle } from "../../../src/state/store.ts";

const logger = pino({ level: "silent" });
let root: string;
const running: RunningCoordinator[] = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "cha-coordinator-"));
  commits.length = 0;
  commitAnswer = async () => ({ kind: "unavailable", error: "no sidecar in this test" });
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.close()));
  await rm(root, { recursive: true, force: true });
});

/** What the sidecar answers to the commits of the coordinators these tests start. */
let commitAnswer: (parent: string, bundle: Bundle, dir: string) => Promise<CommitAnswer>;
const commits: { parent: string; digest: string }[] = [];

async function start(name: string): Promise<RunningCoordinator> {
  const dir = join(root, name);
  const c = await startCoordinator({
    stateDir: dir,
    apiPort: 0,
    probePort: 0,
    host: "127.0.0.1",
    logger,
    pollMs: 50,
    commit: (parent, bundle) => {
      commits.push({ parent, digest: bundleDigest(bundle) });
      return commitAnswer(parent, bundle, dir);
    },
  });
  running.push(c);
  return c;
}

const api = (c: RunningCoordinator, init?: RequestInit) =>
  fetch(`http://127.0.0.1:${c.apiPort}/v1/manifest`, init).then(async (r) => ({
    status: r.status,
    body: (await r.json()) as Record<string, unknown>,
  }));
const post = (c: RunningCoordinator, body: string) =>
  api(c, { method: "POST", headers: { "content-type": "application/json" }, body });
const probe = (c: RunningCoordinator, path: string) =>
  fetch(`http://127.0.0.1:${c.probePort}${path}`).then((r) => r.status);

describe("reference coordinator", () => {
  it("starts uninitialized: alive and started, not ready, GET says how to initialize", async () => {
    const c = await start("a");
    expect(await probe(c, "/probe/startup")).toBe(200);
    expect(await probe(c, "/probe/liveness")).toBe(200);
    expect(await probe(c, "/probe/readiness")).toBe(503);
    const res = await api(c);
    expect(res.status).toBe(503);
    expect(res.body["error"]).toMatch(/coordinator-ha set/);
  });

  it("is set once: 201 with the key, then ready, then 409", async () => {
    const c = await start("a");
    const set = await post(c, JSON.stringify({ manifest: { policies: ["x"] } }));
    expect(set.status).toBe(201);
    expect(set.body["manifest"]).toEqual({ policies: ["x"] });
    expect(set.body["digest"]).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(set.body["publicKey"]).toMatch(/BEGIN PUBLIC KEY/);
    expect(set.body).not.toHaveProperty("seed");
    expect(await probe(c, "/probe/readiness")).toBe(200);
    expect(await api(c)).toEqual({ status: 200, body: set.body });

    const again = await post(c, JSON.stringify({ manifest: { policies: ["y"] } }));
    expect(again.status).toBe(409);
    expect(again.body["digest"]).toBe(set.body["digest"]);
    expect((await api(c)).body["manifest"]).toEqual({ policies: ["x"] });
  });

  it("lets one of two concurrent sets win", async () => {
    const c = await start("a");
    const results = await Promise.all([1, 2, 3].map((n) => post(c, JSON.stringify({ manifest: { n } }))));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409]);
  });

  it.each([
    ["no manifest field", JSON.stringify({ policies: [] }), /"manifest"/],
    ["a manifest that is not an object", JSON.stringify({ manifest: [1] }), /JSON object/],
    ["broken JSON", "{", /cannot read the body/],
  ])("answers 400 to %s and stays uninitialized", async (_name, body, reason) => {
    const c = await start("a");
    const res = await post(c, body);
    expect(res.status).toBe(400);
    expect(res.body["error"]).toMatch(reason);
    expect(await probe(c, "/probe/readiness")).toBe(503);
    expect(await readdir(join(root, "a"))).toEqual([]);
  });

  it("answers 413 to an oversized manifest", async () => {
    const c = await start("a");
    const res = await post(c, JSON.stringify({ manifest: { pad: "x".repeat(2 * 1024 * 1024) } }));
    expect(res.status).toBe(413);
  });

  it("keeps its state across a restart, in one file in the state directory", async () => {
    const first = await start("a");
    const set = await post(first, JSON.stringify({ manifest: { a: 1 } }));
    await first.close();
    running.splice(running.indexOf(first), 1);
    expect(await readdir(join(root, "a"))).toEqual(["coordinator.json"]);
    const second = await start("a");
    expect(await api(second)).toEqual({ status: 200, body: set.body });
  });

  it("picks up state that appears in its directory later, with the same public key", async () => {
    const origin = await start("origin");
    const set = await post(origin, JSON.stringify({ manifest: { a: 1 } }));
    const late = await start("late");
    expect(await probe(late, "/probe/readiness")).toBe(503);
    // What the recovery sidecar does: write the peer's bundle into the directory.
    await writeBundle(join(root, "late"), await readBundle(join(root, "origin")));
    await vi.waitFor(async () => expect(await probe(late, "/probe/readiness")).toBe(200), { timeout: 5000 });
    expect(await api(late)).toEqual({ status: 200, body: set.body });
    // And it refuses a set now, instead of overwriting the recovered state.
    expect((await post(late, JSON.stringify({ manifest: { b: 2 } }))).status).toBe(409);
  });

  it("never overwrites files it cannot use, and says why it is not ready", async () => {
    const dir = join(root, "a");
    const c = await start("a");
    await writeFile(join(dir, "other.bin"), "someone else's state");
    await vi.waitFor(async () => expect(c.holder.status().kind).toBe("unusable"), { timeout: 5000 });
    const readiness = await fetch(`http://127.0.0.1:${c.probePort}/probe/readiness`);
    expect(readiness.status).toBe(503);
    expect(await readiness.text()).toMatch(/no coordinator\.json/);
    const res = await post(c, JSON.stringify({ manifest: {} }));
    expect(res.status).toBe(500);
    expect(await readdir(dir)).toEqual(["other.bin"]);
  });
});

describe("reference coordinator updates", () => {
  const owner = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
  const v1 = { policy: "v1", workloadOwnerKeyDigests: [ownerKeyDigest(owner)] };
  const v2 = { policy: "v2", workloadOwnerKeyDigests: [ownerKeyDigest(owner)] };
  /** What the sidecar does on a commit: swap the bundle in, then answer. */
  const swapIn = async (_parent: string, bundle: Bundle, dir: string): Promise<CommitAnswer> => {
    await unlink(join(dir, "coordinator.json"));
    await writeBundle(dir, bundle);
    return { kind: "committed", digest: bundleDigest(bundle) };
  };

  async function initialized() {
    const c = await start("a");
    const set = await post(c, JSON.stringify({ manifest: v1 }));
    expect(set.status).toBe(201);
    return { c, digest: set.body["digest"] as string, publicKey: set.body["publicKey"] as string };
  }

  it("commits an update through the sidecar: 200 with the same key, a longer history, the new digest", async () => {
    commitAnswer = swapIn;
    const { c, digest, publicKey } = await initialized();
    const res = await post(c, JSON.stringify({ manifest: v2, update: signUpdate(owner, digest, v2) }));
    expect(res.status).toBe(200);
    expect(res.body["manifest"]).toEqual(v2);
    expect(res.body["publicKey"]).toBe(publicKey);
    expect(res.body["history"]).toHaveLength(2);
    expect(res.body["digest"]).not.toBe(digest);
    expect(commits).toEqual([{ parent: digest, digest: res.body["digest"] }]);
    expect(await api(c)).toEqual({ status: 200, body: res.body });
    expect(res.body["digest"]).toBe(bundleDigest(await readBundle(join(root, "a"))));
  });

  it("answers 409 and keeps the committed state when the sidecar reports a conflict", async () => {
    const head = `sha256:${"c".repeat(64)}`;
    commitAnswer = async () => ({ kind: "conflict", error: `the head is ${head}`, head });
    const { c, digest } = await initialized();
    const res = await post(c, JSON.stringify({ manifest: v2, update: signUpdate(owner, digest, v2) }));
    expect(res.status).toBe(409);
    expect(res.body["error"]).toMatch(/keeps the committed state.*run `coordinator-ha set` again/);
    expect(res.body["digest"]).toBe(head);
    expect((await api(c)).body["digest"]).toBe(digest);
    expect((await api(c)).body["manifest"]).toEqual(v1);
  });

  it("answers 503 and changes nothing when the commit API is unreachable", async () => {
    const { c, digest } = await initialized();
    const res = await post(c, JSON.stringify({ manifest: v2, update: signUpdate(owner, digest, v2) }));
    expect(res.status).toBe(503);
    expect(res.body["error"]).toMatch(
      /not committed \(no sidecar in this test\); nothing changed, try again/,
    );
    expect((await api(c)).body["digest"]).toBe(digest);
  });

  it("refuses a stranger's key with 403 without asking the sidecar", async () => {
    const { c, digest } = await initialized();
    const stranger = generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey;
    const res = await post(c, JSON.stringify({ manifest: v2, update: signUpdate(stranger, digest, v2) }));
    expect(res.status).toBe(403);
    expect(res.body["error"]).toMatch(/is not listed in the current manifest's workloadOwnerKeyDigests/);
    expect(commits).toEqual([]);
  });

  it("reloads when a newer state replaces its own in the directory", async () => {
    const { c } = await initialized();
    const other = await start("b");
    const newer = await post(other, JSON.stringify({ manifest: v2 }));
    // What the sidecar's swap does for a stale pod.
    await unlink(join(root, "a", "coordinator.json"));
    await writeBundle(join(root, "a"), await readBundle(join(root, "b")));
    await vi.waitFor(async () => expect((await api(c)).body["digest"]).toBe(newer.body["digest"]), {
      timeout: 5000,
    });
    expect(await probe(c, "/probe/readiness")).toBe(200);
  });
});
