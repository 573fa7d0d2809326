import { describe, expect, it } from "vitest";
import { formatMessage, parseRecord, recordOf, saysTheSame } from "../../../src/handler/condition.ts";
import { CERT, coordinatorPod, DIGEST, withoutCondition } from "./pods.ts";

const record = { digest: DIGEST, certSha256: CERT, restarts: { sidecar: 3, coordinator: 1 } };

describe("the condition message", () => {
  it("carries the record after the sentence, restarts sorted by container", () => {
    expect(formatMessage("Recovered the state from peer coordinator-0", record)).toBe(
      `Recovered the state from peer coordinator-0 | digest=${DIGEST} certSha256=${CERT} restarts=coordinator:1,sidecar:3`,
    );
  });

  it("round-trips", () => {
    expect(parseRecord(formatMessage("anything | even with the separator", record))).toEqual(record);
    const none = { ...record, restarts: {} };
    expect(parseRecord(formatMessage("no app containers", none))).toEqual(none);
  });

  it("is only the sentence when there is no record", () => {
    expect(formatMessage("Waiting", undefined)).toBe("Waiting");
    expect(parseRecord("Waiting")).toBeUndefined();
    expect(parseRecord(undefined)).toBeUndefined();
  });

  it("reads the record of a real pod", () => {
    expect(recordOf(coordinatorPod(0))).toEqual({
      digest: DIGEST,
      certSha256: CERT,
      restarts: { coordinator: 0 },
    });
    expect(recordOf(withoutCondition(coordinatorPod(0)))).toBeUndefined();
  });

  it.each([
    ["a short digest", `x | digest=sha256:abc certSha256=${CERT} restarts=a:1`],
    ["an upper-case digest", `x | digest=${DIGEST.toUpperCase()} certSha256=${CERT} restarts=a:1`],
    ["a digest without algorithm", `x | digest=${DIGEST.slice(7)} certSha256=${CERT} restarts=a:1`],
    ["a short cert hash", `x | digest=${DIGEST} certSha256=abc restarts=a:1`],
    ["no restarts field", `x | digest=${DIGEST} certSha256=${CERT}`],
    ["an extra field", `x | digest=${DIGEST} certSha256=${CERT} restarts=a:1 more=1`],
    ["a duplicated field", `x | digest=${DIGEST} digest=${DIGEST} certSha256=${CERT}`],
    ["a negative count", `x | digest=${DIGEST} certSha256=${CERT} restarts=a:-1`],
    ["a count that is not a number", `x | digest=${DIGEST} certSha256=${CERT} restarts=a:one`],
    ["a bad container name", `x | digest=${DIGEST} certSha256=${CERT} restarts=A_b:1`],
    ["a duplicated container", `x | digest=${DIGEST} certSha256=${CERT} restarts=a:1,a:2`],
    ["an entry with two colons", `x | digest=${DIGEST} certSha256=${CERT} restarts=a:1:2`],
    ["a field without =", `x | digest=${DIGEST} certSha256=${CERT} restarts`],
    ["two spaces between fields", `x | digest=${DIGEST}  certSha256=${CERT} restarts=a:1`],
  ])("does not parse a record with %s", (_why, message) => {
    expect(parseRecord(message)).toBeUndefined();
  });
});

describe("saysTheSame", () => {
  const desired = { status: "True" as const, reason: "Initialized", message: "m" };
  it("compares status, reason and message, not times", () => {
    expect(
      saysTheSame(
        { type: "t", status: "True", reason: "Initialized", message: "m", lastTransitionTime: new Date() },
        desired,
      ),
    ).toBe(true);
    expect(saysTheSame({ type: "t", status: "False", reason: "Initialized", message: "m" }, desired)).toBe(
      false,
    );
    expect(
      saysTheSame({ type: "t", status: "True", reason: "RecoveredFromPeer", message: "m" }, desired),
    ).toBe(false);
    expect(saysTheSame({ type: "t", status: "True", reason: "Initialized", message: "n" }, desired)).toBe(
      false,
    );
    expect(saysTheSame(undefined, desired)).toBe(false);
  });
});
