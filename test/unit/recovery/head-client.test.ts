import { describe, expect, it } from "vitest";
import { headClient, parseHead } from "../../../src/recovery/head-client.ts";

const A = `sha256:${"a".repeat(64)}`;
const B = `sha256:${"b".repeat(64)}`;
const proposal = {
  digest: B,
  parent: A,
  by: "coordinator-0",
  ip: "10.0.0.2",
  port: 7443,
  certSha256: "f".repeat(64),
};

describe("parseHead (GET /v1/head)", () => {
  it.each([
    ["no head yet", { committed: null, proposal: null }, { committed: null, proposal: null }],
    [
      "a committed object",
      { committed: { digest: A, parent: null, by: "x" }, proposal: null },
      { committed: A },
    ],
    [
      "a proposal",
      { committed: { digest: A }, proposal: { ...proposal, holders: ["coordinator-0"] } },
      { proposal },
    ],
  ])("reads %s", (_name, body, expected) => {
    expect(parseHead(body)).toMatchObject(expected);
  });

  it.each([
    ["no object", "head"],
    ["a committed digest that is none", { committed: { digest: "x" }, proposal: null }],
    ["a proposal without an address", { committed: null, proposal: { ...proposal, ip: "pod-0" } }],
    ["a proposal with a bad port", { committed: null, proposal: { ...proposal, port: 70000 } }],
    ["a proposal without a certificate pin", { committed: null, proposal: { ...proposal, certSha256: "x" } }],
    ["a proposal with a bad parent", { committed: null, proposal: { ...proposal, parent: "x" } }],
  ])("refuses %s", (_name, body) => {
    expect(parseHead(body)).toBeUndefined();
  });
});

describe("headClient.head", () => {
  const answering = (body: unknown) => headClient(async () => ({ status: 200, body }));
  it.each([
    ["no pollAfterSeconds", {}, undefined],
    ["pollAfterSeconds 10", { pollAfterSeconds: 10 }, 10_000],
    ["a pollAfterSeconds past the cap of 60", { pollAfterSeconds: 3600 }, 60_000],
    ["a pollAfterSeconds that is no whole positive number", { pollAfterSeconds: -1 }, undefined],
    ["a pollAfterSeconds of another type", { pollAfterSeconds: "10" }, undefined],
  ])("reads %s", async (_name, extra, pollAfterMs) => {
    const answer = await answering({ committed: { digest: A }, proposal: null, ...extra }).head(
      undefined,
      25,
    );
    expect(answer).toEqual({
      kind: "head",
      head: { committed: A, proposal: null },
      ...(pollAfterMs !== undefined && { pollAfterMs }),
    });
  });
});
