// The sidecar learns "the app holds the state" from the app's own readiness endpoint. The
// sidecar shares the pod's network namespace, so it asks on loopback whatever host the
// kubelet would have used.
import type { V1Container } from "@kubernetes/client-node";

/**
 * The URL of the container's httpGet readiness probe as the sidecar can reach it, or ""
 * when the container has no httpGet readiness probe or its port cannot be resolved (then
 * the sidecar falls back to the state's presence in the state directory).
 */
export function appReadinessUrl(container: V1Container): string {
  const httpGet = container.readinessProbe?.httpGet;
  if (!httpGet) return "";
  const port = resolvePort(container, httpGet.port);
  if (port === undefined) return "";
  const scheme = httpGet.scheme?.toUpperCase() === "HTTPS" ? "https" : "http";
  const path = httpGet.path ?? "/";
  return `${scheme}://127.0.0.1:${port}${path.startsWith("/") ? path : `/${path}`}`;
}

/** A probe port is a number or the name of one of the container's ports. */
function resolvePort(container: V1Container, port: number | string): number | undefined {
  if (typeof port === "number") return validPort(port);
  const named = container.ports?.find((p) => p.name === port);
  if (named) return validPort(named.containerPort);
  return /^\d+$/.test(port) ? validPort(Number(port)) : undefined;
}

function validPort(port: number): number | undefined {
  return Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined;
}
