// The pod network's bridge. The launcher creates it before the apiserver starts, because the
// apiserver advertises the bridge address to pods (the `kubernetes` Service endpoint); the
// node agent attaches pod veths to it and never deletes it. `cluster:down` deletes it after
// the agent has stopped.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { BRIDGE } from "./config.ts";

const run = promisify(execFile);

async function ip(...args: string[]): Promise<string> {
  try {
    return (await run("ip", args)).stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") {
      throw new Error(
        "the `ip` command is missing: run `bash test/cluster/setup-host.sh` (installs iproute2)",
        { cause: err },
      );
    }
    throw new Error(`ip ${args.join(" ")}: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

async function exists(): Promise<boolean> {
  try {
    await run("ip", ["link", "show", "dev", BRIDGE.name]);
    return true;
  } catch {
    return false;
  }
}

/** Creates the bridge with the gateway address, or completes one that exists (idempotent). */
export async function ensureBridge(): Promise<void> {
  if (!(await exists())) await ip("link", "add", BRIDGE.name, "type", "bridge");
  const addr = `${BRIDGE.address}/${BRIDGE.prefixLength}`;
  const addrs = await ip("-o", "-4", "addr", "show", "dev", BRIDGE.name);
  if (!addrs.includes(` ${addr} `)) await ip("addr", "add", addr, "dev", BRIDGE.name);
  await ip("link", "set", BRIDGE.name, "up");
}

export async function deleteBridge(): Promise<boolean> {
  if (!(await exists())) return false;
  await ip("link", "del", BRIDGE.name);
  return true;
}
