// Our rendering of the dashboard's panels from the answers of a real Prometheus: the panels
// laid out on Grafana's 24-column grid, stat panels as a number, tables as rows, time series
// as lines with a legend. It is no Grafana screenshot (no Grafana runs here): it shows what
// each panel's query returned. SVG rendered to PNG by resvg, as bench/plot.ts does.
import { writeFileSync } from "node:fs";
import { Resvg } from "@resvg/resvg-js";
import { legend, type Panel, type PanelQuery } from "./dashboard-queries.ts";
import type { Sample } from "./prometheus-server.ts";

export interface PanelResult {
  query: PanelQuery;
  samples: Sample[];
}

const COL = 56;
const ROW = 34;
const PAD = 8;
const COLORS = ["#1e88e5", "#43a047", "#e53935", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41", "#546e7a"];

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function format(value: number, unit: string | undefined): string {
  if (Number.isNaN(value)) return "NaN";
  const n = (v: number) => (Math.abs(v) >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toPrecision(3));
  if (unit === "s") return value < 1 ? `${n(value * 1000)} ms` : `${n(value)} s`;
  if (unit === "reqps") return `${n(value)} req/s`;
  if (unit === "wps") return `${n(value)} wr/s`;
  return n(value);
}

function stat(
  results: PanelResult[],
  unit: string | undefined,
  x: number,
  y: number,
  w: number,
  h: number,
): string[] {
  const values = results.flatMap((r) => r.samples.map((s) => Number(s.values.at(-1)?.[1])));
  const text =
    values.length === 0
      ? "No data"
      : format(
          values.reduce((a, b) => a + b, 0),
          unit,
        );
  return [
    `<text x="${x + w / 2}" y="${y + h / 2 + 14}" text-anchor="middle" font-size="34" fill="#2e7d32">${esc(text)}</text>`,
  ];
}

function table(results: PanelResult[], unit: string | undefined, x: number, y: number, w: number): string[] {
  const rows = results
    .flatMap((r) => r.samples)
    .map((s) => ({ metric: s.metric, value: Number(s.values.at(-1)?.[1]) }))
    .sort((a, b) => b.value - a.value);
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r.metric)))].sort();
  const colW = (w - 2 * PAD) / (keys.length + 1);
  const out = [...keys, "Value"].map(
    (k, i) => `<text x="${x + PAD + i * colW}" y="${y + 40}" font-weight="bold">${esc(k)}</text>`,
  );
  if (rows.length === 0) out.push(`<text x="${x + PAD}" y="${y + 58}" fill="#757575">No data</text>`);
  rows.slice(0, 9).forEach((r, row) => {
    const cells = [...keys.map((k) => r.metric[k] ?? ""), format(r.value, unit)];
    cells.forEach((c, i) =>
      out.push(`<text x="${x + PAD + i * colW}" y="${y + 58 + row * 15}">${esc(c)}</text>`),
    );
  });
  return out;
}

function timeseries(
  results: PanelResult[],
  unit: string | undefined,
  range: { start: number; end: number },
  x: number,
  y: number,
  w: number,
  h: number,
): string[] {
  const series = results.flatMap((r) =>
    r.samples.map((s) => ({
      name: legend(r.query.legendFormat, s.metric).trim(),
      points: s.values.map(([t, v]) => [t, Number(v)] as const).filter(([, v]) => Number.isFinite(v)),
    })),
  );
  const plotW = w * 0.58;
  const px = x + 64;
  const top = y + 30;
  const bottom = y + h - 22;
  const max = Math.max(...series.flatMap((s) => s.points.map(([, v]) => v)), 0) || 1;
  const sx = (t: number) => px + ((t - range.start) / (range.end - range.start)) * (plotW - 64);
  const sy = (v: number) => bottom - (v / max) * (bottom - top);
  const out = [
    `<line x1="${px}" y1="${bottom}" x2="${px + plotW - 64}" y2="${bottom}" stroke="#bdbdbd"/>`,
    `<text x="${px - 4}" y="${top + 4}" text-anchor="end" font-size="9">${esc(format(max, unit))}</text>`,
    `<text x="${px - 4}" y="${bottom}" text-anchor="end" font-size="9">0</text>`,
    `<text x="${px}" y="${bottom + 14}" font-size="9">-${Math.round((range.end - range.start) / 60)} min</text>`,
    `<text x="${px + plotW - 64}" y="${bottom + 14}" text-anchor="end" font-size="9">now</text>`,
  ];
  if (series.length === 0)
    out.push(`<text x="${px + 10}" y="${(top + bottom) / 2}" fill="#757575">No data</text>`);
  series.slice(0, 10).forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    if (s.points.length > 0) {
      const d = s.points
        .map(([t, v], k) => `${k === 0 ? "M" : "L"}${sx(t).toFixed(1)},${sy(v).toFixed(1)}`)
        .join(" ");
      out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5"/>`);
    }
    const last = s.points.at(-1)?.[1];
    const ly = top + i * 14;
    out.push(`<rect x="${x + plotW + 6}" y="${ly - 8}" width="8" height="8" fill="${color}"/>`);
    out.push(
      `<text x="${x + plotW + 18}" y="${ly}" font-size="9">${esc(s.name || "value")}: ${last === undefined ? "-" : esc(format(last, unit))}</text>`,
    );
  });
  return out;
}

/** The whole dashboard as one SVG. `range`: the time series' window, unix seconds. */
export function dashboardSvg(
  title: string,
  panels: Panel[],
  results: PanelResult[],
  range: { start: number; end: number },
): string {
  const height = Math.max(...panels.map((p) => p.gridPos.y + p.gridPos.h)) * ROW + 40;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${24 * COL}" height="${height}" font-family="DejaVu Sans, sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#f4f5f5"/>`,
    `<text x="${PAD}" y="24" font-size="15" font-weight="bold">${esc(title)}: the panels' queries against a real Prometheus (not a Grafana screenshot)</text>`,
  ];
  for (const panel of panels) {
    const x = panel.gridPos.x * COL + PAD / 2;
    const y = panel.gridPos.y * ROW + 36;
    const w = panel.gridPos.w * COL - PAD;
    const h = panel.gridPos.h * ROW - PAD;
    const unit = panel.fieldConfig?.defaults?.unit;
    const mine = results.filter((r) => r.query.panel.id === panel.id);
    out.push(`<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="white" stroke="#d0d0d0" rx="3"/>`);
    out.push(
      `<text x="${x + PAD}" y="${y + 18}" font-weight="bold" font-size="12">${esc(panel.title)}</text>`,
    );
    if (panel.type === "stat") out.push(...stat(mine, unit, x, y, w, h));
    else if (panel.type === "table") out.push(...table(mine, unit, x, y, w));
    else out.push(...timeseries(mine, unit, range, x, y, w, h));
  }
  out.push("</svg>");
  return out.join("\n");
}

export function writePng(svg: string, png: string): void {
  // resvg's own default family is a serif one.
  const font = { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans", sansSerifFamily: "DejaVu Sans" };
  writeFileSync(png, new Resvg(svg, { font }).render().asPng());
}
