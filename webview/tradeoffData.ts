/**
 * The tradeoff panel's data, without the DOM: axes, the Pareto front, where the budget falls on the x axis,
 * the sweep's prediction at a budget, and the CSV export. Pure functions (unit-tested in node).
 */
import { fmtCount, fmtFlops, fmtInt, fmtMs, fmtPct } from '../src/core/findings';
import { higherIsBetter, type BudgetKind, type MetricName, type RunReport, type TradeoffPoint } from '../src/core/report';
import type { BudgetState, PredictedPoint, TradeoffAxis } from '../src/core/webviewProtocol';

export interface AxisSpec {
  label: string;
  short: string;
  value(p: Measures): number | undefined;
  /** Compact tick label. */
  tick(v: number): string;
  /** Exact figure for tooltips and the table. */
  exact(v: number): string;
}

type Measures = Pick<TradeoffPoint, 'params' | 'encoderParams' | 'flopsPerToken' | 'latencyMs'>;

/** Axis ticks: 500000 → "500k", 1500000 → "1.5M", 6.7e9 → "6.7B". */
export function compactTick(v: number): string {
  const a = Math.abs(v);
  const [d, u] = a >= 1e9 ? [1e9, 'B'] : a >= 1e6 ? [1e6, 'M'] : a >= 1e3 ? [1e3, 'k'] : [1, ''];
  return `${Number((v / d).toPrecision(3))}${u}`;
}
const lat = (batch: string) => (p: Measures) => {
  const v = p.latencyMs?.[batch];
  return v != null && Number.isFinite(v) ? v : undefined;
};

export const AXES: Record<TradeoffAxis, AxisSpec> = {
  params: {
    label: 'Parameters',
    short: 'Parameters',
    value: (p) => p.params,
    tick: compactTick,
    exact: (v) => `${fmtInt(v)} (${fmtCount(v)})`,
  },
  encoderParams: {
    label: 'Encoder parameters',
    short: 'Encoder params',
    value: (p) => p.encoderParams,
    tick: compactTick,
    exact: (v) => `${fmtInt(v)} (${fmtCount(v)})`,
  },
  flopsPerToken: {
    label: 'FLOPs per token',
    short: 'FLOPs/token',
    value: (p) => p.flopsPerToken,
    tick: (v) => compactTick(v),
    exact: (v) => `${fmtInt(v)} (${fmtFlops(v)})`,
  },
  latency1: {
    label: 'Latency, batch 1 (ms)',
    short: 'Latency b1',
    value: lat('1'),
    tick: (v) => String(Number(v.toPrecision(3))),
    exact: fmtMs,
  },
  latency32: {
    label: 'Latency, batch 32 (ms)',
    short: 'Latency b32',
    value: lat('32'),
    tick: (v) => String(Number(v.toPrecision(3))),
    exact: fmtMs,
  },
};
export const AXIS_ORDER: readonly TradeoffAxis[] = ['params', 'encoderParams', 'flopsPerToken', 'latency1', 'latency32'];

export const KIND_KEY: Record<BudgetKind, 'params' | 'encoderParams' | 'flopsPerToken'> = {
  params: 'params',
  'encoder-params': 'encoderParams',
  flops: 'flopsPerToken',
};
export const KIND_LABEL: Record<BudgetKind, string> = {
  params: 'parameters',
  'encoder-params': 'encoder parameters',
  flops: 'FLOPs per token',
};

export type SourceGroup = 'sweep' | 'finetuned' | 'teacher' | 'baseline';
export const groupOf = (source: TradeoffPoint['source']): SourceGroup =>
  source.startsWith('baseline:') ? 'baseline' : (source as SourceGroup);

export function sourceLabel(source: TradeoffPoint['source']): string {
  switch (source) {
    case 'sweep':
      return 'Sweep (re-thresholded masks)';
    case 'finetuned':
      return 'Fine-tuned run';
    case 'teacher':
      return 'Teacher (unpruned)';
    default:
      return `Baseline: ${source.slice('baseline:'.length)}`;
  }
}

/** Short source names for the table. */
export function sourceShort(source: TradeoffPoint['source']): string {
  switch (source) {
    case 'sweep':
      return 'Sweep';
    case 'finetuned':
      return 'Fine-tuned';
    case 'teacher':
      return 'Teacher';
    default:
      return `Baseline: ${source.slice('baseline:'.length)}`;
  }
}

export const KIND_SHORT: Record<BudgetKind, string> = { params: 'params', 'encoder-params': 'encoder params', flops: 'FLOPs' };

/** The report's tradeoff points, with the teacher added from `report.teacher` when the list lacks it. */
export function allPoints(report: RunReport): TradeoffPoint[] {
  const pts = [...report.tradeoff];
  if (!pts.some((p) => p.source === 'teacher') && report.tradeoff.length > 0) {
    const t = report.teacher;
    pts.push({
      source: 'teacher',
      keep: 1,
      kind: report.budget.kind,
      params: t.params,
      encoderParams: t.encoderParams,
      flopsPerToken: t.flopsPerToken,
      metric: t.metric?.value ?? null,
      ...(t.onnx ? { latencyMs: t.onnx.latencyMs } : {}),
    });
  }
  return pts;
}

/** Axes that have a value for at least two plotted points (latency only exists where ONNX was measured). */
export function availableAxes(points: readonly TradeoffPoint[]): TradeoffAxis[] {
  return AXIS_ORDER.filter(
    (a) => points.filter((p) => p.metric != null && AXES[a].value(p) != null).length >= (a.startsWith('latency') ? 2 : 1),
  );
}

/**
 * Indices of the Pareto-optimal points among `candidates` (smaller x and better metric win): a point is on
 * the front when no other point is at most as large and at least as good, with one of the two strict.
 * Returned sorted by x.
 */
export function paretoFront(xs: readonly number[], ys: readonly number[], higherBetter: boolean): number[] {
  const better = (a: number, b: number) => (higherBetter ? a > b : a < b);
  const order = xs.map((_, i) => i).sort((i, j) => xs[i] - xs[j] || (better(ys[i], ys[j]) ? -1 : better(ys[j], ys[i]) ? 1 : 0));
  const front: number[] = [];
  let best: number | null = null;
  for (const i of order) {
    if (best === null || better(ys[i], best)) {
      // Equal x with a worse y was sorted after the better one, so it never gets here.
      front.push(i);
      best = ys[i];
    }
  }
  return front;
}

export interface PlottedPoint {
  /** Index into `allPoints(report)`. */
  id: number;
  point: TradeoffPoint;
  x: number;
  y: number;
  pareto: boolean;
}

/** Points that can be drawn on `axis` (value and metric known), with the Pareto flag over this run's own points. */
export function plotted(report: RunReport, axis: TradeoffAxis): PlottedPoint[] {
  const pts = allPoints(report);
  const out: PlottedPoint[] = [];
  pts.forEach((p, id) => {
    const x = AXES[axis].value(p);
    if (x == null || p.metric == null || !Number.isFinite(p.metric)) return;
    out.push({ id, point: p, x, y: p.metric, pareto: false });
  });
  // The front is this run's: sweep, fine-tuned and teacher points. Baselines are drawn against it.
  const own = out.filter((p) => groupOf(p.point.source) !== 'baseline');
  for (const i of paretoFront(
    own.map((p) => p.x),
    own.map((p) => p.y),
    higherIsBetter(report.metricName),
  ))
    own[i].pareto = true;
  return out;
}

function interpolate(pairs: [number, number][], x: number): number | null {
  const pts = pairs.filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b)).sort((a, b) => a[0] - b[0]);
  if (!pts.length) return null;
  if (x <= pts[0][0]) return pts.length === 1 || x === pts[0][0] ? pts[0][1] : extrapolate(pts[0], pts[1], x);
  for (let i = 1; i < pts.length; i++) {
    const [x0, y0] = pts[i - 1];
    const [x1, y1] = pts[i];
    if (x <= x1) return x1 === x0 ? y1 : y0 + ((y1 - y0) * (x - x0)) / (x1 - x0);
  }
  return pts[pts.length - 1][1];
}

function extrapolate([x0, y0]: [number, number], [x1, y1]: [number, number], x: number): number {
  return x1 === x0 ? y0 : y0 + ((y1 - y0) * (x - x0)) / (x1 - x0);
}

/** The size a budget asks for, in the budget kind's own unit (keep × the teacher's). */
export function budgetTarget(report: RunReport, budget: { kind: BudgetKind; keep: number }): number {
  return budget.keep * report.teacher[KIND_KEY[budget.kind]];
}

/** Points used to translate between budget kinds and to predict: the sweep (re-thresholded masks) and the teacher. */
function sweepCurve(report: RunReport): TradeoffPoint[] {
  return allPoints(report).filter((p) => p.source === 'sweep' || p.source === 'teacher');
}

/** Where the budget falls on `axis`: exact when the axis measures the budget's kind, else interpolated over the sweep. */
export function budgetX(report: RunReport, budget: BudgetState, axis: TradeoffAxis): number | null {
  const key = KIND_KEY[budget.kind];
  if (axis === key) return budgetTarget(report, budget);
  const p = budget.predicted;
  if (
    p &&
    p.kind === budget.kind &&
    Math.abs(p.keep - budget.keep) < 1e-9 &&
    (axis === 'params' || axis === 'encoderParams' || axis === 'flopsPerToken')
  )
    return p[axis];
  const target = budgetTarget(report, budget);
  const pairs: [number, number][] = [];
  for (const q of allPoints(report)) {
    const v = AXES[axis].value(q);
    if (v != null) pairs.push([q[key], v]);
  }
  return interpolate(pairs, target);
}

/** The sweep's size and metric at a budget, interpolated between re-thresholded points (when the extension sent none). */
export function predictAtBudget(report: RunReport, budget: { kind: BudgetKind; keep: number }): PredictedPoint | null {
  const curve = sweepCurve(report);
  if (curve.length < 2) return null;
  const key = KIND_KEY[budget.kind];
  const target = budgetTarget(report, budget);
  const along = (f: (p: TradeoffPoint) => number | null) =>
    interpolate(
      curve.filter((p) => f(p) != null).map((p) => [p[key], f(p) as number]),
      target,
    );
  const params = along((p) => p.params);
  const encoderParams = along((p) => p.encoderParams);
  const flopsPerToken = along((p) => p.flopsPerToken);
  if (params == null || encoderParams == null || flopsPerToken == null) return null;
  return {
    kind: budget.kind,
    keep: budget.keep,
    basis: 'interpolated',
    params: Math.round(params),
    encoderParams: Math.round(encoderParams),
    flopsPerToken: Math.round(flopsPerToken),
    metric: along((p) => p.metric),
  };
}

export function metricAxisLabel(name: MetricName): string {
  return name === 'accuracy' ? '↑ Accuracy (higher is better)' : '↓ Perplexity (lower is better)';
}

const csvCell = (v: string | number | null | undefined): string => {
  if (v == null) return '';
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** All points (plotted or not) as CSV, exact figures, with the Pareto flag on the parameters axis. */
export function tradeoffCsv(report: RunReport): string {
  const pts = allPoints(report);
  const front = new Set(
    plotted(report, 'params')
      .filter((p) => p.pareto)
      .map((p) => p.id),
  );
  const head = [
    'source',
    'keep',
    'kind',
    'params',
    'encoder_params',
    'flops_per_token',
    report.metricName,
    'latency_ms_b1',
    'latency_ms_b32',
    'pareto_params',
  ];
  const rows = pts.map((p, i) =>
    [
      p.source,
      p.keep,
      p.kind,
      p.params,
      p.encoderParams,
      p.flopsPerToken,
      p.metric,
      p.latencyMs?.['1'],
      p.latencyMs?.['32'],
      front.has(i) ? 1 : 0,
    ]
      .map(csvCell)
      .join(','),
  );
  return [head.join(','), ...rows].join('\n') + '\n';
}

/** "keep 40.0% of encoder parameters". */
export function budgetLabel(b: { kind: BudgetKind; keep: number }): string {
  return `keep ${fmtPct(b.keep)} of ${KIND_LABEL[b.kind]}`;
}
