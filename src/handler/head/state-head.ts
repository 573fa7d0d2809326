// The StateHead: one per StatefulSet, in the StatefulSet's namespace and under its name. It
// holds the acknowledged head of the StatefulSet's state history, the update in flight, and
// what each pod confirmed it holds (docs/recovery.md, "The head"). Every write is a PUT with
// the resourceVersion read before (a compare-and-swap), so handler replicas agree without a
// leader, and the handler itself keeps no state.
import { GROUP } from "../../names.ts";

export const STATE_HEAD_VERSION = "v1alpha1";
export const STATE_HEAD_API_VERSION = `${GROUP}/${STATE_HEAD_VERSION}`;
export const STATE_HEAD_KIND = "StateHead";
export const STATE_HEAD_PLURAL = "stateheads";
/** The number of committed digests kept in spec.history (the oldest go first). */
export const HISTORY_LIMIT = 50;

export interface StatefulSetRef {
  name: string;
  uid: string;
}

export interface Commit {
  digest: string;
  /** The digest it replaced; null for the first state. */
  parent: string | null;
  /** The pod that proposed it (or confirmed it first, for a first state). */
  by: string;
  /** RFC 3339. */
  at: string;
  /**
   * The pods (name -> uid) that held it when it was committed. They have it staged, and are
   * not counted stale while they swap it in (until the grace after `at` runs out).
   */
  holders: Record<string, string>;
}

export interface Proposal {
  digest: string;
  parent: string | null;
  by: string;
  byUid: string;
  /** SHA-256 (hex) of the proposer's peer API certificate: the others stage from it. */
  certSha256: string;
  at: string;
  expiresAt: string;
  holders: Record<string, string>;
}

export interface Member {
  uid: string;
  digest: string;
  certSha256: string;
  /** The peer it recovered from; null when its own app wrote (or committed) the state. */
  source: string | null;
  /** Each app container's restartCount when the confirmation was recorded. */
  restarts: Record<string, number>;
  at: string;
}

export interface HeadSpec {
  statefulSet: StatefulSetRef;
  committed: Commit | null;
  history: string[];
  proposal: Proposal | null;
  members: Record<string, Member>;
}

/** A StateHead as read from the apiserver: its spec and the version a write must name. */
export interface StoredHead {
  spec: HeadSpec;
  resourceVersion: string;
}

export function emptyHead(statefulSet: StatefulSetRef): HeadSpec {
  return { statefulSet, committed: null, history: [], proposal: null, members: {} };
}

/**
 * The spec of a StateHead object. The CRD's schema has checked the shape on write; this only
 * fills what an older writer left out, so that the rules never meet an undefined.
 */
export function headSpecOf(object: unknown): HeadSpec | undefined {
  const spec = (object as { spec?: Partial<HeadSpec> } | undefined)?.spec;
  if (!spec?.statefulSet?.name || !spec.statefulSet.uid) return undefined;
  return {
    statefulSet: { name: spec.statefulSet.name, uid: spec.statefulSet.uid },
    committed: spec.committed ? { ...spec.committed, holders: spec.committed.holders ?? {} } : null,
    history: spec.history ?? [],
    proposal: spec.proposal ? { ...spec.proposal, holders: spec.proposal.holders ?? {} } : null,
    members: spec.members ?? {},
  };
}

/** The StateHead object to create or replace with `spec`. */
export function headObject(namespace: string, spec: HeadSpec, resourceVersion?: string): object {
  return {
    apiVersion: STATE_HEAD_API_VERSION,
    kind: STATE_HEAD_KIND,
    metadata: {
      name: spec.statefulSet.name,
      namespace,
      ...(resourceVersion ? { resourceVersion } : {}),
      // It goes with its StatefulSet. Not blockOwnerDeletion: that would need rights on the
      // StatefulSet's finalizers, which the handler has no business with.
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: "StatefulSet",
          name: spec.statefulSet.name,
          uid: spec.statefulSet.uid,
        },
      ],
    },
    spec,
  };
}

/** "sha256:5f0c2b0d6f9d…": enough of a digest for a sentence; logs carry the whole one. */
export function short(digest: string | null | undefined): string {
  if (!digest) return "none";
  return digest.length > 19 ? `${digest.slice(0, 19)}…` : digest;
}
