// Fuzz of the request parsers that face other pods: the handler's bodies (POST /v1/recovered,
// /v1/peer-access, /v1/proposals, /v1/holds) and query (GET /v1/head), the sidecar's commit
// API body and the peer API's public key, and the two readers of head records (the handler's
// StateHead spec, the sidecar's GET /v1/head answer). Whatever arrives: no exception (but the
// typed refusal where one is documented), an accepted request satisfies every rule, a refusal
// is a message no longer than what it refuses (plus a sentence), and accepting is stable
// (what was accepted, sent again, is accepted as the same).
import { Buffer } from "node:buffer";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CERT_SHA256_PATTERN, DIGEST_PATTERN } from "../../../src/handler/condition.ts";
import { headSpecOf } from "../../../src/handler/head/state-head.ts";
import {
  parseHeadQuery,
  parseHoldRequest,
  parsePeerAccessRequest,
  parseProposalRequest,
  parseRecoveredRequest,
} from "../../../src/handler/request.ts";
import { parseCommitRequest } from "../../../src/recovery/commit-api.ts";
import { parseHead } from "../../../src/recovery/head-client.ts";
import { recipientKey, TransferError } from "../../../src/recovery/transfer.ts";
import { decodeBundle, encodeBundle } from "../../../src/state/bundle.ts";
import { invalidPathReason } from "../../../src/state/paths.ts";
import { fuzz, hostileString, fuzzTimeout } from "./fuzz.ts";

const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const digest = fc.oneof(
  hex64.map((h) => `sha256:${h}`),
  fc.constantFrom("sha256:", "sha256:XYZ", `sha256:${"A".repeat(64)}`, `sha512:${"a".repeat(64)}`),
  hostileString,
);
const podName = fc.oneof(fc.stringMatching(/^[a-z][a-z0-9-]{0,20}-[0-9]$/), hostileString);
/** A value of a field: mostly of the right kind, sometimes anything. */
const fieldValue = <T>(arb: fc.Arbitrary<T>) => fc.oneof({ arbitrary: arb, weight: 4 }, fc.jsonValue());

/** Bodies: valid-looking objects with extra or missing fields, any JSON, and non-JSON text. */
function bodies(fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<string> {
  const object = fc
    .tuple(
      fc.record(Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, fieldValue(v)])), {
        requiredKeys: [],
      }),
      fc.dictionary(
        fc.oneof(fc.constantFrom("__proto__", "constructor", "extra"), fc.string()),
        fc.jsonValue(),
        {
          maxKeys: 2,
        },
      ),
      fc.boolean(),
    )
    .map(([known, extra, withExtra]) => JSON.stringify(withExtra ? { ...extra, ...known } : known));
  return fc.oneof(
    { arbitrary: object, weight: 6 },
    fc.jsonValue().map((v) => JSON.stringify(v)),
    hostileString,
  );
}

type Parsed = { ok: true; request: unknown } | { ok: false; message: string };

/** The properties every body parser of the handler has. */
function checkParser(text: string, parsed: Parsed, parse: (text: string) => Parsed): void {
  if (!parsed.ok) {
    expect(typeof parsed.message).toBe("string");
    expect(parsed.message.length).toBeGreaterThan(0);
    expect(parsed.message.length).toBeLessThanOrEqual(text.length + 200);
    return;
  }
  expect(parse(JSON.stringify(parsed.request))).toEqual(parsed);
}

describe("fuzz: the handler's request parsers", () => {
  it(
    "POST /v1/recovered: an accepted body has a digest, a certificate hash, a pod name or null, and bounded failed peers",
    () => {
      // Mostly well-formed peers: a list is accepted only if every one of them is.
      const failedPeer = fc.oneof(
        {
          arbitrary: fc.record({
            pod: fc.stringMatching(/^[a-z][a-z0-9-]{0,20}-[0-9]$/),
            reason: fc.string({ minLength: 1, maxLength: 200 }),
          }),
          weight: 12,
        },
        fc.record({ pod: podName, reason: fc.oneof(fc.string({ maxLength: 210 }), hostileString) }),
        fc.jsonValue(),
      );
      const body = bodies({
        digest,
        source: fc.oneof(fc.constant(null), podName),
        certSha256: fc.oneof(hex64, hostileString),
        failedPeers: fc.array(failedPeer, { maxLength: 9 }),
      });
      fc.assert(
        fc.property(body, (text) => {
          const parsed = parseRecoveredRequest(text);
          checkParser(text, parsed, parseRecoveredRequest);
          if (parsed.ok) {
            expect(parsed.request.digest).toMatch(DIGEST_PATTERN);
            expect(parsed.request.certSha256).toMatch(CERT_SHA256_PATTERN);
            if (parsed.request.source !== null)
              expect(parsed.request.source).toMatch(/^[a-z0-9][-a-z0-9]{0,61}[a-z0-9]?$/);
            const failed = parsed.request.failedPeers ?? [];
            expect(failed.length).toBeLessThanOrEqual(8);
            if (parsed.request.source === null) expect(failed).toEqual([]);
            for (const peer of failed) {
              expect(Object.keys(peer).sort()).toEqual(["pod", "reason"]);
              expect(peer.pod).toMatch(/^[a-z0-9][-a-z0-9]{0,61}[a-z0-9]?$/);
              expect(peer.reason.length).toBeGreaterThan(0);
              expect(peer.reason.length).toBeLessThanOrEqual(200);
              expect(peer.reason).not.toMatch(/\p{Cc}/u);
            }
          }
        }),
        fuzz(400),
      );
    },
    fuzzTimeout(10_000),
  );

  it(
    "POST /v1/peer-access, /v1/proposals and /v1/holds: accepted bodies follow their rules",
    () => {
      const peerAccess = bodies({
        namespace: fc.oneof(fc.constantFrom("default", "contrast"), hostileString),
        pod: podName,
        uid: fc.oneof(fc.uuid(), hostileString),
        serviceAccount: fc.oneof(fc.constantFrom("coordinator", "default"), hostileString),
      });
      const proposal = bodies({
        digest,
        parent: fc.oneof(fc.constant(null), digest),
        certSha256: fc.oneof(hex64, hostileString),
      });
      const hold = bodies({ digest });
      fc.assert(
        fc.property(peerAccess, proposal, hold, (a, p, h) => {
          const access = parsePeerAccessRequest(a);
          checkParser(a, access, parsePeerAccessRequest);
          if (access.ok) {
            for (const value of Object.values(access.request)) {
              expect(typeof value).toBe("string");
              expect((value as string).length).toBeLessThanOrEqual(253);
            }
          }
          const proposed = parseProposalRequest(p);
          checkParser(p, proposed, parseProposalRequest);
          if (proposed.ok) {
            expect(proposed.request.digest).toMatch(DIGEST_PATTERN);
            expect(proposed.request.parent).not.toBe(proposed.request.digest);
            if (proposed.request.parent !== null) expect(proposed.request.parent).toMatch(DIGEST_PATTERN);
          }
          const held = parseHoldRequest(h);
          checkParser(h, held, parseHoldRequest);
          if (held.ok) expect(held.request.digest).toMatch(DIGEST_PATTERN);
        }),
        fuzz(400),
      );
    },
    fuzzTimeout(10_000),
  );

  it(
    "GET /v1/head: the query is three known parameters at most, each once, the wait bounded",
    () => {
      const value = fc.oneof(
        digest,
        fc.constantFrom("", "0", "30", "31", "99", "-1", "1e1", " 5"),
        fc.array(fc.string(), { maxLength: 2 }),
      );
      const query = fc.dictionary(
        fc.oneof(fc.constantFrom("known", "proposal", "waitSeconds"), fc.string()),
        value,
        {
          maxKeys: 4,
        },
      );
      fc.assert(
        fc.property(query, (q) => {
          const parsed = parseHeadQuery(q);
          if (!parsed.ok) return;
          expect(parsed.request.waitSeconds).toBeGreaterThanOrEqual(0);
          expect(parsed.request.waitSeconds).toBeLessThanOrEqual(30);
          for (const d of [parsed.request.known, parsed.request.proposal])
            if (d !== "") expect(d).toMatch(DIGEST_PATTERN);
        }),
        fuzz(400),
      );
    },
    fuzzTimeout(10_000),
  );
});

const hostilePath = fc.oneof(
  { arbitrary: fc.stringMatching(/^[a-z0-9]{1,8}(\/[a-z0-9._-]{1,8}){0,3}$/), weight: 4 },
  fc.constantFrom(
    "state.json",
    "a/b",
    "a",
    "../x",
    "/etc/passwd",
    "a//b",
    "a/./b",
    "a/../../b",
    ".coordinator-ha/x",
    ".coordinator-ha-data",
    "a\\b",
    "a\0b",
    "\ud800",
    "é/ü",
    "x".repeat(1100),
  ),
  fc.stringMatching(/^[a-z.]{1,8}(\/[a-z.]{1,8}){0,3}$/),
  hostileString,
);

describe("fuzz: the sidecar's commit API body and the peer API's key", () => {
  it(
    "accepts only bundles whose every path is a safe relative path, and never throws",
    () => {
      const base64 = fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString("base64"));
      const file = fc.oneof(
        { arbitrary: fc.record({ path: hostilePath, content: base64 }), weight: 8 },
        fc.record({ path: fieldValue(hostilePath), content: fieldValue(fc.oneof(base64, hostileString)) }),
      );
      const body = fc.oneof(
        {
          arbitrary: fc.record({
            parent: fc.oneof(fc.constant(null), digest),
            files: fieldValue(fc.array(file, { maxLength: 4 })),
          }),
          weight: 6,
        },
        fc.jsonValue(),
      );
      let accepted = 0;
      fc.assert(
        fc.property(body, (b) => {
          const parsed = parseCommitRequest(JSON.parse(JSON.stringify(b)));
          if (typeof parsed === "string") return;
          accepted++;
          expect(parsed.bundle.files.length).toBeGreaterThan(0);
          for (const f of parsed.bundle.files) expect(invalidPathReason(f.path)).toBeUndefined();
          expect(decodeBundle(encodeBundle(parsed.bundle))).toEqual(parsed.bundle);
        }),
        fuzz(600),
      );
      expect(accepted).toBeGreaterThan(20);
    },
    fuzzTimeout(10_000),
  );

  it(
    "turns any publicKey into a P-256 key or a TransferError, nothing else",
    async () => {
      const b64url43 = fc.stringMatching(/^[A-Za-z0-9_-]{43}$/);
      const jwk = fc.oneof(
        {
          arbitrary: fc.record(
            {
              kty: fc.constantFrom("EC", "RSA", "OKP"),
              crv: fc.constantFrom("P-256", "P-384", "X25519"),
              x: fieldValue(b64url43),
              y: fieldValue(b64url43),
              d: fc.option(b64url43, { nil: undefined }),
            },
            { requiredKeys: ["kty", "crv"] },
          ),
          weight: 4,
        },
        fc.anything(),
      );
      await fc.assert(
        fc.asyncProperty(jwk, async (value) => {
          try {
            const key = await recipientKey(value);
            expect(key.type).toBe("public");
          } catch (err) {
            expect(err).toBeInstanceOf(TransferError);
          }
        }),
        fuzz(300),
      );
    },
    fuzzTimeout(10_000),
  );
});

describe("fuzz: readers of head records", () => {
  it(
    "headSpecOf reads any object into a spec the rules can walk, or nothing",
    () => {
      // The apiserver checks the CRD's schema on every write: a field has its type, or an older
      // writer left it out.
      const spec = fc.record(
        {
          statefulSet: fc.record({ name: fc.string(), uid: fc.string() }, { requiredKeys: [] }),
          committed: fc.oneof(
            fc.constant(null),
            fc.record(
              { digest, parent: fc.oneof(fc.constant(null), digest), by: fc.string(), at: fc.string() },
              { requiredKeys: ["digest"] },
            ),
          ),
          history: fc.array(digest, { maxLength: 3 }),
          proposal: fc.constant(null),
          members: fc.dictionary(fc.string(), fc.record({ uid: fc.string(), digest })),
        },
        { requiredKeys: [] },
      );
      fc.assert(
        fc.property(fc.oneof(fc.record({ spec }), fc.anything()), (object) => {
          const head = headSpecOf(object);
          if (head === undefined) return;
          expect(Array.isArray(head.history)).toBe(true);
          expect(typeof head.members).toBe("object");
          expect(Array.isArray(head.members)).toBe(false);
        }),
        fuzz(400),
      );
    },
    fuzzTimeout(10_000),
  );

  it(
    "parseHead reads any answer of GET /v1/head into a head with valid digests, or nothing",
    () => {
      const proposal = fc.record({
        digest,
        parent: fc.oneof(fc.constant(null), digest),
        by: podName,
        ip: fc.oneof(fc.constantFrom("10.0.0.1", "::1", "not-an-ip", ""), fc.string()),
        port: fc.oneof(fc.integer({ min: -1, max: 70000 }), fc.double()),
        certSha256: fc.oneof(hex64, fc.string()),
      });
      const answer = fc.oneof(
        fc.record({
          committed: fieldValue(fc.oneof(fc.constant(null), digest, fc.record({ digest }))),
          proposal: fieldValue(fc.oneof(fc.constant(null), proposal)),
          quorum: fc.integer(),
        }),
        fc.anything(),
      );
      fc.assert(
        fc.property(answer, (body) => {
          const head = parseHead(body);
          if (head === undefined) return;
          if (head.committed !== null) expect(head.committed).toMatch(DIGEST_PATTERN);
          if (head.proposal) {
            expect(head.proposal.digest).toMatch(DIGEST_PATTERN);
            expect(Number.isInteger(head.proposal.port)).toBe(true);
          }
        }),
        fuzz(400),
      );
    },
    fuzzTimeout(10_000),
  );
});
