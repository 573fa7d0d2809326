// The --image reference of `npm run demo`: repository[:tag] or repository@sha256:digest.

export interface ImageRef {
  repository: string;
  /** Unset: the charts' default, their appVersion. */
  tag?: string;
  digest?: string;
}

export function parseImage(ref: string): ImageRef {
  const at = ref.indexOf("@");
  if (at >= 0) {
    const digest = ref.slice(at + 1);
    if (!/^sha256:[a-f0-9]{64}$/.test(digest)) throw new Error("the digest must be sha256:<64 hex digits>");
    return { repository: checkRepository(ref.slice(0, at)), digest };
  }
  // A colon after the last slash separates the tag; one before it belongs to a registry port.
  const colon = ref.lastIndexOf(":");
  if (colon > ref.lastIndexOf("/")) {
    const tag = ref.slice(colon + 1);
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) throw new Error(`"${tag}" is not a valid tag`);
    return { repository: checkRepository(ref.slice(0, colon)), tag };
  }
  return { repository: checkRepository(ref) };
}

function checkRepository(repository: string): string {
  if (!/^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-]+[a-z0-9]+)*)*$/.test(repository)) {
    throw new Error(
      `"${repository}" is not an image repository (lower-case, like registry.example/team/coordinator-ha)`,
    );
  }
  return repository;
}
