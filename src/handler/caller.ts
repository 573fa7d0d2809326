// May the pod a token speaks for use the handler? The token proves who signed it; this
// checks the pod as it is now: still the same pod (uid), running as the token's service
// account, selected, gated, and part of a StatefulSet.
import type { V1Pod } from "@kubernetes/client-node";
import type { PodIdentity } from "../identity/index.ts";
import type { LabelSelector } from "../kube/label-selector.ts";
import { RECOVERED_CONDITION } from "../names.ts";
import { isGated, isTerminating, owningStatefulSet, serviceAccountOf, type StatefulSetRef } from "./pod.ts";
import { refuse, type Refusal } from "./reasons.ts";

export type CallerCheck =
  { ok: true; pod: V1Pod; statefulSet: StatefulSetRef } | { ok: false; refusal: Refusal };

/**
 * A handler restricted to some namespaces (`namespaces`; undefined: all) serves no pod
 * outside them: it neither sees such a pod's siblings nor may it write the pod's status, so
 * any answer would be wrong. Checked before the pod is read, which it may not do there either.
 */
export function checkWatched(
  identity: PodIdentity,
  namespaces: readonly string[] | undefined,
): Refusal | undefined {
  if (namespaces === undefined || namespaces.includes(identity.namespace)) return undefined;
  return refuse(
    "namespace_not_watched",
    `pod ${identity.namespace}/${identity.podName} is in namespace ${identity.namespace}, which this handler ` +
      `does not watch (--namespace ${namespaces.join(",")}); add it to the handler's --namespace ` +
      "(chart value handler.namespaces)",
  );
}

/** `pod` is the pod named by the token as the apiserver has it now, undefined if there is none. */
export function checkCaller(
  identity: PodIdentity,
  pod: V1Pod | undefined,
  selector: LabelSelector,
): CallerCheck {
  const who = `pod ${identity.namespace}/${identity.podName}`;
  const no = (refusal: Refusal): CallerCheck => ({ ok: false, refusal });
  // A bound token outlives its pod only until the apiserver notices; we refuse it at once.
  if (!pod) return no(refuse("pod_gone", `${who} no longer exists; its token is void`));
  if (pod.metadata?.uid !== identity.podUid) {
    return no(refuse("uid_mismatch", `${who} has been replaced; the token belongs to its predecessor`));
  }
  if (serviceAccountOf(pod) !== identity.serviceAccount) {
    return no(
      refuse("service_account_mismatch", `${who} does not run as service account ${identity.serviceAccount}`),
    );
  }
  if (!selector.matches(pod.metadata?.labels)) {
    return no(refuse("not_selected", `${who} does not match the handler's pod selector ${selector.text}`));
  }
  if (!isGated(pod)) {
    return no(refuse("not_gated", `${who} has no readiness gate ${RECOVERED_CONDITION}`));
  }
  const statefulSet = owningStatefulSet(pod);
  if (!statefulSet) return no(refuse("not_statefulset", `${who} is not controlled by a StatefulSet`));
  if (isTerminating(pod)) return no(refuse("terminating", `${who} is terminating`));
  return { ok: true, pod, statefulSet };
}
