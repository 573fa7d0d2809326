// Holds the Coordinator's state, which lives only in the state directory (DESIGN.md, the
// state-directory contract). At startup it reads the directory, and then it keeps watching
// it: while it holds nothing, the recovery sidecar may find an initialized peer after this
// app started alone; once it holds state, the sidecar swaps in a newer committed state when
// this pod fell behind (an update through another replica), and the app reloads it. fs.watch
// can miss events (some volume types, an overflowing queue), so a periodic poll backs it up.
//
// The first `set` writes the directory directly (no-clobber); the sidecar proposes that
// state as the StatefulSet's first. An update is committed through the sidecar's local
// commit API, and it is the Coordinator's state only once the sidecar says it is committed.
import { watch, type FSWatcher } from "node:fs";
import type { Logger } from "pino";
import type { CommitAnswer } from "../recovery/commit-client.ts";
import { BundleError, bundleDigest, createBundle, type Bundle } from "../state/bundle.ts";
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
import { decideUpdate, type ManifestRequest } from "./update.ts";

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

export type UpdateResult =
  | { kind: "updated"; value: Initialized }
  /** The manifest was the current one already. */
  | { kind: "same"; value: Initialized }
  | { kind: "refused"; status: 400 | 403 | 409 | 503; error: string; head?: string | null }
  | { kind: "not-initialized"; status: Exclude<Status, { kind: "initialized" }> };

export interface StateHolder {
  status(): Status;
  /** Writes a fresh state for `manifest`, unless the directory already holds state. */
  initialize(manifest: Manifest): Promise<InitializeResult>;
  /** Replaces the manifest of an initialized state, committed through the sidecar. */
  update(request: ManifestRequest): Promise<UpdateResult>;
  close(): void;
}

export interface StateHolderOptions {
  dir: string;
  logger: Logger;
  /** How often to re-read the directory (default 2 s). */
  pollMs?: number;
  /** Commits an update through the sidecar (commitUpdate on the local commit API). */
  commit(parent: string, bundle: Bundle): Promise<CommitAnswer>;
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
    } else if (
      next.kind === "initialized" &&
      status.kind === "initialized" &&
      next.value.digest !== status.value.digest
    ) {
      logger.info(
        {
          digest: next.value.digest,
          previous: status.value.digest,
          how,
          history: next.value.state.history.length,
        },
        "coordinator state replaced by a newer one",
      );
    } else if (next.kind === "unusable" && (status.kind !== "unusable" || status.reason !== next.reason)) {
      logger.error({ reason: next.reason }, "the state directory holds state this coordinator cannot use");
    }
    status = next;
  };

  let loadPending = false;
  const load = () => {
    // Loads queue behind a commit that waits for its quorum; one waiting load is enough.
    if (loadPending) return queue;
    loadPending = true;
    return serialized(async () => {
      loadPending = false;
      try {
        const next = await readStatus(dir);
        if (next.kind === "initialized" || status.kind !== "initialized") {
          setStatus(next, "read from the state directory");
        } else if (next.kind === "unusable") {
          // Keep serving what was committed; the sidecar puts an unusable write right.
          logger.warn(
            { reason: next.reason },
            "the state directory holds unusable state; keeping the loaded one",
          );
        }
      } catch (err) {
        // A transient read error (a file vanishing mid-walk) is retried by the next poll.
        logger.warn({ err: String(err) }, "reading the state directory failed");
      }
    });
  };

  await load();
  {
    if (status.kind !== "initialized") logger.info({ dir }, "no state yet; watching the state directory");
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
    update: (request) =>
      serialized(async (): Promise<UpdateResult> => {
        if (status.kind !== "initialized") return { kind: "not-initialized", status };
        const current = status.value;
        const decision = decideUpdate(current, request);
        if (decision.kind === "same") return { kind: "same", value: current };
        if (decision.kind === "refuse") {
          logger.warn({ status: decision.status, reason: decision.error }, "refused a manifest update");
          return { kind: "refused", status: decision.status, error: decision.error, head: current.digest };
        }
        const bundle = createBundle([{ path: STATE_FILE, content: encodeState(decision.state) }]);
        const digest = bundleDigest(bundle);
        const fields = { parent: current.digest, digest, ownerKey: decision.keyDigest };
        logger.info(fields, "committing a manifest update through the sidecar");
        const answer = await opts.commit(current.digest, bundle);
        if (answer.kind === "committed") {
          const value: Initialized = { state: decision.state, digest, publicKey: current.publicKey };
          setStatus({ kind: "initialized", value }, "updated by a workload owner");
          return { kind: "updated", value };
        }
        logger.warn(
          { ...fields, outcome: answer.kind, reason: answer.error },
          "the update was not committed",
        );
        if (answer.kind === "conflict") {
          return {
            kind: "refused",
            status: 409,
            error: `${answer.error}; the Coordinator keeps the committed state. See it with \`coordinator-ha verify\` and run \`coordinator-ha set\` again`,
            head: answer.head,
          };
        }
        // "invalid" means our own request was wrong: the user can do nothing but retry later.
        return {
          kind: "refused",
          status: 503,
          error: `the update was not committed (${answer.error}); nothing changed, try again`,
        };
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
