// Wires the reference Coordinator: the state holder, the user API and the probes.
import { mkdir } from "node:fs/promises";
import { createServer } from "../http/node-http.ts";
import type { Logger } from "pino";
import { close, listen } from "../http/listen.ts";
import { probeListener } from "../http/probes.ts";
import { COMMIT_API_URL } from "../names.ts";
import { commitUpdate } from "../recovery/commit-client.ts";
import type { Bundle } from "../state/bundle.ts";
import { openStateHolder, type StateHolder } from "./state-holder.ts";
import { userApi } from "./user-api.ts";
import { applyLimits, PROBE_LIMITS, serverOptions, USER_API_LIMITS } from "../http/limits.ts";

export interface CoordinatorOptions {
  stateDir: string;
  apiPort: number;
  probePort: number;
  /** Bind address; default all addresses. */
  host?: string;
  logger: Logger;
  /** Re-read interval of the state directory (default 2 s). */
  pollMs?: number;
  /** The sidecar's local commit API (default http://127.0.0.1:7445/v1/commit). */
  commitUrl?: URL;
  /** Instead of commitUrl: commits in-process (tests). */
  commit?: (parent: string, bundle: Bundle) => ReturnType<typeof commitUpdate>;
}

export interface RunningCoordinator {
  apiPort: number;
  probePort: number;
  holder: StateHolder;
  close(): Promise<void>;
}

export async function startCoordinator(opts: CoordinatorOptions): Promise<RunningCoordinator> {
  const { logger } = opts;
  // Outside Kubernetes nobody mounts the directory for us.
  await mkdir(opts.stateDir, { recursive: true });
  const commitUrl = opts.commitUrl ?? new URL(COMMIT_API_URL);
  const holder = await openStateHolder({
    dir: opts.stateDir,
    logger,
    pollMs: opts.pollMs,
    commit: opts.commit ?? ((parent, bundle) => commitUpdate(commitUrl, parent, bundle)),
  });

  const api = createServer(serverOptions(USER_API_LIMITS), userApi(holder, logger));
  applyLimits(api, USER_API_LIMITS);
  const probes = createServer(
    serverOptions(PROBE_LIMITS),
    probeListener({
      "/probe/startup": () => undefined,
      "/probe/liveness": () => undefined,
      "/probe/readiness": () => {
        const status = holder.status();
        if (status.kind === "initialized") return undefined;
        return status.kind === "uninitialized" ? "not initialized" : `state unusable: ${status.reason}`;
      },
    }),
  );
  applyLimits(probes, PROBE_LIMITS);
  try {
    const apiPort = await listen(api, opts.apiPort, opts.host);
    const probePort = await listen(probes, opts.probePort, opts.host);
    logger.info({ apiPort, probePort, stateDir: opts.stateDir }, "coordinator listening");
    return {
      apiPort,
      probePort,
      holder,
      close: async () => {
        holder.close();
        await Promise.all([close(api), close(probes)]);
      },
    };
  } catch (err) {
    holder.close();
    await Promise.all([close(api), close(probes)]).catch(() => undefined);
    throw err;
  }
}
