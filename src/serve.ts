// The lifecycle that every long-running subcommand shares (webhook, handler, recovery
// sidecar, reference Coordinator): start, or log why not and exit 1; then on SIGTERM (the
// kubelet) or SIGINT (a terminal) close gracefully and exit 0.
import type { Logger } from "./log.ts";

export interface Closable {
  close(): Promise<void>;
}

/** `what` names the component in the failure line, e.g. "webhook". */
export async function serveUntilSignal(
  what: string,
  logger: Logger,
  start: () => Promise<Closable>,
): Promise<void> {
  const running = await start().catch((err: unknown) => {
    logger.fatal({ err: (err as Error).message }, `${what} failed to start`);
    process.exit(1);
  });
  const stop = (signal: NodeJS.Signals) => {
    logger.info({ signal }, "shutting down");
    void running.close().then(() => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
