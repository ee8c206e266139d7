/**
 * The tradeoff panel's data, without the DOM: axes, the Pareto front, where the budget falls on the x axis
 * (from the backend's prediction), and the CSV export. Pure functions (unit-tested in node).
 */
import { fmtCount, fmtFlops, fmtInt, fmtMs, fmtPct } from '../src/core/findings';
import { BUDGET_KIND_LABEL } from '../src/core/labels';
import {
  higherIsBetter,
  tabulatedPrediction,
  type BudgetKind,
  type MetricName,
  type PredictedSize,
  type RunReport,
  type TradeoffPoint,
} from '../src/core/report';
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

/** Axis ticks in the same compact form as every other count: 500000 → "500k", 1500000 → "1.5M", 6.7e9 → "6.7B". */
export const compactTick = fmtCount;
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

/** 'shape': the sweep in the output shape the run did not ship (`sweep:uniform` / `sweep:heterogeneous`). */
export type SourceGroup = 'sweep' | 'finetuned' | 'teacher' | 'baseline' | 'shape';
export const groupOf = (source: TradeoffPoint['source']): SourceGroup =>
  source.startsWith('baseline:') ? 'baseline' : source.startsWith('sweep:') ? 'shape' : (source as SourceGroup);

const SHAPE_LABEL: Record<string, string> = {
  uniform: 'uniform shape: loads in stock transformers',
  heterogeneous: 'heterogeneous shape: per-layer sizes',
};

export function sourceLabel(source: TradeoffPoint['source']): string {
  switch (source) {
    case 'sweep':
      return 'Sweep (re-thresholded masks)';
    case 'finetuned':
      return 'Fine-tuned run';
    case 'teacher':
      return 'Teacher (unpruned)';
    default:
      if (source.startsWith('sweep:')) return `Sweep, ${SHAPE_LABEL[source.slice('sweep:'.length)] ?? source.slice('sweep:'.length)}`;
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
      if (source.startsWith('sweep:')) return `Sweep, ${source.slice('sweep:'.length)}`;
      return `Baseline: ${source.slice('baseline:'.length)}`;
  }
}

/** Points a model can be exported at (re-thresholding the run's masks), with the output shape to export in. */
export function exportShape(p: TradeoffPoint): TradeoffPoint['shape'] | false {
  return p.source === 'sweep' || p.source === 'finetuned' || p.source.startsWith('sweep:') ? p.shape : false;
}

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

/** The size a budget asks for, in the budget kind's own unit (keep × the teacher's). */
export function budgetTarget(report: RunReport, budget: { kind: BudgetKind; keep: number }): number {
  return budget.keep * report.teacher[KIND_KEY[budget.kind]];
}

/**
 * The backend's prediction at the budget: what the extension sent for exactly this budget, else report.json's
 * prediction table (report.html, or before the backend answered). Null when neither has one.
 */
export function predictionAt(report: RunReport, budget: BudgetState): PredictedPoint | null {
  const p = budget.predicted;
  if (p && p.kind === budget.kind && Math.abs(p.keep - budget.keep) < 1e-9) return p;
  const row = tabulatedPrediction(report, budget);
  return row ? { kind: budget.kind, keep: budget.keep, ...pick(row), basis: 'table' } : null;
}

const pick = ({ params, encoderParams, flopsPerToken, metric }: PredictedSize) => ({ params, encoderParams, flopsPerToken, metric });

/** Where the budget falls on `axis`: the budget itself on its own kind's axis, the predicted size on the other
 * size axes; no place on the latency axes (nothing predicts a latency). */
export function budgetX(report: RunReport, budget: BudgetState, axis: TradeoffAxis): number | null {
  if (axis === KIND_KEY[budget.kind]) return budgetTarget(report, budget);
  if (axis !== 'params' && axis !== 'encoderParams' && axis !== 'flopsPerToken') return null;
  return predictionAt(report, budget)?.[axis] ?? null;
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
  return `keep ${fmtPct(b.keep)} of ${BUDGET_KIND_LABEL[b.kind]}`;
}
