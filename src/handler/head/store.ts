// The compare-and-swap loop around the pure rules (rules.ts): read the StateHead live, decide,
// write the decision's next head carrying the resourceVersion that was read, and on a 409
// read and decide again. Two handler replicas deciding at once on one StatefulSet thus
// serialize in the apiserver: the loser decides again on the winner's head. The first write
// creates the StateHead; a StateHead left by an earlier StatefulSet of the same name (another
// uid) is replaced by a fresh one.
import type { StateHeadApi } from "../../kube/state-heads.ts";
import { emptyHead, type HeadSpec, type StatefulSetRef, type StoredHead } from "./state-head.ts";

/** Decisions on one StateHead that lose this many races in a row give up (the caller retries). */
export const CAS_ATTEMPTS = 8;

export class HeadContention extends Error {}

export interface HeadStore {
  read(namespace: string, statefulSet: StatefulSetRef): Promise<HeadSpec>;
  /**
   * Reads, decides with `decide` (pure; called again after every lost race) and writes the
   * decision's `next` head, if any. `written` says whether this call wrote.
   */
  decide<D extends { next?: HeadSpec }>(
    namespace: string,
    statefulSet: StatefulSetRef,
    decide: (head: HeadSpec) => D,
  ): Promise<D & { written: boolean; attempts: number }>;
}

export function headStore(api: StateHeadApi, onConflict: () => void = () => undefined): HeadStore {
  const readStored = async (
    namespace: string,
    statefulSet: StatefulSetRef,
  ): Promise<{ head: HeadSpec; stored?: StoredHead }> => {
    const stored = await api.get(namespace, statefulSet.name);
    if (!stored) return { head: emptyHead(statefulSet) };
    // Another StatefulSet of that name had it: its history is not this one's.
    if (stored.spec.statefulSet.uid !== statefulSet.uid) return { head: emptyHead(statefulSet), stored };
    return { head: stored.spec, stored };
  };
  return {
    async read(namespace, statefulSet) {
      return (await readStored(namespace, statefulSet)).head;
    },
    async decide(namespace, statefulSet, decide) {
      for (let attempt = 1; attempt <= CAS_ATTEMPTS; attempt++) {
        const { head, stored } = await readStored(namespace, statefulSet);
        const decision = decide(head);
        if (!decision.next) return { ...decision, written: false, attempts: attempt };
        const result = stored
          ? await api.replace(namespace, decision.next, stored.resourceVersion)
          : await api.create(namespace, decision.next);
        if (result === "written") return { ...decision, written: true, attempts: attempt };
        onConflict();
      }
      throw new HeadContention(
        `the StateHead ${namespace}/${statefulSet.name} changed during each of ${CAS_ATTEMPTS} attempts to write it`,
      );
    },
  };
}
