// Kubelet probe endpoints as a bare request listener: GET or HEAD on a known path answers
// 200 when its check passes and 503 with the reason when not. Probes carry no body and no
// credentials, so they need neither express nor TLS.
import type { RequestListener } from "node:http";

/** A probe check: undefined when it passes, else why not (in the operator's words). */
export type ProbeCheck = () => string | undefined;

export function probeListener(checks: Record<string, ProbeCheck>): RequestListener {
  return (req, res) => {
    const path = new URL(req.url ?? "/", "http://probe").pathname;
    const check = Object.hasOwn(checks, path) ? checks[path] : undefined;
    let status: number;
    let body: string;
    if (!check) {
      [status, body] = [404, `no probe ${path}; this server has ${Object.keys(checks).join(", ")}\n`];
    } else if (req.method !== "GET" && req.method !== "HEAD") {
      [status, body] = [405, "probes answer GET and HEAD\n"];
    } else {
      const problem = check();
      [status, body] = problem === undefined ? [200, "ok\n"] : [503, `${problem}\n`];
    }
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
    res.end(req.method === "HEAD" ? undefined : body);
  };
}
