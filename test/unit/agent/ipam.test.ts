import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { allocate, Ipam, parseSubnet, release, type IpamState } from "../../cluster/agent/network/ipam.ts";

const subnet = parseSubnet("10.244.0.0/24", "10.244.0.1");

describe("pod address allocation", () => {
  it("skips the gateway and hands out addresses round-robin", () => {
    let state: IpamState = { allocations: {} };
    const ips: string[] = [];
    for (const owner of ["a", "b", "c"]) {
      const r = allocate(state, subnet, owner);
      state = r.state;
      ips.push(r.ip);
    }
    expect(ips).toEqual(["10.244.0.2", "10.244.0.3", "10.244.0.4"]);
    state = release(state, "a");
    // The released .2 is not reused at once: it may still be in an EndpointSlice.
    expect(allocate(state, subnet, "d").ip).toBe("10.244.0.5");
  });

  it("is idempotent per owner", () => {
    const first = allocate({ allocations: {} }, subnet, "a");
    expect(allocate(first.state, subnet, "a").ip).toBe(first.ip);
  });

  it("wraps around, never hands out the broadcast address, and fails when full", () => {
    const small = parseSubnet("10.0.0.0/29", "10.0.0.1");
    let state: IpamState = { allocations: {} };
    const got: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = allocate(state, small, `p${i}`);
      state = r.state;
      got.push(r.ip);
    }
    expect(got).toEqual(["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]);
    expect(() => allocate(state, small, "x")).toThrow("no free pod address left in 10.0.0.0/29");
    state = release(state, "p1");
    expect(allocate(state, small, "x").ip).toBe("10.0.0.3");
  });
});

describe("persisted allocator", () => {
  let dir: string | undefined;
  afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

  it("keeps allocations and the round-robin position across restarts", () => {
    dir = mkdtempSync(join(tmpdir(), "ipam-"));
    const file = join(dir, "ipam.json");
    const a = new Ipam(file, subnet);
    expect(a.allocate("pod-1")).toBe("10.244.0.2");
    expect(a.allocate("pod-2")).toBe("10.244.0.3");
    expect(a.allocate("pod-3")).toBe("10.244.0.4");
    a.release("pod-1");
    const b = new Ipam(file, subnet);
    // pod-2 still runs after the restart and keeps its address; pod-3 is gone.
    b.retainOnly(new Set(["pod-2"]));
    expect(b.allocate("pod-2")).toBe("10.244.0.3");
    expect(b.allocate("pod-4")).toBe("10.244.0.5");
  });
});
