// Wires the handler together: configuration in, a serving HTTPS server, a pod watch and
// a controller out.
import { hostname } from "node:os";
import type { Logger } from "pino";
import { discoverIssuer, issuerJwksSource } from "../identity/index.ts";
import { createRegistry } from "../http/metrics.ts";
import { startTlsServer } from "../http/tls-server.ts";
import { loadKubeConfig } from "../kube/client.ts";
import { kubeIssuerDiscovery } from "../kube/issuer-discovery.ts";
import { startPodCache, type PodCacheListener, type RunningPodCache } from "../kube/pod-cache.ts";
import { combinePodCaches } from "../kube/pod-caches.ts";
import { kubeNamespacedPodListWatch, kubePodListWatch } from "../kube/pod-list-watch.ts";
import { kubePodApi } from "../kube/pods.ts";
import { kubeStateHeadApi, kubeStateHeadListWatch, type StateHeadObject } from "../kube/state-heads.ts";
import { headStore } from "./head/store.ts";
import { createHeadCalls, HeadChanges } from "./head-calls.ts";
import { kubeStatefulSetApi } from "../kube/statefulsets.ts";
import { conditionWriter } from "./condition-writer.ts";
import type { HandlerConfig } from "./config.ts";
import { createController } from "./controller.ts";
import { handlerMetrics } from "./metrics.ts";
import { registerPodGauges } from "./pod-gauges.ts";
import { createHandlerApp } from "./server.ts";
import { createHandlerService, handlerTokenVerifier } from "./service.ts";
import { HANDLER_LIMITS } from "../http/limits.ts";

export interface RunningHandler {
  /** The port actually bound (config.port may be 0). */
  port: number;
  issuer: string;
  /** Stops taking requests, lets those in flight finish (up to drainMs), then stops watching. */
  close(drainMs?: number): Promise<void>;
}

export async function startHandler(config: HandlerConfig, logger: Logger): Promise<RunningHandler> {
  const kc = loadKubeConfig(config.kubeconfig);
  const discovery = kubeIssuerDiscovery(kc);
  const issuer = config.issuer ?? (await discoverIssuer(discovery));
  const keys = issuerJwksSource(discovery, logger);
  // Fetch the keys now, so that a missing permission shows in the log at startup.
  keys.get().catch((err: unknown) => logger.error({ err: String(err) }, "fetching the issuer's keys failed"));
  const verifier = handlerTokenVerifier(issuer, keys);

  const registry = createRegistry();
  const metrics = handlerMetrics(registry, () => cache.size());
  registerPodGauges(registry, () => cache.all());
  const pods = kubePodApi(kc);
  // In a pod, the hostname is the pod's name: the Events say which replica wrote.
  const writer = conditionWriter({ pods, logger, metrics, instance: hostname() });
  const store = headStore(kubeStateHeadApi(kc), () => metrics.headConflict());
  const controller = createController({
    cache: () => cache,
    heads: () => heads,
    store,
    writer,
    metrics,
    logger,
  });
  // The callbacks run only after the first list, when `cache` is set.
  const listener: PodCacheListener = {
    changed: controller.changed,
    deleted: controller.deleted,
    relisted: () => {
      metrics.relist();
      controller.relisted();
    },
  };
  const selector = config.podSelector.text;
  const cache: RunningPodCache = config.namespaces
    ? combinePodCaches(
        new Map(
          config.namespaces.map((namespace) => [
            namespace,
            startPodCache({
              source: kubeNamespacedPodListWatch(kc, namespace, selector),
              listener,
              logger: logger.child({ watchNamespace: namespace }),
            }),
          ]),
        ),
      )
    : startPodCache({ source: kubePodListWatch(kc, selector), listener, logger });
  // The StateHeads of the same namespaces: a new head makes pods stale, a proposal may be
  // abandoned, and the long-poll of GET /v1/head wakes up.
  const changes = new HeadChanges();
  const headListener: PodCacheListener<StateHeadObject> = {
    changed: (object, previous) => {
      controller.heads.changed(object, previous);
      changes.changed(object.metadata?.namespace ?? "", object.metadata?.name ?? "");
    },
    deleted: (object) => {
      controller.heads.deleted(object);
      changes.changed(object.metadata?.namespace ?? "", object.metadata?.name ?? "");
    },
    relisted: () => controller.heads.relisted(),
  };
  const headLogger = (namespace?: string) =>
    namespace
      ? logger.child({ watchNamespace: namespace, watch: "stateheads" })
      : logger.child({ watch: "stateheads" });
  const heads: RunningPodCache<StateHeadObject> = config.namespaces
    ? combinePodCaches(
        new Map(
          config.namespaces.map((namespace) => [
            namespace,
            startPodCache<StateHeadObject>({
              source: kubeStateHeadListWatch(kc, namespace),
              listener: headListener,
              logger: headLogger(namespace),
              noun: "StateHead",
            }),
          ]),
        ),
      )
    : startPodCache<StateHeadObject>({
        source: kubeStateHeadListWatch(kc),
        listener: headListener,
        logger: headLogger(),
        noun: "StateHead",
      });

  let stopping = false;
  const service = createHandlerService({
    verifier,
    selector: config.podSelector,
    namespaces: config.namespaces,
    cache,
    pods,
    writer,
    store,
    headCalls: createHeadCalls({
      store,
      statefulSets: kubeStatefulSetApi(kc),
      cache,
      changes,
      metrics,
      logger,
    }),
    metrics,
    logger,
  });
  const app = createHandlerApp({
    service,
    logger,
    registry,
    readiness: {
      podCache: () => cache.problem(),
      stateHeads: () => heads.problem(),
      shutdown: () => (stopping ? "shutting down" : undefined),
    },
  });

  const server = await startTlsServer({
    port: config.port,
    certFile: config.tlsCertFile,
    keyFile: config.tlsKeyFile,
    handler: app,
    logger,
    limits: HANDLER_LIMITS,
  }).catch((err: unknown) => {
    cache.stop();
    heads.stop();
    controller.stop();
    throw err;
  });
  logger.info(
    { port: server.port, issuer, podSelector: selector, namespaces: config.namespaces ?? "all" },
    "handler serving",
  );

  return {
    port: server.port,
    issuer,
    close: async (drainMs = 5000) => {
      stopping = true;
      await server.close(drainMs);
      cache.stop();
      heads.stop();
      controller.stop();
    },
  };
}
