// The availability probe: while pods are rolled or deleted, a client keeps calling the
// Coordinator's user API the two ways a workload does,
//   - through the `coordinator-ready` Service's ClusterIP (kube-proxy's rules on a node, which
//     follow the EndpointSlices), and
//   - directly at the Service's ready endpoints, as a client-side load balancer that watches
//     the EndpointSlices would,
// and counts every request that fails or answers with another public key, and the fewest ready
// endpoints the Service ever had. Every request opens a new connection, as a fresh client does.
import { createPublicKey, type KeyObject } from "node:crypto";
import { request } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { DiscoveryV1Api, type KubeConfig, type V1EndpointSlice } from "@kubernetes/client-node";
import { COORDINATOR_API_PORT } from "../../../src/names.ts";
import { listWatch } from "./list-watch.ts";

export interface ProbeOptions {
  kc: KubeConfig;
  namespace: string;
  /** The Service of the Ready Coordinators. */
  service: string;
  /** host:port of the Service (its ClusterIP). */
  serviceAddress: string;
  /** Every answer must carry this public key (PEM): the one state. */
  publicKey: string;
  /** Pause between two requests of one client (default 10 ms), to leave the machine some CPU. */
  pauseMs?: number;
}

export interface Failure {
  at: string;
  via: "service" | "endpoint";
  target: string;
  error: string;
}

export interface ProbeReport {
  requests: { service: number; endpoint: number };
  failures: Failure[];
  /** The fewest ready endpoints of the Service while the probe ran. */
  minReadyEndpoints: number;
  /** How the number of ready endpoints changed, e.g. [3, 2, 3, 2, 3]. */
  readyEndpointCounts: number[];
  seconds: number;
}

export interface Probe {
  /** Stops the clients and the watch, and reports. */
  stop(): Promise<ProbeReport>;
}

const REQUEST_TIMEOUT_MS = 3000;

export async function startProbe(opts: ProbeOptions): Promise<Probe> {
  const started = Date.now();
  const failures: Failure[] = [];
  const requests = { service: 0, endpoint: 0 };
  const slices = new Map<string, string[]>();
  const counts: number[] = [];
  let ready: string[] = [];

  const recount = () => {
    ready = [...slices.values()].flat().sort();
    if (counts.at(-1) !== ready.length) counts.push(ready.length);
  };
  const stopWatch = await listWatch<V1EndpointSlice>(
    opts.kc,
    {
      list: () =>
        opts.kc.makeApiClient(DiscoveryV1Api).listNamespacedEndpointSlice({
          namespace: opts.namespace,
          labelSelector: `kubernetes.io/service-name=${opts.service}`,
        }),
      path: `/apis/discovery.k8s.io/v1/namespaces/${opts.namespace}/endpointslices`,
      labelSelector: `kubernetes.io/service-name=${opts.service}`,
    },
    {
      reset(items) {
        slices.clear();
        for (const s of items) slices.set(s.metadata!.name!, readyAddresses(s));
        recount();
      },
      event(type, s) {
        if (type === "DELETED") slices.delete(s.metadata!.name!);
        else slices.set(s.metadata!.name!, readyAddresses(s));
        recount();
      },
    },
  );

  // Count from the moment the Service serves: the first Ready pod's endpoint reaches the
  // node's proxy rules a sync after the StatefulSet counts it (kube-proxy batches its syncs),
  // and a request in that gap is refused by the rule for a Service without endpoints. That gap
  // is before the fault, not in it.
  const publicKey = createPublicKey(opts.publicKey);
  await serving(opts.serviceAddress, publicKey);

  let running = true;
  const fail = (via: Failure["via"], target: string, error: string) =>
    failures.push({ at: new Date().toISOString(), via, target, error });

  const check = async (via: Failure["via"], target: string) => {
    const error = await call(target, publicKey);
    if (error) fail(via, target, error);
  };
  const pause = opts.pauseMs ?? 10;
  const serviceClient = (async () => {
    while (running) {
      requests.service++;
      await check("service", opts.serviceAddress);
      await sleep(pause);
    }
  })();
  const endpointClient = (async () => {
    for (let i = 0; running; i++) {
      requests.endpoint++;
      const target = ready.length > 0 ? `${ready[i % ready.length]}:${COORDINATOR_API_PORT}` : undefined;
      if (target) await check("endpoint", target);
      else fail("endpoint", "-", "the Service has no ready endpoint");
      await sleep(pause);
    }
  })();

  return {
    async stop() {
      running = false;
      await Promise.all([serviceClient, endpointClient]);
      stopWatch();
      return {
        requests,
        failures,
        minReadyEndpoints: Math.min(...counts),
        readyEndpointCounts: counts,
        seconds: Math.round((Date.now() - started) / 1000),
      };
    },
  };
}

const SERVING_TIMEOUT_MS = 60_000;

/** Waits until a request through the Service is answered with the expected key. */
async function serving(address: string, publicKey: KeyObject): Promise<void> {
  const deadline = Date.now() + SERVING_TIMEOUT_MS;
  for (;;) {
    const error = await call(address, publicKey);
    if (!error) return;
    if (Date.now() > deadline)
      throw new Error(`the Service ${address} did not serve within ${SERVING_TIMEOUT_MS} ms: ${error}`);
    await sleep(100);
  }
}

/** The addresses of a slice's endpoints that are ready (a missing `ready` means ready). */
function readyAddresses(slice: V1EndpointSlice): string[] {
  return (slice.endpoints ?? []).filter((e) => e.conditions?.ready !== false).flatMap((e) => e.addresses);
}

/** GET /v1/manifest on a new connection; undefined when it answered 200 with the expected key. */
function call(target: string, publicKey: KeyObject): Promise<string | undefined> {
  const [host, port] = target.split(":");
  return new Promise((resolve) => {
    const req = request(
      { host, port: Number(port), path: "/v1/manifest", agent: false, timeout: REQUEST_TIMEOUT_MS },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("error", (err) => resolve(err.message));
        res.on("end", () => {
          if (res.statusCode !== 200) return resolve(`HTTP ${res.statusCode}: ${body.slice(0, 200)}`);
          let key: unknown;
          try {
            key = (JSON.parse(body) as { publicKey?: unknown }).publicKey;
            if (createPublicKey(String(key)).equals(publicKey)) return resolve(undefined);
          } catch {
            return resolve(`not the Coordinator's answer: ${body.slice(0, 200)}`);
          }
          resolve(`another public key: ${String(key)}`);
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end();
  });
}

/** One line for the test output and the demo. */
export function formatReport(r: ProbeReport): string {
  const total = r.requests.service + r.requests.endpoint;
  const failed = r.failures.length;
  return (
    `${total} requests in ${r.seconds}s (${r.requests.service} through the Service, ` +
    `${r.requests.endpoint} to its ready endpoints), ${failed} failed; ` +
    `ready endpoints ${r.readyEndpointCounts.join(" -> ")} (min ${r.minReadyEndpoints})`
  );
}
