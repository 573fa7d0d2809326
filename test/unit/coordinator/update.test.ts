// The reference Coordinator's update rules, with real workload owner keys (ECDSA P-256 and
// P-384, as Contrast's workload-owner.pem) and real signatures.
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  ownerKeyDigest,
  readOwnerPrivateKey,
  signUpdate,
  type UpdateProof,
} from "../../../src/coordinator/owner-key.ts";
import { manifestDigest, newState, type Manifest } from "../../../src/coordinator/state.ts";
import { decideUpdate, parseManifestRequest } from "../../../src/coordinator/update.ts";

const p256 = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
const p384 = generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey;
const stranger = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
const PARENT = `sha256:${"a".repeat(64)}`;
const OTHER = `sha256:${"b".repeat(64)}`;

const current = (manifest: Manifest) => ({ state: newState(manifest), digest: PARENT });
const owned = { policy: "v1", workloadOwnerKeyDigests: [ownerKeyDigest(p256), ownerKeyDigest(p384)] };
const next = { policy: "v2", workloadOwnerKeyDigests: [ownerKeyDigest(p256)] };

interface Row {
  name: string;
  manifest: Manifest;
  request: { manifest: Manifest; update?: UpdateProof };
  expected: { kind: string; status?: number; error?: RegExp };
}

const rows: Row[] = [
  {
    name: "a listed P-256 key signing the current state: update",
    manifest: owned,
    request: { manifest: next, update: signUpdate(p256, PARENT, next) },
    expected: { kind: "update" },
  },
  {
    name: "a listed P-384 key: update",
    manifest: owned,
    request: { manifest: next, update: signUpdate(p384, PARENT, next) },
    expected: { kind: "update" },
  },
  {
    name: "the current manifest again, with a proof: nothing to do (a retried update)",
    manifest: owned,
    request: { manifest: owned, update: signUpdate(p256, OTHER, owned) },
    expected: { kind: "same" },
  },
  {
    name: "no proof on an owned manifest: 409 that says how to update",
    manifest: owned,
    request: { manifest: next },
    expected: { kind: "refuse", status: 409, error: /--workload-owner-key/ },
  },
  {
    name: "no proof on a manifest without owners: 409, it cannot be updated",
    manifest: { policy: "v1" },
    request: { manifest: next },
    expected: {
      kind: "refuse",
      status: 409,
      error: /lists no workloadOwnerKeyDigests: it cannot be updated/,
    },
  },
  {
    name: "a proof on a manifest without owners: 403",
    manifest: { policy: "v1" },
    request: { manifest: next, update: signUpdate(p256, PARENT, next) },
    expected: { kind: "refuse", status: 403, error: /lists no workloadOwnerKeyDigests/ },
  },
  {
    name: "an unlisted key: 403 naming its digest",
    manifest: owned,
    request: { manifest: next, update: signUpdate(stranger, PARENT, next) },
    expected: { kind: "refuse", status: 403, error: new RegExp(`${ownerKeyDigest(stranger)} is not listed`) },
  },
  {
    name: "a listed key, but the signature of another key: 403",
    manifest: owned,
    request: { manifest: next, update: { ...signUpdate(stranger, PARENT, next), ownerKey: pem(p256) } },
    expected: { kind: "refuse", status: 403, error: /does not prove possession/ },
  },
  {
    name: "a signature over another manifest: 403",
    manifest: owned,
    request: { manifest: next, update: signUpdate(p256, PARENT, { policy: "v3" }) },
    expected: { kind: "refuse", status: 403, error: /does not prove possession/ },
  },
  {
    name: "a signature for another parent, sent as for this one: 403",
    manifest: owned,
    request: { manifest: next, update: { ...signUpdate(p256, OTHER, next), parent: PARENT } },
    expected: { kind: "refuse", status: 403, error: /does not prove possession/ },
  },
  {
    name: "an empty signature: 403",
    manifest: owned,
    request: { manifest: next, update: { ...signUpdate(p256, PARENT, next), signature: "" } },
    expected: { kind: "refuse", status: 403, error: /does not prove possession/ },
  },
  {
    name: "a valid signature over an older state (a replay, or a concurrent update won): 409",
    manifest: owned,
    request: { manifest: next, update: signUpdate(p256, OTHER, next) },
    expected: {
      kind: "refuse",
      status: 409,
      error: /now holds sha256:a{64}.*run `coordinator-ha set` again/,
    },
  },
  {
    name: "an Ed25519 owner key: 400",
    manifest: owned,
    request: {
      manifest: next,
      update: { parent: PARENT, ownerKey: pem(generateKeyPairSync("ed25519").privateKey), signature: "AA==" },
    },
    expected: { kind: "refuse", status: 400, error: /ECDSA P-256 or P-384 key, not ed25519/ },
  },
  {
    name: "an owner key that is no key: 400",
    manifest: owned,
    request: { manifest: next, update: { parent: PARENT, ownerKey: "nope", signature: "AA==" } },
    expected: { kind: "refuse", status: 400, error: /not a PEM public key/ },
  },
];

describe("decideUpdate", () => {
  it.each(rows)("$name", ({ manifest, request, expected }) => {
    const decision = decideUpdate(current(manifest), request);
    expect(decision.kind).toBe(expected.kind);
    if (decision.kind === "refuse") {
      expect(decision.status).toBe(expected.status);
      expect(decision.error).toMatch(expected.error!);
    }
  });

  it("keeps the seed and appends (previous, new) to the history", () => {
    const before = current(owned);
    const decision = decideUpdate(before, { manifest: next, update: signUpdate(p256, PARENT, next) });
    if (decision.kind !== "update") throw new Error(decision.kind);
    expect(decision.state.seed).toBe(before.state.seed);
    expect(decision.state.manifest).toEqual(next);
    expect(decision.state.history.at(-1)).toEqual({
      previous: manifestDigest(owned),
      new: manifestDigest(next),
    });
    expect(decision.keyDigest).toBe(ownerKeyDigest(p256));
  });
});

describe("parseManifestRequest", () => {
  const update = signUpdate(p256, PARENT, next);
  it.each([
    ["no manifest", { policy: 1 }, /"manifest"/],
    ["a manifest that is no object", { manifest: [] }, /JSON object/],
    ["an unknown field", { manifest: {}, extra: 1 }, /unknown field\(s\): extra/],
    ["malformed owner key digests", { manifest: { workloadOwnerKeyDigests: ["ABC"] } }, /lowercase hex/],
    ["owner key digests that are no list", { manifest: { workloadOwnerKeyDigests: "x" } }, /lowercase hex/],
    ["an update without a parent", { manifest: {}, update: { ...update, parent: "x" } }, /update must be/],
    ["an update with an extra field", { manifest: {}, update: { ...update, x: 1 } }, /update must be/],
    ["an update that is no object", { manifest: {}, update: "sig" }, /update must be/],
  ])("refuses %s", (_name, body, reason) => {
    expect(parseManifestRequest(body)).toMatch(reason);
  });

  it("accepts a first manifest and an update", () => {
    expect(parseManifestRequest({ manifest: owned })).toEqual({ manifest: owned });
    expect(parseManifestRequest({ manifest: next, update })).toEqual({ manifest: next, update });
  });
});

describe("workload owner key files", () => {
  it("reads P-256 and P-384 keys in PEM (SEC1 and PKCS#8) and refuses others", () => {
    const sec1 = p256.export({ format: "pem", type: "sec1" }).toString();
    expect(ownerKeyDigest(readOwnerPrivateKey(sec1))).toBe(ownerKeyDigest(p256));
    const pkcs8 = p384.export({ format: "pem", type: "pkcs8" }).toString();
    expect(ownerKeyDigest(readOwnerPrivateKey(pkcs8))).toBe(ownerKeyDigest(p384));
    const secp256k1 = generateKeyPairSync("ec", { namedCurve: "secp256k1" }).privateKey;
    expect(() => readOwnerPrivateKey(secp256k1.export({ format: "pem", type: "pkcs8" }).toString())).toThrow(
      /P-256 or P-384 key, not ec secp256k1/,
    );
    expect(() => readOwnerPrivateKey(pem(p256))).toThrow(/not a PEM private key/);
  });

  it("digests the public key's SPKI DER, as Contrast lists it", () => {
    const spki = createPublicKey(p256).export({ format: "der", type: "spki" });
    expect(ownerKeyDigest(p256)).toBe(createHash("sha256").update(spki).digest("hex"));
    expect(ownerKeyDigest(createPublicKey(p256))).toBe(ownerKeyDigest(p256));
  });
});

function pem(key: KeyObject): string {
  return createPublicKey(key).export({ format: "pem", type: "spki" }).toString();
}
