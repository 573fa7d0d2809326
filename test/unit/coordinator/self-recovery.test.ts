// The reference Coordinator's own recovery (--recovery self, the guide's mechanism) and its
// floor mode: the rules as tables, then real Coordinators on loopback that recover from each
// other over their own endpoint, with tokens signed as the apiserver signs them.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  liveMember,
  listedPods,
  recoverySources,
  type ListedPod,
} from "../../../src/coordinator/self-recovery-rules.ts";
import {
  startCoordinator,
  type RecoveryMode,
  type RunningCoordinator,
} from "../../../src/coordinator/server.ts";
import { createPodTokenVerifier, cachedJwksSource } from "../../../src/identity/index.ts";
import { SELF_RECOVERY_AUDIENCE } from "../../../src/names.ts";
import { readBundle } from "../../../src/state/store.ts";
import { ISSUER, jwks, podToken, signingKey, type PodClaims, type SigningKey } from "../identity/issuer.ts";

const pod = (name: string, over: Partial<ListedPod> = {}): ListedPod => ({
  name,
  uid: `uid-${name}`,
  ip: "10.0.0.1",
  ready: true,
  deleting: false,
  ...over,
});

describe("recoverySources", () => {
  it.each<[string, ListedPod[], string[]]>([
    ["Ready peers, lowest ordinal first", [pod("c-10"), pod("c-2"), pod("c-0")], ["c-0", "c-2", "c-10"]],
    ["not itself", [pod("c-1"), pod("c-0")], ["c-0"]],
    ["not a pod that is not Ready", [pod("c-0", { ready: false }), pod("c-2")], ["c-2"]],
    ["not a pod being deleted", [pod("c-0", { deleting: true }), pod("c-2")], ["c-2"]],
    ["not a pod without an address", [pod("c-0", { ip: "" }), pod("c-2")], ["c-2"]],
    ["not another StatefulSet's pod", [pod("cx-0"), pod("other-0"), pod("c-2")], ["c-2"]],
    ["none", [], []],
  ])("%s", (_, pods, names) => {
    expect(recoverySources("c-1", pods).map((p) => p.name)).toEqual(names);
  });
});

describe("liveMember", () => {
  const caller = { namespace: "ns", serviceAccount: "c", podName: "c-1", podUid: "uid-c-1" };
  it.each<[string, ListedPod[], string]>([
    ["the very pod, even not Ready (it is recovering)", [pod("c-1", { ready: false })], "allowed"],
    ["a pod that is gone", [pod("c-0")], "NotFound"],
    [
      "a pod of that name with another uid (a token outlives its pod)",
      [pod("c-1", { uid: "new" })],
      "UidMismatch",
    ],
    ["a pod being deleted", [pod("c-1", { deleting: true })], "Terminating"],
  ])("%s", (_, pods, expected) => {
    const decision = liveMember(caller, pods);
    expect(decision.kind === "denied" ? decision.reason : decision.kind).toBe(expected);
  });
});

describe("listedPods", () => {
  it("reads name, uid, IP, Ready and deletion from a PodList", () => {
    const list = {
      items: [
        {
          metadata: { name: "c-0", uid: "u0" },
          status: { podIP: "10.0.0.5", conditions: [{ type: "Ready", status: "True" }] },
        },
        {
          metadata: { name: "c-1", uid: "u1", deletionTimestamp: "2026-01-01T00:00:00Z" },
          status: { conditions: [{ type: "Ready", status: "False" }] },
        },
        { metadata: { name: "nameless-uid" } },
      ],
    };
    expect(listedPods(list)).toEqual([
      { name: "c-0", uid: "u0", ip: "10.0.0.5", ready: true, deleting: false },
      { name: "c-1", uid: "u1", ip: "", ready: false, deleting: true },
    ]);
  });
  it("refuses what is not a pod list", () => {
    expect(() => listedPods({ kind: "Status" })).toThrow(/not a pod list/);
  });
});

const logger = pino({ level: "silent" });
let key: SigningKey;
let root: string;
const running: RunningCoordinator[] = [];
/** The pods that every Coordinator here lists, as the apiserver would show them. */
let pods: ListedPod[];

beforeAll(async () => {
  key = await signingKey("ES256");
});
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "cha-self-recovery-"));
  pods = [];
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.close()));
  await rm(root, { recursive: true, force: true });
});

const identity = (podName: string): PodClaims => ({
  namespace: "default",
  serviceAccount: "coordinator",
  podName,
  podUid: `uid-${podName}`,
});

async function start(
  podName: string,
  opts: { peerPort?: number; tokenFor?: PodClaims; audience?: string; mode?: "self" | "floor" } = {},
) {
  const self = identity(podName);
  const recovery: RecoveryMode =
    opts.mode === "floor"
      ? { mode: "floor" }
      : {
          mode: "self",
          self,
          port: 0,
          peerPort: opts.peerPort,
          periodMs: 50,
          listPods: async () => pods,
          verifier: createPodTokenVerifier({
            issuer: ISSUER,
            audience: SELF_RECOVERY_AUDIENCE,
            keys: cachedJwksSource(async () => jwks(key)),
          }),
          token: () =>
            podToken(key, { audience: opts.audience ?? SELF_RECOVERY_AUDIENCE, pod: opts.tokenFor ?? self }),
        };
  const c = await startCoordinator({
    stateDir: join(root, podName),
    apiPort: 0,
    probePort: 0,
    host: "127.0.0.1",
    logger,
    pollMs: 50,
    commit: async () => ({ kind: "unavailable", error: "no sidecar in this test" }),
    recovery,
  });
  running.push(c);
  return c;
}

const readiness = (c: RunningCoordinator) =>
  fetch(`http://127.0.0.1:${c.probePort}/probe/readiness`).then((r) => r.status);

async function eventually(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("--recovery self", () => {
  it("a new pod recovers the state from a Ready peer over its own endpoint, and is ready only then", async () => {
    const first = await start("coordinator-0");
    expect(await readiness(first)).toBe(503);
    const init = await first.holder.initialize({ policies: ["p"] });
    expect(init.kind).toBe("initialized");
    expect(await readiness(first)).toBe(200);
    pods = [
      pod("coordinator-0", { ip: "127.0.0.1" }),
      pod("coordinator-1", { ip: "127.0.0.1", ready: false }),
    ];

    const second = await start("coordinator-1", { peerPort: first.selfRecoveryPort });
    await eventually(async () => (await readiness(second)) === 200);
    expect(await readBundle(join(root, "coordinator-1"))).toEqual(
      await readBundle(join(root, "coordinator-0")),
    );
  });

  it("a pod that is not listed (gone, or a stranger with a member's name) gets nothing", async () => {
    const first = await start("coordinator-0");
    await first.holder.initialize({ policies: ["p"] });
    // coordinator-1's token, but the listed coordinator-1 is another pod (another uid).
    pods = [pod("coordinator-0", { ip: "127.0.0.1" }), pod("coordinator-1", { uid: "someone-else" })];
    const second = await start("coordinator-1", { peerPort: first.selfRecoveryPort });
    await new Promise((r) => setTimeout(r, 400));
    expect(await readiness(second)).toBe(503);
    expect((await readBundle(join(root, "coordinator-1"))).files).toEqual([]);
  });

  it("a token for another audience (the sidecar's peers') is refused", async () => {
    const first = await start("coordinator-0");
    await first.holder.initialize({ policies: ["p"] });
    pods = [pod("coordinator-0", { ip: "127.0.0.1" }), pod("coordinator-1", { ready: false })];
    const second = await start("coordinator-1", {
      peerPort: first.selfRecoveryPort,
      audience: "coordinator-ha-peer",
    });
    await new Promise((r) => setTimeout(r, 400));
    expect(await readiness(second)).toBe(503);
  });

  it("with no Ready peer, the first pod waits for its first set", async () => {
    pods = [pod("coordinator-0", { ip: "127.0.0.1", ready: false })];
    const first = await start("coordinator-0");
    await new Promise((r) => setTimeout(r, 200));
    expect(await readiness(first)).toBe(503);
    await first.holder.initialize({ policies: ["p"] });
    expect(await readiness(first)).toBe(200);
  });
});

describe("--recovery floor", () => {
  it("is ready at start, with no state", async () => {
    const c = await start("coordinator-0", { mode: "floor" });
    expect(await readiness(c)).toBe(200);
    expect(c.selfRecoveryPort).toBeUndefined();
  });
});
