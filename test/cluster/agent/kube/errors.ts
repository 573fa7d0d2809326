// The apiserver's answer inside a client-node ApiException: its HTTP code, and the Status
// message (client-node's own message wraps it in "HTTP-Code: ... Body: ..." noise).

export function apiErrorCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
}

export function apiErrorMessage(err: unknown): string {
  const body = (err as { body?: unknown } | null)?.body;
  if (typeof body === "string") {
    try {
      const status = JSON.parse(body) as { message?: string };
      if (status.message) return status.message;
    } catch {
      // Not a Status object.
    }
  }
  return err instanceof Error ? err.message : String(err);
}
