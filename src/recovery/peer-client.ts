// Fetches the state from one peer: a fresh ephemeral key per attempt, the peer's pinned
// certificate, and the digest the handler reported for it. Any failure throws; the caller
// moves on to the next peer.
import { isIPv6 } from "node:net";
import type { Peer } from "../handler/api.ts";
import { requestJson } from "../http/client.ts";
import type { Bundle } from "../state/bundle.ts";
import { errorOf } from "./handler-client.ts";
import { ephemeralKey, MAX_JWE_LENGTH, openBundle } from "./transfer.ts";

const TIMEOUT_MS = 15_000;

export class PeerError extends Error {
  override name = "PeerError";
}

/** `staged`: ask for `peer.digest` by name (a proposal the peer has staged, not yet live). */
export async function fetchFromPeer(peer: Peer, token: string, staged = false): Promise<Bundle> {
  const key = await ephemeralKey();
  const host = isIPv6(peer.ip) ? `[${peer.ip}]` : peer.ip;
  const res = await requestJson({
    url: new URL(`https://${host}:${peer.port}/v1/state`),
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    body: staged ? { publicKey: key.publicJwk, digest: peer.digest } : { publicKey: key.publicJwk },
    pinSha256: peer.certSha256,
    timeoutMs: TIMEOUT_MS,
    maxResponseBytes: MAX_JWE_LENGTH + 4096,
  });
  if (res.status !== 200) throw new PeerError(`peer answered ${res.status}: ${errorOf(res.body)}`);
  const body = res.body as { digest?: unknown; jwe?: unknown } | undefined;
  // A cheap early check; openBundle recomputes the digest from what it decrypts.
  if (body?.digest !== peer.digest) {
    throw new PeerError(`peer offers state ${String(body?.digest)}, the handler reported ${peer.digest}`);
  }
  return openBundle(body.jwe, key, peer.digest);
}
