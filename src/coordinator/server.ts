// Wires the reference Coordinator: the state holder, the user API and the probes, and in the
// benchmark's peer modes its own recovery or none (RecoveryMode).
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
import { startSelfRecovery, type SelfRecoveryOptions } from "./self-recovery.ts";

/**
 * How a new Coordinator pod gets the state:
 * - sidecar: coordinator-ha's recovery sidecar writes it into the state directory (default);
 * - self: the Coordinator asks its Ready peers itself (self-recovery.ts, the guide's mechanism);
 * - floor: it needs none and is ready at start: what the StatefulSet controller and the kubelet
 *   alone cost, the benchmark's floor. Its user API still works as in the other modes.
 */
export type RecoveryMode =
  | { mode: "sidecar" }
  | { mode: "floor" }
  | ({ mode: "self" } & Omit<SelfRecoveryOptions, "stateDir" | "logger" | "holds" | "host">);
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
  /** Default: sidecar. */
  recovery?: RecoveryMode;
}

export interface RunningCoordinator {
  apiPort: number;
  probePort: number;
  holder: StateHolder;
  /** The self-recovery endpoint's port, in that mode. */
  selfRecoveryPort?: number;
  close(): Promise<void>;
}

export async function startCoordinator(opts: CoordinatorOptions): Promise<RunningCoordinator> {
  const { logger } = opts;
  // Outside Kubernetes nobody mounts the directory for us.
  await mkdir(opts.stateDir, { recursive: true });
  const commitUrl = opts.commitUrl ?? new URL(COMMIT_API_URL);
  const recovery = opts.recovery ?? { mode: "sidecar" };
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
        if (recovery.mode === "floor") return undefined;
        const status = holder.status();
        if (status.kind === "initialized") return undefined;
        return status.kind === "uninitialized" ? "not initialized" : `state unusable: ${status.reason}`;
      },
    }),
  );
  applyLimits(probes, PROBE_LIMITS);
  let self: Awaited<ReturnType<typeof startSelfRecovery>> | undefined;
  try {
    const apiPort = await listen(api, opts.apiPort, opts.host);
    const probePort = await listen(probes, opts.probePort, opts.host);
    if (recovery.mode === "self") {
      self = await startSelfRecovery({
        ...recovery,
        stateDir: opts.stateDir,
        host: opts.host,
        logger,
        holds: () => holder.status().kind === "initialized",
      });
    }
    logger.info(
      { apiPort, probePort, stateDir: opts.stateDir, recovery: recovery.mode },
      "coordinator listening",
    );
    return {
      apiPort,
      probePort,
      holder,
      selfRecoveryPort: self?.port,
      close: async () => {
        holder.close();
        await Promise.all([close(api), close(probes), self?.close()]);
      },
    };
  } catch (err) {
    holder.close();
    await self?.close().catch(() => undefined);
    await Promise.all([close(api), close(probes)]).catch(() => undefined);
    throw err;
  }
}
