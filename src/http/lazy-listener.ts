// A request listener whose implementation is loaded on the first request. The recovery
// sidecar's commit API uses it for its express app: express costs every Coordinator pod about
// 13 MB of resident memory (docs/performance.md), and most apps commit rarely; the first commit
// pays the load instead. (The peer API is a bare listener: the first pod that recovers from
// this one should not wait for a module load.)
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import type { Logger } from "pino";

export function lazyListener(load: () => Promise<RequestListener>, logger: Logger): RequestListener {
  let loading: Promise<RequestListener> | undefined;
  return (req: IncomingMessage, res: ServerResponse) => {
    loading ??= load().catch((err: unknown) => {
      // Not cached: the next request tries again.
      loading = undefined;
      throw err;
    });
    loading.then(
      (listener) => listener(req, res),
      (err: unknown) => {
        logger.error({ err: String(err) }, "cannot load the request handler");
        if (res.headersSent) return;
        res.writeHead(503, { "content-type": "application/json", connection: "close" });
        res.end(JSON.stringify({ error: "the server is starting; try again" }));
      },
    );
  };
}
