// Which user the recovery sidecar runs as: a rule on the pod alone, as a table.
//
// The state volume is a memory emptyDir, a tmpfs whose root the kubelet leaves root-owned
// with the sticky bit (mode 1777), with or without an fsGroup. In a sticky directory only a
// file's owner may rename over it or remove it, and the sidecar does both to the app's files
// when it swaps in an update (src/state/layout.ts). So the sidecar runs as the app's user
// whenever the pod says who that is; it then owns what the app wrote, and the app what the
// sidecar wrote, with no fsGroup needed.
//
//   the app's runAsUser (its container's, else the pod's) | the sidecar runs as
//   ------------------------------------------------------+-------------------------------------
//   a uid N > 0                                           | N, group: the app's runAsGroup, else N
//   0 (root), or not in the spec (the image's USER)       | 65532:65532
//
// In the second row the app's files stay readable (they are written 0644), but an update can
// be swapped in only where the sidecar wrote the current files (docs/recovery.md).
import type { V1Container, V1PodSecurityContext } from "@kubernetes/client-node";

/**
 * The sidecar's user when the pod does not name a non-root one. The restricted profile wants
 * runAsNonRoot, and the kubelet can only verify that for a numeric id.
 */
export const DEFAULT_SIDECAR_UID = 65532;

export interface SidecarUser {
  runAsUser: number;
  runAsGroup: number;
}

export function sidecarUser(pod: V1PodSecurityContext | undefined, app: V1Container): SidecarUser {
  const uid = app.securityContext?.runAsUser ?? pod?.runAsUser;
  if (uid === undefined || uid === 0)
    return { runAsUser: DEFAULT_SIDECAR_UID, runAsGroup: DEFAULT_SIDECAR_UID };
  return { runAsUser: uid, runAsGroup: app.securityContext?.runAsGroup ?? pod?.runAsGroup ?? uid };
}
