// The mutation itself: pod in, pod out. No HTTP, no JSON patch, no I/O, so that every
// rule here is a table test away. The patch is made elsewhere by diffing the result
// against the original.
//
// Every step is "ensure", never "append": running injectPod on its own output changes
// nothing, which is what makes the webhook safe to reinvoke.
import type { V1Container } from "@kubernetes/client-node";
import { posix } from "node:path";
import { INJECT_ANNOTATION, RECOVERED_CONDITION, SIDECAR_NAME, STATE_VOLUME } from "../names.ts";
import { withInjectedStatus } from "./annotations.ts";
import type { Pod } from "./pod-shape.ts";
import { appReadinessUrl } from "./readiness-url.ts";
import type { RejectReason } from "./reasons.ts";
import { sidecarContainer, stateMount, stateVolume, tokenVolume, type InjectionParams } from "./sidecar.ts";
import { sidecarUser } from "./sidecar-user.ts";

export interface Conflict {
  reason: Extract<RejectReason, "state_dir_conflict" | "reserved_name">;
  message: string;
}

const optOutHint = `or opt the pod out with the annotation ${INJECT_ANNOTATION}: "false"`;

/**
 * A pod that injection would break. The state directory must be our volume in every app
 * container: if an app container already mounts something else there, the app would
 * never see the recovered state (or the sidecar would hide the user's data), so the pod
 * is refused with a message that says what to change, rather than silently run without
 * recovery.
 */
export function findConflict(pod: Pod, stateDir: string): Conflict | undefined {
  for (const container of pod.spec.containers) {
    if (container.name === SIDECAR_NAME) {
      return {
        reason: "reserved_name",
        message: `container "${SIDECAR_NAME}" clashes with the coordinator-ha recovery sidecar; rename the container ${optOutHint}`,
      };
    }
    const clash = container.volumeMounts?.find(
      (m) => samePath(m.mountPath, stateDir) && m.name !== STATE_VOLUME,
    );
    if (clash) {
      return {
        reason: "state_dir_conflict",
        message: `container "${container.name}" mounts volume "${clash.name}" at ${stateDir}, the coordinator-ha state directory; remove that mount ${optOutHint}`,
      };
    }
  }
  return undefined;
}

/**
 * The pod with recovery injected. The input is never modified: the result is a copy on
 * write, which shares every untouched subtree with the input. That keeps the diff cheap,
 * because fast-json-patch's compare skips identical references without walking them.
 */
export function injectPod(original: Pod, params: InjectionParams): Pod {
  const spec = original.spec;
  // checkPod guarantees at least one app container.
  const app = spec.containers[0] as V1Container;

  // Exactly one gate of ours, where the first one was (a copied spec may repeat it).
  const gates = spec.readinessGates ?? [];
  const ours = gates.filter((g) => g.conditionType === RECOVERED_CONDITION).length;
  const readinessGates =
    ours === 1 ? gates : upsert(gates, { conditionType: RECOVERED_CONDITION }, (g) => g.conditionType);

  // First among the init containers, so that no other init container runs before the
  // state is in place. A sidecar from an earlier injection is replaced, not duplicated.
  const sidecar = sidecarContainer(params, appReadinessUrl(app), sidecarUser(spec.securityContext, app));
  const initContainers = [sidecar, ...(spec.initContainers ?? []).filter((c) => c.name !== SIDECAR_NAME)];

  // A volume that already carries one of our names (a pod spec copied from an injected pod)
  // is replaced rather than added again, which the apiserver would refuse as a duplicate.
  const volumes = [stateVolume(), tokenVolume()].reduce(
    (list, volume) => upsert(list, volume, (v) => v.name),
    spec.volumes ?? [],
  );

  const containers = spec.containers.map((container) => {
    const mounts = container.volumeMounts ?? [];
    return mounts.some((m) => m.name === STATE_VOLUME && samePath(m.mountPath, params.stateDir))
      ? container
      : { ...container, volumeMounts: [...mounts, stateMount(params.stateDir)] };
  });

  return {
    ...original,
    metadata: withInjectedStatus(original.metadata),
    spec: { ...spec, readinessGates, initContainers, volumes, containers },
  };
}

/**
 * Replaces the first item with the same key in place (keeping the order) and drops any later
 * one, or appends the item: afterwards the list holds it exactly once, even when the input
 * repeated it (found by the webhook fuzz test).
 */
function upsert<T>(list: T[], item: T, key: (t: T) => unknown): T[] {
  const at = list.findIndex((t) => key(t) === key(item));
  if (at < 0) return [...list, item];
  return list.flatMap((t, i) => (i === at ? [item] : key(t) === key(item) ? [] : [t]));
}

function samePath(a: string, b: string): boolean {
  return posix.normalize(`${a}/`) === posix.normalize(`${b}/`);
}
