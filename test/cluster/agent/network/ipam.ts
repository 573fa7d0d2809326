// Pod IP allocation from the node's pod CIDR (10.244.0.0/24), persisted in the state dir.
//
// Like the CNI host-local plugin, it hands out addresses round-robin after the last one it
// gave, instead of the lowest free one: an address that a pod just released may still sit
// in an EndpointSlice or a client's connection, and reusing it at once would send that
// traffic to a different pod. The allocations and the round-robin position survive a crash
// of the agent for the same reason.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export interface IpamState {
  /** ip -> owner (pod uid). */
  allocations: Record<string, string>;
  last?: string;
}

export interface Subnet {
  /** Network address as a number, and prefix length. */
  base: number;
  prefix: number;
  gateway: string;
}

export function ipToNumber(ip: string): number {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`invalid IPv4 address "${ip}"`);
  }
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function numberToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

export function parseSubnet(cidr: string, gateway: string): Subnet {
  const [ip, len] = cidr.split("/");
  const prefix = Number(len);
  if (!ip || !Number.isInteger(prefix) || prefix < 8 || prefix > 30)
    throw new Error(`invalid pod CIDR "${cidr}"`);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { base: (ipToNumber(ip) & mask) >>> 0, prefix, gateway };
}

/** Allocates an address for owner (idempotent per owner); throws when the range is full. */
export function allocate(state: IpamState, subnet: Subnet, owner: string): { state: IpamState; ip: string } {
  const existing = Object.entries(state.allocations).find(([, o]) => o === owner);
  if (existing) return { state, ip: existing[0] };
  const size = 2 ** (32 - subnet.prefix);
  const first = subnet.base + 1;
  const lastUsable = subnet.base + size - 2; // the broadcast address is not a host
  const gateway = ipToNumber(subnet.gateway);
  const start = state.last ? ipToNumber(state.last) : lastUsable;
  for (let i = 1; i <= size; i++) {
    const candidate = first + ((start - first + i) % (lastUsable - first + 1));
    const ip = numberToIp(candidate);
    if (candidate === gateway || state.allocations[ip] !== undefined) continue;
    return { state: { allocations: { ...state.allocations, [ip]: owner }, last: ip }, ip };
  }
  throw new Error(`no free pod address left in ${numberToIp(subnet.base)}/${subnet.prefix}`);
}

export function release(state: IpamState, owner: string): IpamState {
  const allocations = Object.fromEntries(Object.entries(state.allocations).filter(([, o]) => o !== owner));
  return { ...state, allocations };
}

/** The allocator with its state in a JSON file, written atomically on every change. */
export class Ipam {
  private state: IpamState;
  private readonly file: string;
  private readonly subnet: Subnet;

  constructor(file: string, subnet: Subnet) {
    this.file = file;
    this.subnet = subnet;
    this.state = Ipam.read(file);
  }

  private static read(file: string): IpamState {
    try {
      const parsed = JSON.parse(readFileSync(file, "utf8")) as IpamState;
      return { allocations: parsed.allocations ?? {}, ...(parsed.last ? { last: parsed.last } : {}) };
    } catch {
      return { allocations: {} };
    }
  }

  private save(): void {
    mkdirSync(dirname(this.file), { recursive: true });
    writeFileSync(`${this.file}.tmp`, JSON.stringify(this.state, null, 2));
    renameSync(`${this.file}.tmp`, this.file);
  }

  allocate(owner: string): string {
    const { state, ip } = allocate(this.state, this.subnet, owner);
    if (state !== this.state) {
      this.state = state;
      this.save();
    }
    return ip;
  }

  release(owner: string): void {
    this.state = release(this.state, owner);
    this.save();
  }

  /**
   * Releases every address whose owner is not in `owners`: after a restart of the agent, the
   * pods still bound to the node keep their addresses, the others' are free.
   */
  retainOnly(owners: ReadonlySet<string>): void {
    for (const owner of new Set(Object.values(this.state.allocations))) {
      if (!owners.has(owner)) this.release(owner);
    }
  }
}
