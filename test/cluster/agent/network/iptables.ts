// Applying the rendered Service rules to the host's iptables, and removing every trace of
// them. Rules are replaced chain by chain with iptables-restore --noflush, so other users of
// the tables (a firewall, Docker) keep theirs.
import { run } from "../host/exec.ts";
import { CHAIN_PREFIX, JUMP_RULES } from "./iptables-rules.ts";

/** The agent's chains that exist now, per table. */
export async function listChains(): Promise<{ nat: string[]; filter: string[] }> {
  const chains = async (table: string) => {
    const r = await run(["iptables-save", "-t", table], { allowFailure: true });
    return [...r.stdout.matchAll(/^:(\S+)/gm)].map((m) => m[1]!).filter((c) => c.startsWith(CHAIN_PREFIX));
  };
  return { nat: await chains("nat"), filter: await chains("filter") };
}

export async function restore(text: string): Promise<void> {
  await run(["iptables-restore", "--noflush", "--wait"], { input: text });
}

/**
 * Adds the jumps from the built-in chains to the agent's, once each, at the top and in the
 * order of JUMP_RULES (a Service's REJECT must come before the pod-traffic ACCEPT).
 */
export async function ensureJumps(): Promise<void> {
  for (const [table, chain, rule] of [...JUMP_RULES].reverse()) {
    const present = await run(["iptables", "--wait", "-t", table, "-C", chain, ...rule], {
      allowFailure: true,
    });
    if (present.code !== 0) await run(["iptables", "--wait", "-t", table, "-I", chain, "1", ...rule]);
  }
}

/** Removes the jumps and all of the agent's chains (shutdown, and leftovers of a crash). */
export async function removeAll(): Promise<void> {
  for (const [table, chain, rule] of JUMP_RULES) {
    // -D removes one copy; a crashed run may have left several.
    for (let i = 0; i < 10; i++) {
      const r = await run(["iptables", "--wait", "-t", table, "-D", chain, ...rule], { allowFailure: true });
      if (r.code !== 0) break;
    }
  }
  const { nat, filter } = await listChains();
  const table = (name: string, chains: string[]) =>
    chains.length
      ? [`*${name}`, ...chains.map((c) => `:${c} - [0:0]`), ...chains.map((c) => `-X ${c}`), "COMMIT"]
      : [];
  const text = [...table("nat", nat), ...table("filter", filter)];
  if (text.length) await restore(`${text.join("\n")}\n`);
}
