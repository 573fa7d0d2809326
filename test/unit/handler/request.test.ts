import { describe, expect, it } from "vitest";
import { parseRecoveredRequest } from "../../../src/handler/request.ts";
import { CERT, DIGEST } from "./pods.ts";

const valid = { digest: DIGEST, source: "coordinator-0", certSha256: CERT };

describe("parseRecoveredRequest", () => {
  it("accepts a confirmation from a peer and one from the first instance", () => {
    expect(parseRecoveredRequest(JSON.stringify(valid))).toEqual({ ok: true, request: valid });
    const first = { ...valid, source: null };
    expect(parseRecoveredRequest(JSON.stringify(first))).toEqual({ ok: true, request: first });
  });

  it.each([
    ["not JSON", "{digest:", "not valid JSON"],
    ["empty", "", "not valid JSON"],
    ["an array", "[]", "JSON object"],
    ["null", "null", "JSON object"],
    ["a string", '"sha256:00"', "JSON object"],
    ["an unknown field", JSON.stringify({ ...valid, pod: "coordinator-2" }), "unknown field(s): pod"],
    ["no digest", JSON.stringify({ ...valid, digest: undefined }), "digest"],
    [
      "a digest of another algorithm",
      JSON.stringify({ ...valid, digest: `sha512:${"a".repeat(64)}` }),
      "digest",
    ],
    ["an upper-case digest", JSON.stringify({ ...valid, digest: DIGEST.toUpperCase() }), "digest"],
    ["a digest with a newline", JSON.stringify({ ...valid, digest: `${DIGEST}\n` }), "digest"],
    ["no certSha256", JSON.stringify({ ...valid, certSha256: undefined }), "certSha256"],
    ["a numeric certSha256", JSON.stringify({ ...valid, certSha256: 12 }), "certSha256"],
    ["no source", JSON.stringify({ digest: DIGEST, certSha256: CERT }), "source"],
    ["an empty source", JSON.stringify({ ...valid, source: "" }), "source"],
    ["a source with a path", JSON.stringify({ ...valid, source: "../coordinator-0" }), "source"],
    ["a source in another namespace", JSON.stringify({ ...valid, source: "other/coordinator-0" }), "source"],
    ["a source that is too long", JSON.stringify({ ...valid, source: "a".repeat(64) }), "source"],
  ])("refuses %s", (_why, body, says) => {
    const parsed = parseRecoveredRequest(body);
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? "" : parsed.message).toContain(says);
  });
});

describe("parseRecoveredRequest: failedPeers", () => {
  const failed = (...peers: unknown[]) => JSON.stringify({ ...valid, failedPeers: peers });
  const peer = { pod: "coordinator-2", reason: "no answer within 15000 ms" };

  it("accepts up to 8 failed peers, each reason up to 200 characters, and an empty list", () => {
    const eight = Array.from({ length: 8 }, (_, i) => ({
      pod: `coordinator-${i + 2}`,
      reason: "x".repeat(200),
    }));
    expect(parseRecoveredRequest(failed(...eight))).toEqual({
      ok: true,
      request: { ...valid, failedPeers: eight },
    });
    expect(parseRecoveredRequest(failed(peer))).toEqual({
      ok: true,
      request: { ...valid, failedPeers: [peer] },
    });
    const none = { ...valid, source: null, failedPeers: [] };
    expect(parseRecoveredRequest(JSON.stringify(none))).toEqual({ ok: true, request: none });
  });

  it.each([
    [
      "not a list",
      JSON.stringify({ ...valid, failedPeers: peer }),
      "failedPeers must be a list of {pod, reason}",
    ],
    ["null", JSON.stringify({ ...valid, failedPeers: null }), "failedPeers must be a list of {pod, reason}"],
    ["nine peers", failed(...Array.from({ length: 9 }, () => peer)), "failedPeers lists at most 8 peers"],
    ["a string for a peer", failed("coordinator-2"), "failedPeers[0] must be an object {pod, reason}"],
    ["a list for a peer", failed(peer, []), "failedPeers[1] must be an object {pod, reason}"],
    [
      "a peer without reason",
      failed({ pod: "coordinator-2" }),
      "failedPeers[0] must have exactly the fields pod and reason",
    ],
    [
      "a peer with a third field",
      failed({ ...peer, token: "eyJ" }),
      "failedPeers[0] must have exactly the fields pod and reason",
    ],
    [
      "a pod that is no pod name",
      failed({ ...peer, pod: "../coordinator-2" }),
      "failedPeers[0].pod must be the name of a pod",
    ],
    ["a numeric pod", failed({ ...peer, pod: 2 }), "failedPeers[0].pod must be the name of a pod"],
    ["an empty reason", failed({ ...peer, reason: "" }), "failedPeers[0].reason must be 1 to 200 characters"],
    [
      "a reason of 201 characters",
      failed({ ...peer, reason: "x".repeat(201) }),
      "failedPeers[0].reason must be 1 to 200",
    ],
    [
      "a reason with a newline",
      failed({ ...peer, reason: "reset\nforged line" }),
      "without control characters",
    ],
    [
      "a reason with an escape sequence",
      failed({ ...peer, reason: "\u001b[31mred" }),
      "without control characters",
    ],
    [
      "a reason that is no string",
      failed({ ...peer, reason: { code: "ECONNRESET" } }),
      "failedPeers[0].reason",
    ],
    [
      "failed peers of a pod its user initialized",
      JSON.stringify({ ...valid, source: null, failedPeers: [peer] }),
      "failedPeers must be empty when source is null",
    ],
  ])("refuses %s", (_why, body, says) => {
    const parsed = parseRecoveredRequest(body);
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? "" : parsed.message).toContain(says);
  });
});
