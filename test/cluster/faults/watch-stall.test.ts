// Fault: the handler's connection to the apiserver stalls without an error (a proxy between
// them stops forwarding; nothing is closed, nothing is refused). The bound the handler keeps
// (src/kube/pod-cache.ts, pod-list-watch.ts): a watch that delivers nothing, not even the
// server's 20 s timeout or a bookmark, is abandoned after 30 s of silence (the client's
// inactivity timeout) and the cache relists; while no watch is confirmed healthy, /readyz turns
// 503 after at most 90 s (staleAfterMs), so that the Service stops sending confirmations to a
// replica that may decide on an out-of-date pod list. Once the path forwards again, the handler
// is Ready and sees pod changes again without a restart. The handler runs on the host (its
// cluster harness) so that the proxy can sit between it and the real kube-apiserver.
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HandlerEnv, type HandlerProcess } from "../handler/harness.ts";
import { eventually, kubeConfig } from "../kube.ts";
import { startStallProxy, type StallProxy } from "./stall-proxy.ts";

/** The bound the handler documents: /readyz 503 within staleAfterMs (90 s) of the stall. */
const NOT_READY_BOUND_MS = 90_000;
/** The client's inactivity timeout: the stalled watch is given up within this (plus a poll). */
const WATCH_ABANDON_BOUND_MS = 30_000;

describe("fault: the handler's apiserver connection stalls silently", () => {
  const kc = kubeConfig();
  const env = new HandlerEnv(kc);
  let proxy: StallProxy;
  let handler: HandlerProcess;

  beforeAll(async () => {
    await env.setUp("fault-watch");
    await env.createStatefulSet(1);
    const server = new URL(kc.getCurrentCluster()!.server);
    proxy = await startStallProxy({ host: server.hostname, port: Number(server.port) });
    handler = await env.startHandler({ server: proxy.url });
  });
  afterAll(async () => {
    await env.tearDown();
    await proxy?.close();
  });

  it("gives the stalled watch up, turns not ready within its bound, and recovers once the path forwards", async () => {
    const readyz = async () => (await handler.call("GET", "/readyz")).status;
    expect(await readyz()).toBe(200);
    const logsBefore = handler.logs.length;
    const stalledAt = Date.now();
    proxy.stall();

    await eventually("/readyz 503", async () => ((await readyz()) === 200 ? undefined : true), {
      timeoutMs: NOT_READY_BOUND_MS + 30_000,
      intervalMs: 1000,
    });
    const notReadyMs = Date.now() - stalledAt;
    const gaveUp = handler.logs
      .slice(logsBefore)
      .find((l) => typeof l["msg"] === "string" && /watch ended|listing .* failed/.test(l["msg"]));
    const gaveUpMs = typeof gaveUp?.["time"] === "number" ? gaveUp["time"] - stalledAt : undefined;
    console.log(
      `stalled at ${new Date(stalledAt).toISOString()}: first watch/list give-up logged after ${gaveUpMs} ms ` +
        `(${JSON.stringify(gaveUp)}); /readyz 503 after ${notReadyMs} ms; reason ${JSON.stringify((await handler.call("GET", "/readyz")).body)}`,
    );
    expect(gaveUp, "the handler logged that it gave the stalled watch up").toBeDefined();
    expect(gaveUpMs!).toBeLessThanOrEqual(WATCH_ABANDON_BOUND_MS + 5_000);
    expect(notReadyMs).toBeLessThanOrEqual(NOT_READY_BOUND_MS + 5_000);

    // A change made while the handler cannot see it: a new pod.
    await env.apps.patchNamespacedStatefulSetScale({
      namespace: env.namespace,
      name: "coordinator",
      body: [{ op: "replace", path: "/spec/replicas", value: 2 }],
    });
    await eventually("coordinator-1 created", async () => env.getPod("coordinator-1").catch(() => undefined));
    await env.kubeletStatus("coordinator-1", { ready: false, restarts: 0, ip: "10.244.0.201" });
    await sleep(2000);
    const resumedAt = Date.now();
    proxy.resume();
    await eventually("/readyz 200 again", async () => ((await readyz()) === 200 ? true : undefined), {
      timeoutMs: 120_000,
      intervalMs: 500,
    });
    const readyAgainMs = Date.now() - resumedAt;
    // It sees the change made during the stall: it tells the new pod that no initialized peer exists.
    await eventually(
      "coordinator-1 AwaitingState",
      async () => ((await env.recovered("coordinator-1"))?.reason === "AwaitingState" ? true : undefined),
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    console.log(
      `resumed: /readyz 200 after ${readyAgainMs} ms, the pod created during the stall handled after ${Date.now() - resumedAt} ms`,
    );
  }, 300_000);
});
