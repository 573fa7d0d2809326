// The Coordinator as its user sees it: `coordinator-ha set` and `verify` (the project's CLI),
// what they print, and the pod condition that the readiness gate waits for.
import { createPublicKey } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod, V1PodCondition } from "@kubernetes/client-node";
import { RECOVERED_CONDITION } from "../../../src/names.ts";
import type { CommandResult, RunOptions, Shell } from "./shell.ts";

export interface CoordinatorState {
  digest: string;
  /** PEM, as the Coordinator's API returns it. */
  publicKey: string;
}

/** What `set` and `verify` print: the state digest and the public key. */
export function parseState(output: string): CoordinatorState {
  const digest = /state digest: (sha256:[0-9a-f]{64})/.exec(output)?.[1];
  const pem = /(-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----)/.exec(output)?.[1];
  if (!digest || !pem) throw new Error(`no state digest and public key in:\n${output}`);
  const publicKey = `${pem
    .split("\n")
    .map((l) => l.trim())
    .join("\n")}\n`;
  createPublicKey(publicKey);
  return { digest, publicKey };
}

export function sameKey(a: string, b: string): boolean {
  return createPublicKey(a).equals(createPublicKey(b));
}

/**
 * A scratch directory for the user's files (the manifest, the expected key), so that the
 * commands can name them the way the guide does: `-m manifest.json`.
 */
export class UserFiles {
  readonly dir = mkdtempSync(join(tmpdir(), "cha-user-"));

  write(name: string, content: string): string {
    const file = join(this.dir, name);
    writeFileSync(file, content);
    return file;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** `coordinator-ha set -c ADDRESS -m FILE`. */
export async function set(sh: Shell, address: string, manifestFile: string, opts: RunOptions = {}) {
  const result = await sh.run(`coordinator-ha set -c ${address} -m ${manifestFile}`, opts);
  return { result, state: result.code === 0 ? parseState(result.stdout) : undefined };
}

/** `coordinator-ha verify`: the state the Coordinator at ADDRESS holds, or why it holds none. */
export async function verify(
  sh: Shell,
  address: string,
  opts: RunOptions & { expectKeyFile?: string } = {},
): Promise<{ result: CommandResult; state?: CoordinatorState }> {
  const expect = opts.expectKeyFile ? ` --expect-public-key ${opts.expectKeyFile}` : "";
  const result = await sh.run(`coordinator-ha verify -c ${address}${expect}`, opts);
  return { result, state: result.code === 0 ? parseState(result.stdout) : undefined };
}

export function condition(pod: V1Pod, type: string): V1PodCondition | undefined {
  return pod.status?.conditions?.find((c) => c.type === type);
}

export const recovered = (pod: V1Pod) => condition(pod, RECOVERED_CONDITION);
export const isReady = (pod: V1Pod) => condition(pod, "Ready")?.status === "True";
