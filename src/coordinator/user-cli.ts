// The user's side of the reference Coordinator: `coordinator-ha set` and `coordinator-ha
// verify`. Modelled on Contrast's `contrast set`: the manifest is checked locally before it
// is sent, an unreachable Coordinator is retried every second until a deadline (a fresh
// pod may not listen yet), and the outcome is one clear line plus what the user needs next.
// With a workload owner key, `set` updates an initialized Coordinator: it reads the current
// state digest and signs (that digest, the new manifest) with the key (owner-key.ts).
//
// Exit codes: 0 done; 1 the Coordinator answered, but not as asked (already initialized
// with another manifest, not initialized, another public key); 2 nothing could be asked
// (bad input, unreachable, an answer that is not the Coordinator's API).
import { readFile } from "node:fs/promises";
import { createPublicKey, type KeyObject } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { isDigest } from "../state/bundle.ts";
import { OwnerKeyError, readOwnerPrivateKey, signUpdate } from "./owner-key.ts";
import { isManifest, type Manifest, type Transition } from "./state.ts";
import type { ManifestResponse } from "./user-api.ts";

export const ExitCode = { Ok: 0, Failed: 1, CannotAsk: 2 } as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface Output {
  out(line: string): void;
  err(line: string): void;
}

export interface SetOptions {
  coordinator: string;
  manifestFile: string;
  /** A workload owner's private key (PEM file): update an initialized Coordinator. */
  ownerKeyFile?: string;
  /** Give up waiting for the Coordinator after this long (default 180 s, as Contrast). */
  timeoutMs?: number;
  retryIntervalMs?: number;
}

export interface VerifyOptions {
  coordinator: string;
  /** PEM text, or the path of a PEM file. */
  expectPublicKey?: string;
}

const REQUEST_TIMEOUT_MS = 10_000;

/** Accepts "host:port" as Contrast's `--coordinator` does, and http(s) URLs. */
export function coordinatorUrl(value: string): URL {
  const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`--coordinator ${value}: expected host:port or an http(s) URL`);
  }
  return url;
}

export async function runSet(opts: SetOptions, io: Output): Promise<ExitCode> {
  let base: URL;
  let manifest: Manifest;
  let ownerKey: KeyObject | undefined;
  try {
    base = coordinatorUrl(opts.coordinator);
    manifest = await readManifest(opts.manifestFile);
    if (opts.ownerKeyFile !== undefined) ownerKey = await readOwnerKey(opts.ownerKeyFile);
  } catch (err) {
    io.err(`✘ ${(err as Error).message}`);
    return ExitCode.CannotAsk;
  }
  const endpoint = new URL("/v1/manifest", base);
  const post = (body: unknown) =>
    call(endpoint, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const deadline = Date.now() + (opts.timeoutMs ?? 180_000);
  let waiting = false;
  // An update sent whose answer was lost may be committed after all (its quorum formed later).
  let lostUpdate = false;
  for (;;) {
    let answer: CallResult;
    if (ownerKey) {
      // Read the state to sign against it; an uninitialized Coordinator is initialized.
      const current = await call(endpoint, { method: "GET" });
      const body =
        current.kind === "answer" && current.status === 200 ? manifestResponse(current.body) : undefined;
      if (current.kind === "answer" && current.status === 200 && !body) return notTheApi(base, current, io);
      if (body && isDeepStrictEqual(body.manifest, manifest)) {
        io.out(`✔ The Coordinator at ${base.origin} already holds this manifest.`);
        printState(body, io);
        return ExitCode.Ok;
      }
      if (body) {
        const update = signUpdate(ownerKey, body.digest, manifest);
        const posted = await post({ manifest, update });
        // An unreachable answer may hide a committed update: the next round reads it back.
        if (posted.kind === "answer") return reportUpdate(base, body.digest, posted, io);
        lostUpdate = true;
        answer = posted;
      } else {
        answer = current.kind === "answer" && current.status === 503 ? await post({ manifest }) : current;
      }
    } else {
      answer = await post({ manifest });
    }
    if (answer.kind === "answer" && ![502, 503, 504].includes(answer.status)) {
      return reportSet(base, manifest, answer, io);
    }
    const why = answer.kind === "answer" ? `HTTP ${answer.status}` : answer.reason;
    if (Date.now() >= deadline) {
      io.err(`✘ The Coordinator at ${base.origin} did not answer in time (last: ${why}).`);
      if (lostUpdate) {
        io.err(
          `  An update was sent and its answer lost: it may still be committed. ` +
            `"coordinator-ha verify -c ${opts.coordinator}" shows the state the Coordinator holds.`,
        );
      }
      return ExitCode.CannotAsk;
    }
    if (!waiting) io.out(`Waiting for the Coordinator at ${base.origin} (${why}) …`);
    waiting = true;
    await new Promise((resolve) => setTimeout(resolve, opts.retryIntervalMs ?? 1000));
  }
}

async function reportSet(base: URL, manifest: Manifest, answer: Answer, io: Output): Promise<ExitCode> {
  if (answer.status === 201) {
    const body = manifestResponse(answer.body);
    if (!body) return notTheApi(base, answer, io);
    io.out(`✔ Manifest set at ${base.origin}.`);
    printState(body, io);
    return ExitCode.Ok;
  }
  if (answer.status === 409) {
    // Idempotent like a re-run deploy script: the same manifest already set is success. It
    // also covers a first attempt whose answer was lost before a retry.
    const current = await call(new URL("/v1/manifest", base), { method: "GET" });
    const body =
      current.kind === "answer" && current.status === 200 ? manifestResponse(current.body) : undefined;
    if (body && isDeepStrictEqual(body.manifest, manifest)) {
      io.out(`✔ The Coordinator at ${base.origin} already holds this manifest.`);
      printState(body, io);
      return ExitCode.Ok;
    }
    io.err(
      `✘ The Coordinator at ${base.origin} is already initialized with another manifest` +
        `${body ? ` (state ${body.digest})` : ""}. See it with \`coordinator-ha verify\`; a workload owner whose key its manifest lists updates it with \`coordinator-ha set --workload-owner-key FILE\`.`,
    );
    return ExitCode.Failed;
  }
  io.err(`✘ The Coordinator refused the manifest (HTTP ${answer.status}): ${errorOf(answer.body)}`);
  return ExitCode.Failed;
}

async function reportUpdate(base: URL, parent: string, answer: Answer, io: Output): Promise<ExitCode> {
  if (answer.status === 200) {
    const body = manifestResponse(answer.body);
    if (!body) return notTheApi(base, answer, io);
    io.out(`✔ Manifest updated at ${base.origin} (committed; it replaced state ${parent}).`);
    printState(body, io);
    return ExitCode.Ok;
  }
  const what: Readonly<Record<number, string>> = {
    400: "refused the update as malformed",
    403: "refused the workload owner key",
    409: "refused the update",
    503: "did not commit the update",
  };
  io.err(
    `✘ The Coordinator at ${base.origin} ${what[answer.status] ?? `answered HTTP ${answer.status}`}: ${errorOf(answer.body)}`,
  );
  return ExitCode.Failed;
}

export async function runVerify(opts: VerifyOptions, io: Output): Promise<ExitCode> {
  let base: URL;
  let expected: KeyObject | undefined;
  try {
    base = coordinatorUrl(opts.coordinator);
    if (opts.expectPublicKey !== undefined) expected = await readPublicKey(opts.expectPublicKey);
  } catch (err) {
    io.err(`✘ ${(err as Error).message}`);
    return ExitCode.CannotAsk;
  }
  const answer = await call(new URL("/v1/manifest", base), { method: "GET" });
  if (answer.kind === "unreachable") {
    io.err(`✘ Cannot reach the Coordinator at ${base.origin}: ${answer.reason}`);
    return ExitCode.CannotAsk;
  }
  if (answer.status === 503) {
    io.err(`✘ The Coordinator at ${base.origin} is not initialized: ${errorOf(answer.body)}`);
    return ExitCode.Failed;
  }
  if (answer.status !== 200) {
    io.err(`✘ The Coordinator at ${base.origin} answered HTTP ${answer.status}: ${errorOf(answer.body)}`);
    return ExitCode.Failed;
  }
  const body = manifestResponse(answer.body);
  if (!body) return notTheApi(base, answer, io);
  io.out(`✔ The Coordinator at ${base.origin} is initialized.`);
  printState(body, io);
  io.out("  manifest:");
  for (const line of JSON.stringify(body.manifest, null, 2).split("\n")) io.out(`    ${line}`);
  if (!expected) return ExitCode.Ok;
  if (!expected.equals(createPublicKey(body.publicKey))) {
    io.err("✘ The Coordinator's public key is not the expected key.");
    return ExitCode.Failed;
  }
  io.out("✔ The public key is the expected key.");
  return ExitCode.Ok;
}

type Answer = { kind: "answer"; status: number; body: unknown };
type CallResult = Answer | { kind: "unreachable"; reason: string };

async function call(url: URL, init: RequestInit): Promise<CallResult> {
  let res: globalThis.Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { kind: "unreachable", reason: cause?.code ?? cause?.message ?? (err as Error).message };
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: keep the text for the error message.
  }
  return { kind: "answer", status: res.status, body };
}

function manifestResponse(body: unknown): ManifestResponse | undefined {
  if (!isManifest(body)) return undefined;
  const { manifest, digest, publicKey, history } = body;
  if (!isManifest(manifest) || !isDigest(digest) || typeof publicKey !== "string") return undefined;
  try {
    createPublicKey(publicKey);
  } catch {
    return undefined;
  }
  // A Coordinator from before updates has no history.
  const transitions = Array.isArray(history) ? (history as Transition[]) : [];
  return { manifest, digest, publicKey, history: transitions };
}

function printState(body: ManifestResponse, io: Output): void {
  io.out(`  state digest: ${body.digest}`);
  const latest = body.history.at(-1);
  if (latest) {
    io.out(`  history: ${body.history.length} transition${body.history.length === 1 ? "" : "s"}`);
    io.out(`  latest transition: ${latest.previous ?? "(none)"} -> ${latest.new}`);
  }
  io.out("  public key:");
  for (const line of body.publicKey.trimEnd().split("\n")) io.out(`    ${line}`);
}

function notTheApi(base: URL, answer: Answer, io: Output): ExitCode {
  io.err(`✘ ${base.origin} answered HTTP ${answer.status}, but not with the Coordinator's manifest API.`);
  return ExitCode.CannotAsk;
}

function errorOf(body: unknown): string {
  if (isManifest(body) && typeof body["error"] === "string") return body["error"];
  return typeof body === "string" && body.length > 0 ? body.slice(0, 200) : "no reason given";
}

async function readManifest(file: string): Promise<Manifest> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new Error(
      `cannot read the manifest ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      {
        cause: err,
      },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`the manifest ${file} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!isManifest(parsed)) throw new Error(`the manifest ${file} must be a JSON object`);
  return parsed;
}

async function readOwnerKey(file: string): Promise<KeyObject> {
  let pem: string;
  try {
    pem = await readFile(file, "utf8");
  } catch (err) {
    throw new Error(
      `cannot read the workload owner key ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      {
        cause: err,
      },
    );
  }
  try {
    return readOwnerPrivateKey(pem);
  } catch (err) {
    if (!(err instanceof OwnerKeyError)) throw err;
    throw new Error(`the workload owner key ${file}: ${err.message}`, { cause: err });
  }
}

async function readPublicKey(value: string): Promise<KeyObject> {
  const pem = value.trimStart().startsWith("-----BEGIN")
    ? value
    : await readFile(value, "utf8").catch(() => {
        throw new Error(`--expect-public-key: ${value} is neither a PEM public key nor a readable file`);
      });
  try {
    return createPublicKey(pem);
  } catch {
    throw new Error("--expect-public-key: not a PEM public key");
  }
}
