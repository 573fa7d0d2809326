import { createServer } from "node:http";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { close, listen } from "../../../src/http/listen.ts";
import { commitApi, parseCommitRequest } from "../../../src/recovery/commit-api.ts";
import { commitUpdate } from "../../../src/recovery/commit-client.ts";
import type { CommitResult } from "../../../src/recovery/updater.ts";
import { bundleDigest, createBundle, type Bundle } from "../../../src/state/bundle.ts";

const PARENT = `sha256:${"a".repeat(64)}`;
const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("parseCommitRequest", () => {
  it.each([
    ["no object", [], /expected a JSON body/],
    [
      "an unknown field",
      { parent: null, files: [{ path: "a", content: "" }], x: 1 },
      /unknown field\(s\): x/,
    ],
    ["a parent that is no digest", { parent: "abc", files: [{ path: "a", content: "" }] }, /parent must be/],
    ["no files", { parent: null, files: [] }, /empty bundle is no state/],
    ["a file without content", { parent: null, files: [{ path: "a" }] }, /files\[0\] must be/],
    [
      "content that is not base64",
      { parent: null, files: [{ path: "a", content: "%%%" }] },
      /canonical base64/,
    ],
    [
      "a path out of the directory",
      { parent: null, files: [{ path: "../etc", content: "" }] },
      /"\.\." segment/,
    ],
    [
      "a reserved path",
      { parent: null, files: [{ path: ".coordinator-ha-data/x", content: "" }] },
      /reserved prefix/,
    ],
    [
      "the same path twice",
      {
        parent: null,
        files: [
          { path: "a", content: "" },
          { path: "a", content: "" },
        ],
      },
      /twice/,
    ],
  ])("refuses %s", (_name, body, reason) => {
    expect(parseCommitRequest(body)).toMatch(reason);
  });

  it("accepts a first state and an update", () => {
    const first = parseCommitRequest({
      parent: null,
      files: [
        { path: "b", content: b64("2") },
        { path: "a", content: b64("1") },
      ],
    });
    expect(typeof first === "object" && first.bundle.files.map((f) => f.path)).toEqual(["a", "b"]);
    expect(parseCommitRequest({ parent: PARENT, files: [{ path: "a", content: "" }] })).toMatchObject({
      parent: PARENT,
    });
  });
});

describe("the commit API and its client (what an app uses)", () => {
  let server: ReturnType<typeof createServer> | undefined;
  afterEach(async () => {
    if (server) await close(server);
  });

  async function serve(result: (parent: string | null, bundle: Bundle) => CommitResult) {
    server = createServer(
      commitApi({ commit: async (p, b) => result(p, b), logger: pino({ level: "silent" }) }),
    );
    return new URL(`http://127.0.0.1:${await listen(server, 0, "127.0.0.1")}/v1/commit`);
  }
  const bundle = createBundle([{ path: "state.json", content: Buffer.from("{}") }]);

  it.each<[string, CommitResult, object]>([
    [
      "committed",
      { status: 200, digest: bundleDigest(bundle) },
      { kind: "committed", digest: bundleDigest(bundle) },
    ],
    ["a conflict", { status: 409, error: "the head is X", head: PARENT }, { kind: "conflict", head: PARENT }],
    ["no quorum", { status: 503, error: "no quorum" }, { kind: "unavailable", error: "no quorum" }],
  ])("carries %s to the app", async (_name, result, expected) => {
    const url = await serve(() => result);
    expect(await commitUpdate(url, PARENT, bundle)).toMatchObject(expected);
  });

  it("hands the parent and the bundle through unchanged", async () => {
    let seen: { parent: string | null; digest: string } | undefined;
    const url = await serve((parent, b) => {
      seen = { parent, digest: bundleDigest(b) };
      return { status: 200, digest: bundleDigest(b) };
    });
    await commitUpdate(url, PARENT, bundle);
    expect(seen).toEqual({ parent: PARENT, digest: bundleDigest(bundle) });
  });

  it("answers 400 with the reason to a malformed request, and 404 elsewhere", async () => {
    const url = await serve(() => ({ status: 503, error: "not reached" }));
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/parent must be/);
    expect((await fetch(new URL("/v1/other", url))).status).toBe(404);
  });

  it("reports an unreachable commit API as unavailable (nothing committed)", async () => {
    const url = await serve(() => ({ status: 503, error: "x" }));
    await close(server!);
    server = undefined;
    expect(await commitUpdate(url, PARENT, bundle)).toMatchObject({
      kind: "unavailable",
      error: expect.stringMatching(/cannot reach the sidecar's commit API/),
    });
  });
});
