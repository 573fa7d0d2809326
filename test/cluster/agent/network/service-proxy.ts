// The agent's kube-proxy: it follows Services and EndpointSlices, keeps the NAT rules in
// step with them, and rewrites every pod's hosts file so that Service names resolve.
import { CoreV1Api, DiscoveryV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { startInformer, type Informer } from "../kube/informer.ts";
import type { EndpointSlice, Pod, Service } from "../kube/wire.ts";
import { renderHosts } from "./hosts.ts";
import { ensureJumps, listChains, restore } from "./iptables.ts";
import { renderRules } from "./iptables-rules.ts";
import { writeHostsFile } from "./sandbox.ts";
import { buildServiceView, type NameView } from "./service-view.ts";

/** A running pod sandbox whose hosts file the proxy keeps current. */
export interface HostsTarget {
  netns: string;
  pod: Pod;
  ips: string[];
}

// Services and endpoints change in bursts (a rollout); one rule update per burst.
const DEBOUNCE_MS = 50;

export class ServiceProxy {
  private readonly kc: KubeConfig;
  private readonly log: Logger;
  private readonly podCIDR: string;
  private readonly bridge: string;
  private readonly targets: () => HostsTarget[];
  private services?: Informer<Service>;
  private slices?: Informer<EndpointSlice>;
  private names: NameView[] = [];
  private appliedRules = "";
  private readonly writtenHosts = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> = Promise.resolve();

  constructor(opts: {
    kc: KubeConfig;
    log: Logger;
    podCIDR: string;
    bridge: string;
    targets: () => HostsTarget[];
  }) {
    this.kc = opts.kc;
    this.log = opts.log;
    this.podCIDR = opts.podCIDR;
    this.bridge = opts.bridge;
    this.targets = opts.targets;
  }

  /** Starts following Services and EndpointSlices; resolves once the rules are in place. */
  async start(): Promise<void> {
    const core = this.kc.makeApiClient(CoreV1Api);
    const discovery = this.kc.makeApiClient(DiscoveryV1Api);
    this.services = startInformer<Service>({
      kc: this.kc,
      path: "/api/v1/services",
      list: () => core.listServiceForAllNamespaces(),
      log: this.log,
    });
    this.slices = startInformer<EndpointSlice>({
      kc: this.kc,
      path: "/apis/discovery.k8s.io/v1/endpointslices",
      list: () => discovery.listEndpointSliceForAllNamespaces(),
      log: this.log,
    });
    this.services.on(() => this.schedule());
    this.slices.on(() => this.schedule());
    await Promise.all([this.services.synced, this.slices.synced]);
    await this.sync();
    await ensureJumps();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await Promise.all([this.services?.stop(), this.slices?.stop()]);
    await this.syncing;
  }

  /** All Services (for the service-link environment variables). */
  allServices(): Service[] {
    return this.services?.list() ?? [];
  }

  /** A pod's hosts file as it should be now. */
  hostsFile(pod: Pod, ips: readonly string[]): string {
    return renderHosts(pod, ips, this.names);
  }

  /** Writes one pod's hosts file (a new sandbox), and remembers it for later updates. */
  async writeHosts(target: HostsTarget): Promise<void> {
    const content = this.hostsFile(target.pod, target.ips);
    await writeHostsFile(target.netns, content, true);
    this.writtenHosts.set(target.netns, content);
  }

  forgetHosts(netns: string): void {
    this.writtenHosts.delete(netns);
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.syncing = this.syncing
        .then(() => this.sync())
        .catch((err: unknown) => {
          this.log.error({ err: String(err) }, "service proxy sync failed; retrying");
          this.schedule();
        });
    }, DEBOUNCE_MS);
  }

  private async sync(): Promise<void> {
    const view = buildServiceView(this.services?.list() ?? [], this.slices?.list() ?? []);
    this.names = view.names;
    const rules = renderRules(view.ports, this.podCIDR, this.bridge, await listChains());
    if (rules !== this.appliedRules) {
      await restore(rules);
      this.appliedRules = rules;
      this.log.debug({ servicePorts: view.ports.length }, "service rules updated");
    }
    for (const t of this.targets()) {
      const content = this.hostsFile(t.pod, t.ips);
      if (this.writtenHosts.get(t.netns) === content) continue;
      try {
        await writeHostsFile(t.netns, content);
        this.writtenHosts.set(t.netns, content);
      } catch (err) {
        // The pod's sandbox went away meanwhile.
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
    }
  }
}
