/**
 * `bench plot`: SVG charts of workload results, generated here (no browser, no charting
 * library). One result: line charts over time of throughput, backlog and latency percentiles.
 * Several: bar charts comparing their rates and latency percentiles, one bar per result.
 *
 * Invariants: the output is a standalone SVG document; every text is XML-escaped; each series
 * is one <path> or group of <rect> with a data-series attribute naming it (tests look for them).
 */
import { writeFileSync } from 'node:fs';
import type { WorkloadResult, Snapshot } from './result.ts';

const PANEL_W = 900;
const PANEL_H = 220;
const MARGIN = { left: 80, right: 270, top: 30, bottom: 36 };
/** Legend labels longer than this are cut (with an ellipsis) to fit the legend column. */
const LABEL_CHARS_MAX = 38;
const Y_TICKS = 5;
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** A "nice" upper bound for an axis (1, 2, 5 × 10^k). */
export function niceMax(v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function label(s: string): string {
  return escapeXml(s.length > LABEL_CHARS_MAX ? `${s.slice(0, LABEL_CHARS_MAX - 1)}…` : s);
}

function num(v: number): string {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(2)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(3)}`;
}

interface Series {
  name: string;
  points: Array<[number, number]>;
}

function linePanel(y0: number, title: string, unit: string, series: Series[], xMax: number, warmupEnd: number): string {
  const w = PANEL_W - MARGIN.left - MARGIN.right;
  const h = PANEL_H - MARGIN.top - MARGIN.bottom;
  const yMax = niceMax(Math.max(0, ...series.flatMap((s) => s.points.map((p) => p[1]))));
  const xs = (x: number): number => MARGIN.left + (x / Math.max(xMax, 1e-9)) * w;
  const ys = (y: number): number => y0 + MARGIN.top + h - (y / yMax) * h;
  const parts: string[] = [`<text x="${MARGIN.left}" y="${y0 + 18}" font-size="14" font-weight="bold">${escapeXml(title)}</text>`];
  for (let i = 0; i <= Y_TICKS; i++) {
    const v = (yMax * i) / Y_TICKS;
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + w}" y1="${ys(v)}" y2="${ys(v)}" stroke="#ddd"/>`, `<text x="${MARGIN.left - 6}" y="${ys(v) + 4}" font-size="11" text-anchor="end">${num(v)}</text>`);
  }
  parts.push(`<text x="14" y="${y0 + MARGIN.top + h / 2}" font-size="11" transform="rotate(-90 14 ${y0 + MARGIN.top + h / 2})" text-anchor="middle">${escapeXml(unit)}</text>`);
  // The warm-up, shaded: its numbers are not in the result's totals.
  if (warmupEnd > 0) parts.push(`<rect data-phase="warmup" x="${MARGIN.left}" y="${y0 + MARGIN.top}" width="${(xs(warmupEnd) - MARGIN.left).toFixed(1)}" height="${h}" fill="#f2f2f2"><title>warm-up</title></rect>`);
  const xStep = niceMax(xMax / 6);
  for (let x = 0; x <= xMax + 1e-9; x += xStep) parts.push(`<text x="${xs(x).toFixed(1)}" y="${y0 + PANEL_H - 14}" font-size="11" text-anchor="middle">${num(x)} s</text>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const d = s.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${xs(p[0]).toFixed(1)},${ys(p[1]).toFixed(1)}`).join(' ');
    if (d) parts.push(`<path data-series="${escapeXml(s.name)}" d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    parts.push(`<rect x="${MARGIN.left + w + 14}" y="${y0 + MARGIN.top + i * 18}" width="12" height="12" fill="${color}"/>`, `<text x="${MARGIN.left + w + 32}" y="${y0 + MARGIN.top + i * 18 + 10}" font-size="12">${label(s.name)}</text>`);
  });
  return parts.join('\n');
}

function series(snaps: Snapshot[], name: string, pick: (s: Snapshot) => number): Series {
  return { name, points: snaps.map((s) => [s.t, pick(s)]) };
}

/** Line charts over time of one run. */
export function timeSeriesSvg(r: WorkloadResult): string {
  const snaps = r.snapshots;
  const xMax = Math.max(1, ...snaps.map((s) => s.t));
  const withLatency = snaps.filter((s) => s.phase !== 'idle');
  const warmupEnd = Math.max(0, ...snaps.filter((s) => s.phase === 'warmup').map((s) => s.t));
  const panels = [
    linePanel(40, 'Throughput', 'msgs/s', [series(snaps, 'publish rate', (s) => s.publishRate), series(snaps, 'consume rate', (s) => s.consumeRate)], xMax, warmupEnd),
    linePanel(40 + PANEL_H, 'Backlog', 'messages', [series(snaps, 'backlog', (s) => s.backlog)], xMax, warmupEnd),
    linePanel(40 + 2 * PANEL_H, 'Latency', 'ms', [
      series(withLatency, 'e2e p50', (s) => s.e2eP50Ms),
      series(withLatency, 'e2e p99', (s) => s.e2eP99Ms),
      series(withLatency, 'e2e p99.9', (s) => s.e2eP999Ms),
      series(withLatency, 'publish p99', (s) => s.publishP99Ms),
    ], xMax, warmupEnd),
  ];
  const title = `${r.label}: ${r.workload.partitionsPerTopic} partition(s) × ${r.workload.topics} topic(s), ${r.workload.messageSize} B, rate ${r.workload.producerRate || 'max'}`;
  return document(PANEL_W, 40 + 3 * PANEL_H + 30, title, panels.join('\n'), summaryFooter(r, 40 + 3 * PANEL_H + 14));
}

function summaryFooter(r: WorkloadResult, y: number): string {
  return `<text x="${MARGIN.left}" y="${y}" font-size="11">${escapeXml(`test ${r.testSeconds} s: pub ${num(r.publishRate)} msg/s, cons ${num(r.consumeRate)} msg/s, e2e p50 ${r.endToEndLatencyMs.p50} ms p99 ${r.endToEndLatencyMs.p99} ms`)}</text>`;
}

function barPanel(y0: number, title: string, unit: string, labels: string[], values: number[]): string {
  const w = PANEL_W - MARGIN.left - MARGIN.right;
  const h = PANEL_H - MARGIN.top - MARGIN.bottom;
  const yMax = niceMax(Math.max(0, ...values));
  const ys = (y: number): number => y0 + MARGIN.top + h - (y / yMax) * h;
  const slot = w / Math.max(1, values.length);
  const parts: string[] = [`<text x="${MARGIN.left}" y="${y0 + 18}" font-size="14" font-weight="bold">${escapeXml(`${title} (${unit})`)}</text>`];
  for (let i = 0; i <= Y_TICKS; i++) {
    const v = (yMax * i) / Y_TICKS;
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + w}" y1="${ys(v)}" y2="${ys(v)}" stroke="#ddd"/>`, `<text x="${MARGIN.left - 6}" y="${ys(v) + 4}" font-size="11" text-anchor="end">${num(v)}</text>`);
  }
  parts.push(`<g data-series="${escapeXml(title)}">`);
  values.forEach((v, i) => {
    const x = MARGIN.left + i * slot + slot * 0.15;
    parts.push(`<rect x="${x.toFixed(1)}" y="${ys(v).toFixed(1)}" width="${(slot * 0.7).toFixed(1)}" height="${(ys(0) - ys(v)).toFixed(1)}" fill="${COLORS[i % COLORS.length]}"><title>${escapeXml(`${labels[i]}: ${v}`)}</title></rect>`);
    parts.push(`<text x="${(x + slot * 0.35).toFixed(1)}" y="${(ys(v) - 4).toFixed(1)}" font-size="11" text-anchor="middle">${num(v)}</text>`);
  });
  parts.push('</g>');
  labels.forEach((l, i) => parts.push(`<rect x="${MARGIN.left + w + 14}" y="${y0 + MARGIN.top + i * 18}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`, `<text x="${MARGIN.left + w + 32}" y="${y0 + MARGIN.top + i * 18 + 10}" font-size="12">${label(l)}</text>`));
  return parts.join('\n');
}

/** Bar charts comparing several runs. */
export function comparisonSvg(results: WorkloadResult[]): string {
  const labels = results.map((r, i) => (results.filter((o) => o.label === r.label).length > 1 ? `${r.label} #${i + 1}` : r.label));
  const panels = [
    barPanel(40, 'Publish rate', 'msgs/s', labels, results.map((r) => r.publishRate)),
    barPanel(40 + PANEL_H, 'Consume rate', 'msgs/s', labels, results.map((r) => r.consumeRate)),
    barPanel(40 + 2 * PANEL_H, 'End-to-end latency p50', 'ms', labels, results.map((r) => r.endToEndLatencyMs.p50)),
    barPanel(40 + 3 * PANEL_H, 'End-to-end latency p99', 'ms', labels, results.map((r) => r.endToEndLatencyMs.p99)),
    barPanel(40 + 4 * PANEL_H, 'Publish latency p99', 'ms', labels, results.map((r) => r.publishLatencyMs.p99)),
  ];
  return document(PANEL_W, 40 + 5 * PANEL_H, `Comparison of ${results.length} runs`, panels.join('\n'), '');
}

function document(w: number, h: number, title: string, body: string, footer: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${MARGIN.left}" y="24" font-size="16" font-weight="bold">${escapeXml(title)}</text>
${body}
${footer}
</svg>
`;
}

export function plotSvg(results: WorkloadResult[]): string {
  if (results.length === 0) throw new Error('nothing to plot');
  return results.length === 1 ? timeSeriesSvg(results[0]!) : comparisonSvg(results);
}

export function writePlot(results: WorkloadResult[], out: string): void {
  writeFileSync(out, plotSvg(results));
}
