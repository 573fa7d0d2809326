// `coordinator-ha probe startup|liveness`: the sidecar's own probes as an exec action. In a
// pod whose network takes no inbound connection until the app is up (Contrast's pod VMs),
// a kubelet's httpGet of the sidecar never arrives; a command run inside the sidecar's
// container asks the same endpoint over loopback and answers with its exit code.
import { request } from "node:http";
import { SIDECAR_PROBE_PORT } from "../names.ts";
import { SidecarEnv } from "./sidecar-env.ts";

export const PROBE_PATHS = { startup: "/startupz", liveness: "/healthz" } as const;
export type ProbeKind = keyof typeof PROBE_PATHS;

export interface ProbeAnswer {
  ok: boolean;
  /** What the kubelet records as the probe's output (an Event on failure). */
  text: string;
}

/** The probe port: the sidecar's env (the exec action runs with it), else the default. */
export function probePort(env: NodeJS.ProcessEnv): number {
  const text = env[SidecarEnv.probePort];
  const port = Number(text);
  return text !== undefined && /^\d+$/.test(text) && port > 0 && port < 65536 ? port : SIDECAR_PROBE_PORT;
}

/** Asks the sidecar's probe endpoint on 127.0.0.1; never throws. */
export function askProbe(kind: ProbeKind, port: number, timeoutMs: number): Promise<ProbeAnswer> {
  return new Promise((resolve) => {
    const req = request(
      { host: "127.0.0.1", port, path: PROBE_PATHS[kind], method: "GET", timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8").trim();
          const status = res.statusCode ?? 0;
          resolve({ ok: status >= 200 && status < 300, text: `${status} ${body}`.trim() });
        });
        res.on("error", (err) => resolve({ ok: false, text: `reading the answer failed: ${err.message}` }));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (err) =>
      resolve({
        ok: false,
        text: `the sidecar's probe port 127.0.0.1:${port} did not answer: ${err.message}`,
      }),
    );
    req.end();
  });
}
