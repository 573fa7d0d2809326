// The text form of `coordinator-ha status`: a kubectl-style table per StatefulSet, then its
// summary line.
import { prefix, type SetStatus } from "./report.ts";

const HEADERS = ["POD", "NODE", "READY", "GATE", "REASON", "DIGEST", "RECOVERED FROM", "SINCE"] as const;

export function renderTables(sets: SetStatus[], now: Date): string {
  return sets
    .map((set) => {
      const rows = set.pods.map((p) => [
        p.pod,
        p.node || "<none>",
        p.ready ? "True" : "False",
        p.gate || "<none>",
        p.reason || "-",
        prefix(p.digest),
        // No source with a digest: its own app wrote the state (initialized or updated here).
        p.source ?? (p.digest ? "(own app)" : "-"),
        p.since ? age(new Date(p.since), now) : "-",
      ]);
      return `${set.namespace}/${set.statefulSet}\n${align([[...HEADERS], ...rows])}${set.summary}\n`;
    })
    .join("\n");
}

function align(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map(
      (r) =>
        r
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join("   ")
          .trimEnd() + "\n",
    )
    .join("");
}

/** kubectl's short ages: 45s, 7m12s, 3h4m, 2d5h. */
export function age(since: Date, now: Date): string {
  const s = Math.max(0, Math.floor((now.getTime() - since.getTime()) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 && m < 10 ? `${m}m${s % 60}s` : `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 && h < 8 ? `${h}h${m % 60}m` : `${h}h`;
  const d = Math.floor(h / 24);
  return h % 24 && d < 8 ? `${d}d${h % 24}h` : `${d}d`;
}
