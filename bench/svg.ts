/** Minimal SVG charts for BENCHMARKS.md (lines with markers, log or linear x), no DOM needed. */

export interface Series {
  name: string;
  /** `err`: half the height of an error bar (± one standard deviation over seeds), where there is one; `label`: a
   * short text beside the marker (a scatter's points are not ordered by x, so they say what they are). */
  points: Array<{ x: number; y: number; err?: number; label?: string }>;
  dashed?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  logX?: boolean;
  width?: number;
  height?: number;
  /** A horizontal reference line (e.g. the teacher's metric). */
  reference?: { y: number; label: string };
  /** Markers only, no line through a series' points. */
  scatter?: boolean;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#7f7f7f', '#17becf'];
const MARKERS = ['circle', 'square', 'diamond', 'triangle', 'circle', 'square', 'diamond', 'triangle', 'circle'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function ticks(lo: number, hi: number, n = 5): number[] {
  const span = hi - lo || 1;
  const step = 10 ** Math.floor(Math.log10(span / n));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => span / s <= n) ?? step * 10;
  const out: number[] = [];
  for (let v = Math.ceil(lo / nice) * nice; v <= hi + 1e-12; v += nice) out.push(+v.toPrecision(12));
  return out;
}

/** 1, 2, 5 × 10^k inside [10^lo, 10^hi] (the exponents of a log axis). */
function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let k = Math.floor(lo) - 1; k <= Math.ceil(hi); k++)
    for (const m of [1, 2, 5]) {
      const v = +(m * 10 ** k).toPrecision(12);
      if (Math.log10(v) >= lo - 1e-9 && Math.log10(v) <= hi + 1e-9) out.push(v);
    }
  return out;
}

function marker(kind: string, x: number, y: number, color: string): string {
  const r = 4;
  if (kind === 'square') return `<rect x="${x - r}" y="${y - r}" width="${2 * r}" height="${2 * r}" fill="${color}"/>`;
  if (kind === 'diamond') return `<path d="M${x} ${y - r - 1}L${x + r + 1} ${y}L${x} ${y + r + 1}L${x - r - 1} ${y}Z" fill="${color}"/>`;
  if (kind === 'triangle') return `<path d="M${x} ${y - r - 1}L${x + r + 1} ${y + r}L${x - r - 1} ${y + r}Z" fill="${color}"/>`;
  return `<circle cx="${x}" cy="${y}" r="${r}" fill="${color}"/>`;
}

export function lineChart(series: Series[], o: ChartOptions): string {
  // The legend's column is as wide as its longest name (about 7 px a character at 12 px).
  const legend = Math.max(170, 54 + 7 * Math.max(0, ...series.map((s) => s.name.length)));
  const W = (o.width ?? 640) + legend - 170;
  const H = o.height ?? 400;
  const m = { l: 64, r: legend, t: 36, b: 48 };
  const pts = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const ys = pts.flatMap((p) => [p.y - (p.err ?? 0), p.y + (p.err ?? 0)]).concat(o.reference ? [o.reference.y] : []);
  const fx = (v: number) => (o.logX ? Math.log10(v) : v);
  const xs = pts.map((p) => fx(p.x));
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const padY = 0.06 * (y1 - y0);
  [y0, y1] = [y0 - padY, y1 + padY];
  const sx = (v: number) => m.l + ((fx(v) - x0) / (x1 - x0)) * (W - m.l - m.r);
  const sy = (v: number) => H - m.b - ((v - y0) / (y1 - y0)) * (H - m.t - m.b);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.l}" y="20" font-size="14" font-weight="bold">${esc(o.title)}</text>`,
  ];
  const xt = o.logX ? logTicks(x0, x1) : ticks(x0, x1);
  for (const v of xt) {
    const x = sx(v);
    parts.push(
      `<line x1="${x}" y1="${m.t}" x2="${x}" y2="${H - m.b}" stroke="#e5e5e5"/><text x="${x}" y="${H - m.b + 16}" text-anchor="middle">${v}</text>`,
    );
  }
  for (const v of ticks(y0, y1)) {
    const y = sy(v);
    parts.push(
      `<line x1="${m.l}" y1="${y}" x2="${W - m.r}" y2="${y}" stroke="#e5e5e5"/><text x="${m.l - 6}" y="${y + 4}" text-anchor="end">${+v.toPrecision(4)}</text>`,
    );
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#999"/>`);
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 10}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`);
  if (o.reference) {
    const y = sy(o.reference.y);
    parts.push(
      `<line x1="${m.l}" y1="${y}" x2="${W - m.r}" y2="${y}" stroke="#444" stroke-dasharray="6 4"/><text x="${W - m.r - 4}" y="${y - 5}" text-anchor="end" fill="#444">${esc(o.reference.label)}</text>`,
    );
  }
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const p = s.points.filter((q) => Number.isFinite(q.x) && Number.isFinite(q.y)).sort((a, b) => a.x - b.x);
    if (p.length > 1 && !o.scatter)
      parts.push(
        `<path d="${p.map((q, j) => `${j ? 'L' : 'M'}${sx(q.x).toFixed(1)} ${sy(q.y).toFixed(1)}`).join('')}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`,
      );
    for (const q of p.filter((r) => r.err))
      parts.push(
        `<path d="M${sx(q.x).toFixed(1)} ${sy(q.y - q.err!).toFixed(1)}V${sy(q.y + q.err!).toFixed(1)}M${(sx(q.x) - 4).toFixed(1)} ${sy(q.y - q.err!).toFixed(1)}h8M${(sx(q.x) - 4).toFixed(1)} ${sy(q.y + q.err!).toFixed(1)}h8" stroke="${color}" stroke-width="1.5" fill="none"/>`,
      );
    for (const q of p) parts.push(marker(MARKERS[i % MARKERS.length], sx(q.x), sy(q.y), color));
    for (const q of p.filter((r) => r.label))
      parts.push(
        `<text x="${(sx(q.x) + 6).toFixed(1)}" y="${(sy(q.y) - 6).toFixed(1)}" font-size="10" fill="${color}">${esc(q.label!)}</text>`,
      );
    const ly = m.t + 8 + i * 20;
    parts.push(
      `<line x1="${W - m.r + 12}" y1="${ly}" x2="${W - m.r + 36}" y2="${ly}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>${marker(MARKERS[i % MARKERS.length], W - m.r + 24, ly, color)}<text x="${W - m.r + 42}" y="${ly + 4}">${esc(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}
