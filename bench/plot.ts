// npm run bench:cluster's plot: the per-pod timelines of the three systems side by side, drawn
// from the benchmark's JSON as an SVG and rendered to PNG (resvg, no browser, no system
// library). `node bench/plot.ts [results.json] [out.png]`; bench/cluster.ts calls plotFile.
import { readFileSync, writeFileSync } from "node:fs";
import { Resvg } from "@resvg/resvg-js";

interface PodTimeline {
  pod: string;
  [point: string]: number | string | undefined;
}
interface Results {
  date: string;
  points: string[];
  runs: { round: number; system: string; scenario: string; pods: PodTimeline[] }[];
}

const COLORS = [
  "#9e9e9e",
  "#90caf9",
  "#1e88e5",
  "#ce93d8",
  "#8e24aa",
  "#80deea",
  "#00897b",
  "#a5d6a7",
  "#43a047",
  "#fff176",
  "#ffb74d",
  "#e53935",
];
const ROW = 14;
const PANEL = 420;
const LEFT = 210;

/** The SVG: one panel per system, one row per new pod (grouped by scenario), x = s since created. */
export function timelineSvg(results: Results): string {
  const systems = [...new Set(results.runs.map((r) => r.system))];
  const rowsOf = (system: string) =>
    results.runs
      .filter((r) => r.system === system)
      .flatMap((r) => r.pods.map((p) => ({ label: `r${r.round} ${r.scenario} ${p.pod}`, p })));
  const all = systems.flatMap(rowsOf);
  const maxMs = Math.max(
    1000,
    ...all.flatMap(({ p }) =>
      results.points.map((k) => (typeof p[k] === "number" ? (p[k] as number) - (p["created"] as number) : 0)),
    ),
  );
  const scale = (PANEL - 20) / maxMs;
  const rows = Math.max(...systems.map((s) => rowsOf(s).length), 1);
  const height = 60 + rows * ROW + 40;
  const width = systems.length * (LEFT + PANEL);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="10">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  systems.forEach((system, i) => {
    const x0 = i * (LEFT + PANEL) + LEFT;
    out.push(`<text x="${x0}" y="16" font-size="13" font-weight="bold">${system}</text>`);
    for (let s = 0; s <= maxMs / 1000; s += Math.max(1, Math.round(maxMs / 1000 / 8))) {
      const x = x0 + s * 1000 * scale;
      out.push(`<line x1="${x}" y1="28" x2="${x}" y2="${40 + rows * ROW}" stroke="#eee"/>`);
      out.push(`<text x="${x}" y="${52 + rows * ROW}" text-anchor="middle">${s}s</text>`);
    }
    rowsOf(system).forEach(({ label, p }, row) => {
      const y = 32 + row * ROW;
      out.push(`<text x="${x0 - 4}" y="${y + 10}" text-anchor="end">${label}</text>`);
      const created = p["created"] as number;
      let from = 0;
      results.points.forEach((point, k) => {
        const at = p[point];
        if (typeof at !== "number") return;
        const t = at - created;
        if (t > from) {
          out.push(
            `<rect x="${x0 + from * scale}" y="${y}" width="${(t - from) * scale}" height="${ROW - 3}" fill="${COLORS[k % COLORS.length]}"/>`,
          );
        }
        from = Math.max(from, t);
        // A tick at every point, also one reached before an earlier-listed point (the gate
        // can turn True before the app's own readiness probe passes).
        out.push(
          `<rect x="${x0 + t * scale - 1}" y="${y - 2}" width="2" height="${ROW + 1}" fill="${COLORS[k % COLORS.length]}"/>`,
        );
      });
    });
  });
  // The legend: the color of a segment is that of the point it ends at; ticks mark each point.
  results.points.forEach((point, k) => {
    const x = 10 + k * 155;
    out.push(
      `<rect x="${x}" y="${height - 18}" width="10" height="10" fill="${COLORS[k % COLORS.length]}"/>`,
    );
    out.push(`<text x="${x + 14}" y="${height - 9}">until ${point}</text>`);
  });
  out.push("</svg>");
  return out.join("\n");
}

export function plotFile(json: string, png: string): void {
  const svg = timelineSvg(JSON.parse(readFileSync(json, "utf8")) as Results);
  writeFileSync(png.replace(/\.png$/, ".svg"), svg);
  writeFileSync(png, new Resvg(svg, { font: { loadSystemFonts: true } }).render().asPng());
}

if (import.meta.main) {
  plotFile(process.argv[2] ?? "bench/results/cluster.json", process.argv[3] ?? "bench/results/cluster.png");
}
