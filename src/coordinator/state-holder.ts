// Holds the Coordinator's state, which lives only in the state directory (DESIGN.md, the
// state-directory contract). At startup it reads the directory. While it holds nothing, it
// watches the directory and picks up state that appears there later: the recovery sidecar
// may find an initialized peer after this app started alone and uninitialized. fs.watch
// can miss events (some volume types, an overflowing queue), so a periodic poll backs it up.
import { watch, type FSWatcher } from "node:fs";
import type { Logger } from "pino";
import { BundleError, bundleDigest, createBundle } from "../state/bundle.ts";
import { readBundle, StateExistsError, writeBundle } from "../state/store.ts";
import {
  decodeState,
  encodeState,
  newState,
  publicKeyPem,
  STATE_FILE,
  type CoordinatorState,
  type Manifest,
} from "./state.ts";

export interface Initialized {
  state: CoordinatorState;
  /** Digest of the state directory's bundle, as the sidecar computes it. */
  digest: string;
  publicKey: string;
}

export type Status =
  | { kind: "uninitialized" }
  | { kind: "initialized"; value: Initialized }
  /** The directory holds files this Coordinator cannot use; it never overwrites them. */
  | { kind: "unusable"; reason: string };

export type InitializeResult =
  { kind: "initialized"; value: Initialized } | { kind: "exists"; status: Status };

export interface StateHolder {
  status(): Status;
  /** Writes a fresh state for `manifest`, unless the directory already holds state. */
  initialize(manifest: Manifest): Promise<InitializeResult>;
  close(): void;
}

export interface StateHolderOptions {
  dir: string;
  logger: Logger;
  /** How often to re-read the directory while uninitialized (default 2 s). */
  pollMs?: number;
}

export async function openStateHolder(opts: StateHolderOptions): Promise<StateHolder> {
  const { dir, logger } = opts;
  // `as`: closures reassign it, so TypeScript must not narrow it to the initial value.
  let status = { kind: "uninitialized" } as Status;
  let watcher: FSWatcher | undefined;
  let poll: NodeJS.Timeout | undefined;
  let debounce: NodeJS.Timeout | undefined;
  // One load or write at a time: an initialize and a picked-up recovery must not interleave.
  let queue: Promise<unknown> = Promise.resolve();
  const serialized = <T>(job: () => Promise<T>): Promise<T> => {
    const run = queue.then(job);
    queue = run.catch(() => undefined);
    return run;
  };

  const stopWatching = () => {
    watcher?.close();
    clearInterval(poll);
    clearTimeout(debounce);
    watcher = undefined;
    poll = undefined;
  };

  const setStatus = (next: Status, how: string) => {
    if (next.kind === "initialized" && status.kind !== "initialized") {
      logger.info({ digest: next.value.digest, how }, "coordinator initialized");
      stopWatching();
    } else if (next.kind === "unusable" && (status.kind !== "unusable" || status.reason !== next.reason)) {
      logger.error({ reason: next.reason }, "the state directory holds state this coordinator cannot use");
    }
    status = next;
  };

  const load = () =>
    serialized(async () => {
      if (status.kind === "initialized") return;
      try {
        setStatus(await readStatus(dir), "read from the state directory");
      } catch (err) {
        // A transient read error (a file vanishing mid-walk) is retried by the next poll.
        logger.warn({ err: String(err) }, "reading the state directory failed");
      }
    });

  await load();
  if (status.kind !== "initialized") {
    logger.info({ dir }, "no state yet; watching the state directory");
    try {
      watcher = watch(dir, () => {
        clearTimeout(debounce);
        debounce = setTimeout(() => void load(), 50);
      });
      watcher.on("error", (err) =>
        logger.warn({ err: String(err) }, "watching the state directory failed; polling"),
      );
    } catch (err) {
      logger.warn({ err: String(err) }, "cannot watch the state directory; polling only");
    }
    poll = setInterval(() => void load(), opts.pollMs ?? 2000);
  }

  return {
    status: () => status,
    initialize: (manifest) =>
      serialized(async (): Promise<InitializeResult> => {
        if (status.kind !== "uninitialized") return { kind: "exists", status };
        const state = newState(manifest);
        const bundle = createBundle([{ path: STATE_FILE, content: encodeState(state) }]);
        try {
          await writeBundle(dir, bundle);
        } catch (err) {
          if (!(err instanceof StateExistsError)) throw err;
          // State appeared since the last look (a recovery); it wins, ours is discarded.
          setStatus(await readStatus(dir), "read from the state directory");
          return { kind: "exists", status };
        }
        // The directory held no state, so this file is the whole bundle.
        const value: Initialized = {
          state,
          digest: bundleDigest(bundle),
          publicKey: publicKeyPem(state.seed),
        };
        setStatus({ kind: "initialized", value }, "set by the user");
        return { kind: "initialized", value };
      }),
    close: stopWatching,
  };
}

async function readStatus(dir: string): Promise<Status> {
  let bundle;
  try {
    bundle = await readBundle(dir);
  } catch (err) {
    // A symlink or an oversized file will not go away by itself; say so, and keep looking.
    if (err instanceof BundleError) return { kind: "unusable", reason: err.message };
    throw err;
  }
  if (bundle.files.length === 0) return { kind: "uninitialized" };
  const file = bundle.files.find((f) => f.path === STATE_FILE);
  if (!file) {
    return { kind: "unusable", reason: `the state directory holds files, but no ${STATE_FILE}` };
  }
  try {
    const state = decodeState(file.content);
    return {
      kind: "initialized",
      value: { state, digest: bundleDigest(bundle), publicKey: publicKeyPem(state.seed) },
    };
  } catch (err) {
    return { kind: "unusable", reason: (err as Error).message };
  }
}
