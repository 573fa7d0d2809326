// Where the service-account issuer's public keys come from: the apiserver's OIDC
// discovery endpoints, read with the caller's API credentials. Every service account
// may read them: the default ClusterRoleBinding system:service-account-issuer-discovery
// grants /openid/v1/jwks and /.well-known/openid-configuration to system:serviceaccounts.
// How the two documents are fetched is the caller's (IssuerDiscovery): the handler uses
// its Kubernetes client, the sidecar two plain HTTPS GETs, so that this file loads neither.
//
// The key set is cached, re-fetched when it is older than maxAge, and re-fetched at once
// (rate-limited) when a token names a key id the cached set does not know: that is how a
// key rotation reaches us without a restart.
import type { JSONWebKeySet } from "jose";
import type { Logger } from "pino";

export interface JwksSource {
  /**
   * The issuer's key set. Once there is one, this never waits: a set older than maxAge is
   * returned as it is while a re-fetch runs in the background, so that a slow or stalled
   * apiserver never holds up a token signed with a known key.
   */
  get(): Promise<JSONWebKeySet>;
  /**
   * Re-fetches the key set now and waits for it, unless the last fetch is younger than the
   * minimum refresh interval (then it returns the cached set), so that a flood of tokens with
   * made-up key ids cannot hammer the apiserver. Concurrent callers share one fetch. Only a
   * token with an unknown key id calls this, and only that token waits.
   */
  refresh(): Promise<JSONWebKeySet>;
}

export interface CachedJwksOptions {
  /** Re-fetch after this age (default 5 minutes). */
  maxAgeMs?: number;
  /** At most one forced re-fetch per this interval (default 10 s). */
  minRefreshIntervalMs?: number;
  /** A fetch that takes longer fails (default 10 s); the cached set stays. */
  fetchTimeoutMs?: number;
  /** Clock in ms, injectable for tests. */
  now?: () => number;
  logger?: Logger;
}

/** Caches what `fetchKeys` returns; see JwksSource for the refresh rules. */
export function cachedJwksSource(
  fetchKeys: () => Promise<JSONWebKeySet>,
  opts: CachedJwksOptions = {},
): JwksSource {
  const maxAge = opts.maxAgeMs ?? 5 * 60_000;
  const minInterval = opts.minRefreshIntervalMs ?? 10_000;
  const fetchTimeout = opts.fetchTimeoutMs ?? 10_000;
  const now = opts.now ?? Date.now;
  let keys: JSONWebKeySet | undefined;
  let fetchedAt = -Infinity;
  let inflight: Promise<JSONWebKeySet> | undefined;

  const fetchNow = (): Promise<JSONWebKeySet> => {
    inflight ??= (async () => {
      // Counted from the attempt, so that a failing apiserver is not retried on every token.
      fetchedAt = now();
      let timer: NodeJS.Timeout | undefined;
      try {
        const deadline = new Promise<never>((_resolve, reject) => {
          timer = setTimeout(
            () => reject(new Error(`the issuer's keys did not arrive within ${fetchTimeout} ms`)),
            fetchTimeout,
          );
        });
        const fetched = await Promise.race([fetchKeys(), deadline]);
        if (!Array.isArray(fetched?.keys)) throw new Error("the issuer's JWKS has no keys array");
        keys = fetched;
        opts.logger?.info({ kids: keys.keys.map((k) => k.kid) }, "fetched service-account issuer keys");
        return keys;
      } catch (err) {
        // Keys rotate rarely: a stale set keeps verifying while the apiserver is unreachable.
        if (keys) {
          opts.logger?.warn({ err: String(err) }, "re-fetching issuer keys failed; keeping the cached set");
          return keys;
        }
        throw err;
      } finally {
        clearTimeout(timer);
        inflight = undefined;
      }
    })();
    return inflight;
  };

  return {
    get: () => {
      if (!keys) return fetchNow();
      // Stale: refresh in the background and answer with what we have. fetchNow never
      // rejects once a set exists (it keeps the cached one).
      if (now() - fetchedAt >= maxAge) void fetchNow();
      return Promise.resolve(keys);
    },
    refresh: () => (keys && now() - fetchedAt < minInterval ? Promise.resolve(keys) : fetchNow()),
  };
}

/** The apiserver's two OIDC discovery documents, as parsed JSON. */
export interface IssuerDiscovery {
  /** GET /.well-known/openid-configuration */
  openidConfiguration(): Promise<unknown>;
  /** GET /openid/v1/jwks */
  keySet(): Promise<unknown>;
}

/** The cluster's service-account issuer keys, from GET /openid/v1/jwks. */
export function issuerJwksSource(
  api: IssuerDiscovery,
  logger: Logger,
  opts: Omit<CachedJwksOptions, "logger"> = {},
): JwksSource {
  return cachedJwksSource(async () => (await api.keySet()) as JSONWebKeySet, { ...opts, logger });
}

/** The issuer that the apiserver writes into the tokens it signs (OIDC discovery). */
export async function discoverIssuer(api: IssuerDiscovery): Promise<string> {
  const config = (await api.openidConfiguration()) as { issuer?: unknown } | undefined;
  if (typeof config?.issuer !== "string" || config.issuer === "") {
    throw new Error("the apiserver's /.well-known/openid-configuration names no issuer; pass --issuer");
  }
  return config.issuer;
}
