// A deadline for a call of @kubernetes/client-node's generated API. The client sets none of
// its own: a request to an apiserver that accepts the connection and then stalls would hang
// its caller (a sidecar waiting for /v1/peer-access, a confirmation) for as long as TCP lets
// it. This middleware gives the request an AbortSignal that fires after `ms`, which aborts
// the fetch, headers and body alike; the call then rejects, and the caller answers 503.
import type { ConfigurationOptions, ObservableMiddleware } from "@kubernetes/client-node";

/** The default for the handler's calls: a pod GET or a status patch takes milliseconds. */
export const KUBE_CALL_TIMEOUT_MS = 10_000;

type RequestContext = Parameters<ObservableMiddleware["pre"]>[0];

/** Call options with a deadline; pass them as the generated method's second argument. */
export function withTimeout(
  ms: number = KUBE_CALL_TIMEOUT_MS,
  options?: ConfigurationOptions<ObservableMiddleware>,
): ConfigurationOptions<ObservableMiddleware> {
  // The generated code only calls toPromise() on what a middleware returns (its rxjs stub).
  const resolved = <T>(value: T) => ({ toPromise: () => Promise.resolve(value) });
  const deadline = {
    pre: (request: RequestContext) => {
      request.setSignal(AbortSignal.timeout(ms));
      return resolved(request);
    },
    post: (response: unknown) => resolved(response),
  } as unknown as ObservableMiddleware;
  return {
    ...options,
    middleware: [...(options?.middleware ?? []), deadline],
    middlewareMergeStrategy: "append",
  };
}
