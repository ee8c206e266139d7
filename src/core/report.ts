/**
 * `report.json` of a run directory: everything the views and `report.html` show. The types are the backend's
 * contracts (src/core/contracts.ts, generated from backend/vtrans/report.py); the backend is the file's one
 * writer. Browser-safe: no Node imports, so the webviews import it too.
 */
export type {
  BudgetKind,
  Environment,
  HeadReport,
  LayerReport,
  Method,
  Metric,
  MetricName,
  ModelInfo,
  ModelSummary,
  OnnxMeasurement,
  PredictedSize,
  PredictionTable,
  ProbeName,
  RunReport,
  TestMetrics,
  TradeoffPoint,
  UnitCount,
  UnitCounts,
} from './contracts';
export { PROBE_NAMES } from './contracts';
import type { BudgetKind, MetricName, PredictedSize, RunReport } from './contracts';

export const higherIsBetter = (name: MetricName): boolean => name !== 'perplexity';

/**
 * The backend's prediction at a budget, looked up in report.json's table (the run's budget kind, at the nearest
 * hundredth) — for views without a backend: a restricted workspace, report.html. Undefined for another kind.
 */
export function tabulatedPrediction(report: RunReport, budget: { kind: BudgetKind; keep: number }): PredictedSize | undefined {
  const table = report.predictions;
  if (!table || table.kind !== budget.kind || !table.points.length) return undefined;
  let best = table.points[0];
  for (const p of table.points) if (Math.abs(p.keep - budget.keep) < Math.abs(best.keep - budget.keep)) best = p;
  return best;
}
