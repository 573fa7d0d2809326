// What every fault test checks after (and, for the first two, while) the fault:
//   - no pod Ready without the current state: a Ready pod's `coordinator-ha verify` digest is the
//     StateHead's committed head; during the fault, a state that a commit superseded is allowed
//     for at most STALENESS_BOUND_MS after that commit (README, "the staleness window": the pods
//     that held the proposal swap it in, the others leave the endpoint once the handler turns
//     their gate False and the kubelet their Ready), never later and never a state outside the
//     committed history;
//   - no gate flipped without a verified confirmation: a pod whose gate is True holds that head
//     too (the handler only flips it on a confirmation it verified against the head), within
//     the same window;
//   - no partial state: every pod that answers `verify` at all verifies (signature and digest over
//     the whole bundle), and none answers another public key;
//   - every pod Ready again once the fault ends.
// The sampler runs during the fault and reads the user API's /v1/manifest (cheap), the final
// check runs the real CLI.
import { request } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { COORDINATOR_API_PORT } from "../../../src/names.ts";
import { isReady, recovered, sameKey, verify } from "../workflow/coordinator.ts";
import type { Shell } from "../workflow/shell.ts";

interface StateHead {
  spec?: { committed?: { digest?: string; at?: string } | null; history?: string[] };
}

/**
 * How long after a commit a Ready (or gated) pod may still serve the state it superseded: the
 * README's staleness window, with room for a loaded machine (measured: docs/reliability.md).
 */
export const STALENESS_BOUND_MS = 5000;

async function readHead(kc: KubeConfig, namespace: string, name: string): Promise<StateHead> {
  return (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
    group: "coordinator-ha.io",
    version: "v1alpha1",
    namespace,
    plural: "stateheads",
    name,
  })) as StateHead;
}

/** The StateHead's committed digest (the acknowledged head), or undefined. */
export async function committedHead(
  kc: KubeConfig,
  namespace: string,
  name: string,
): Promise<string | undefined> {
  return (await readHead(kc, namespace, name)).spec?.committed?.digest ?? undefined;
}

/** The committed history (oldest first): an acknowledged update is lost if it is not in it. */
export async function committedHistory(kc: KubeConfig, namespace: string, name: string): Promise<string[]> {
  return (await readHead(kc, namespace, name)).spec?.history ?? [];
}

/** GET /v1/manifest's digest on a fresh connection; undefined when the pod does not answer 200. */
export function servedDigest(ip: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = request(
      { host: ip, port: COORDINATOR_API_PORT, path: "/v1/manifest", agent: false, timeout: 3000 },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("error", () => resolve(undefined));
        res.on("end", () => {
          try {
            resolve(res.statusCode === 200 ? (JSON.parse(text) as { digest?: string }).digest : undefined);
          } catch {
            resolve(undefined);
          }
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve(undefined));
    req.end();
  });
}

export interface Violation {
  at: string;
  pod: string;
  what: string;
}

export interface Sampler {
  /** Stops sampling and returns what it saw. */
  stop(): Promise<{
    samples: number;
    violations: Violation[];
    /** Samples that served a state superseded less than STALENESS_BOUND_MS before. */
    stale: number;
    /** The longest time after a commit at which a sampled pod still served what it superseded. */
    maxStaleMs: number;
  }>;
}

/**
 * Every second, for every pod that is Ready or whose gate is True: it must serve the committed
 * head (read before and after the pod, so that an update committed meanwhile is not a
 * violation), or a state of the committed history that a commit superseded less than
 * STALENESS_BOUND_MS ago. A commit's time is the StateHead's `committed.at` when the sampler
 * sees that head, else the time it first saw a later one (later, so lenient by at most a
 * sample; updates here are seconds apart, so each head is seen).
 */
export function sampleInvariants(kc: KubeConfig, namespace: string, statefulSet: string): Sampler {
  const core = kc.makeApiClient(CoreV1Api);
  const violations: Violation[] = [];
  let samples = 0;
  let stale = 0;
  let maxStaleMs = 0;
  let running = true;
  /** When each committed digest became the head, as far as the sampler saw it. */
  const committedAt = new Map<string, number>();
  let history: string[] = [];
  const head = async () => {
    const spec = (await readHead(kc, namespace, statefulSet)).spec;
    const digest = spec?.committed?.digest ?? undefined;
    if (digest && !committedAt.has(digest)) {
      committedAt.set(digest, spec?.committed?.at ? Date.parse(spec.committed.at) : Date.now());
    }
    history = spec?.history ?? history;
    return digest;
  };
  /** When `digest` stopped being the head: the commit time of its successor in the history. */
  const supersededAt = (digest: string): number | undefined => {
    const i = history.indexOf(digest);
    if (i === -1) return undefined;
    const later = history.slice(i + 1).find((d) => committedAt.has(d));
    return later === undefined ? undefined : committedAt.get(later);
  };
  const loop = (async () => {
    while (running) {
      try {
        const before = await head();
        const pods = (
          await core.listNamespacedPod({ namespace, labelSelector: `app.kubernetes.io/name=${statefulSet}` })
        ).items;
        for (const pod of pods) {
          const gated = isReady(pod) || recovered(pod)?.status === "True";
          const ip = pod.status?.podIP;
          if (!gated || !ip || pod.metadata?.deletionTimestamp) continue;
          const served = await servedDigest(ip);
          const after = await head();
          const at = Date.now();
          samples++;
          // A pod killed meanwhile answers nothing: the kubelet has not yet seen it; not a state violation.
          if (served === undefined || served === before || served === after) continue;
          const since = supersededAt(served);
          const late = since === undefined ? undefined : at - since;
          if (late !== undefined && late <= STALENESS_BOUND_MS) {
            stale++;
            maxStaleMs = Math.max(maxStaleMs, late);
            continue;
          }
          violations.push({
            at: new Date(at).toISOString(),
            pod: pod.metadata!.name!,
            what:
              `Ready=${isReady(pod)} gate=${recovered(pod)?.status} serves ${served}, head ${before}..${after}` +
              (late === undefined ? " (not in the committed history)" : ` (superseded ${late} ms before)`),
          });
        }
      } catch {
        // The apiserver itself may be the fault: sample again.
      }
      await sleep(1000);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { samples, violations, stale, maxStaleMs };
    },
  };
}

/**
 * The final check, with the real CLI: every pod Ready, gate True, verifying, with `publicKey`, on
 * the committed head. Returns the problems (empty when all holds).
 */
export async function checkSettled(
  sh: Shell,
  kc: KubeConfig,
  namespace: string,
  statefulSet: string,
  pods: string[],
  publicKey: string,
): Promise<string[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const head = await committedHead(kc, namespace, statefulSet);
  const problems: string[] = [];
  if (!head) problems.push("the StateHead has no committed head");
  for (const name of pods) {
    const pod: V1Pod = await core.readNamespacedPod({ namespace, name });
    if (!isReady(pod)) problems.push(`${name} is not Ready`);
    if (recovered(pod)?.status !== "True") problems.push(`${name}'s gate is ${recovered(pod)?.status}`);
    const { result, state } = await verify(sh, `${pod.status?.podIP}:${COORDINATOR_API_PORT}`, {
      check: false,
    });
    if (!state) problems.push(`${name}: verify failed: ${result.output.slice(0, 300)}`);
    else {
      if (state.digest !== head) problems.push(`${name} holds ${state.digest}, the head is ${head}`);
      if (!sameKey(state.publicKey, publicKey)) problems.push(`${name} answers another public key`);
    }
  }
  return problems;
}

/** "invariant samples N", and the stale answers within the window when there were any. */
export function formatSamples(sampled: Awaited<ReturnType<Sampler["stop"]>>): string {
  const stale =
    sampled.stale > 0
      ? ` (${sampled.stale} served the state a commit had superseded, at most ${sampled.maxStaleMs} ms after it)`
      : "";
  return `invariant samples ${sampled.samples}${stale}`;
}
