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
