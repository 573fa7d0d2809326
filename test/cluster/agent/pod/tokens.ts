// Service-account tokens for projected volumes, requested with TokenRequest and bound to
// the pod, cached and refreshed as the kubelet's token manager (pkg/kubelet/token) does:
// a token is renewed once 80% of its requested lifetime has passed, or after 24 hours
// (the apiserver may have extended its expiry to a year).
import type { CoreV1Api } from "@kubernetes/client-node";

export interface TokenKey {
  namespace: string;
  serviceAccount: string;
  /** Empty: the apiserver's default audiences. */
  audience: string;
  expirationSeconds: number;
  podName: string;
  podUID: string;
}

interface Cached {
  token: string;
  refreshAt: number;
}

const MAX_TTL_MS = 24 * 3600 * 1000;

/** When a token issued at `issuedAt`, expiring at `expiresAt`, must be renewed. */
export function refreshTime(issuedAt: number, expiresAt: number, expirationSeconds: number): number {
  return Math.min(expiresAt - 0.2 * expirationSeconds * 1000, issuedAt + MAX_TTL_MS);
}

export class TokenManager {
  private readonly cache = new Map<string, Cached>();
  private readonly api: CoreV1Api;
  private readonly now: () => number;

  constructor(api: CoreV1Api, now: () => number = Date.now) {
    this.api = api;
    this.now = now;
  }

  /** A valid token for key: the cached one until its refresh time, then a new one. */
  async get(key: TokenKey): Promise<string> {
    const id = JSON.stringify(key);
    const cached = this.cache.get(id);
    if (cached && this.now() < cached.refreshAt) return cached.token;
    const issuedAt = this.now();
    const tr = await this.api.createNamespacedServiceAccountToken({
      name: key.serviceAccount,
      namespace: key.namespace,
      body: {
        spec: {
          ...(key.audience ? { audiences: [key.audience] } : {}),
          expirationSeconds: key.expirationSeconds,
          boundObjectRef: { apiVersion: "v1", kind: "Pod", name: key.podName, uid: key.podUID },
        },
      },
    });
    const token = tr.status?.token;
    if (!token) throw new Error(`TokenRequest for ${key.namespace}/${key.serviceAccount} returned no token`);
    const expiresAt = tr.status?.expirationTimestamp
      ? new Date(tr.status.expirationTimestamp).getTime()
      : issuedAt + key.expirationSeconds * 1000;
    this.cache.set(id, { token, refreshAt: refreshTime(issuedAt, expiresAt, key.expirationSeconds) });
    return token;
  }

  /** Earliest refresh time among a pod's tokens (undefined: none cached). */
  nextRefresh(podUID: string): number | undefined {
    let next: number | undefined;
    for (const [id, c] of this.cache) {
      if ((JSON.parse(id) as TokenKey).podUID !== podUID) continue;
      next = next === undefined ? c.refreshAt : Math.min(next, c.refreshAt);
    }
    return next;
  }

  /** Forgets a pod's tokens once the pod is gone. */
  forget(podUID: string): void {
    for (const id of [...this.cache.keys()]) {
      if ((JSON.parse(id) as TokenKey).podUID === podUID) this.cache.delete(id);
    }
  }
}
