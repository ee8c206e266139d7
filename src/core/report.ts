/**
 * `report.json` of a run directory: everything the views and `report.html` show. Written by the backend
 * (`vtrans/report.py` mirrors these types) and completed by src/core (onnxruntime-node measurements).
 * Browser-safe: no Node imports, so the webviews import it too.
 */

export type BudgetKind = 'params' | 'encoder-params' | 'flops';
export type Method = 'vtrans' | 'fast' | 'faster';
export type MetricName = 'accuracy' | 'perplexity';

export interface Metric {
  name: MetricName;
  value: number;
  /** Macro F1 for classification, when computed. */
  f1?: number;
  /** Number of eval examples (classification) or tokens (LM). */
  count?: number;
}

export interface OnnxMeasurement {
  /** Relative to the run directory. */
  path: string;
  bytes: number;
  /** Median latency in milliseconds at sequence length `seqLen`, by batch size ("1", "32"). */
  latencyMs: Record<string, number>;
  seqLen: number;
  threads: number;
  /** The metric computed in TypeScript from onnxruntime-node's logits on the eval shards. */
  metric?: Metric;
}

export interface ModelSummary {
  params: number;
  encoderParams: number;
  flopsPerToken: number;
  metric: Metric | null;
  onnx?: OnnxMeasurement;
}

export interface UnitCount {
  kept: number;
  total: number;
}

export interface UnitCounts {
  hidden: UnitCount;
  heads: UnitCount;
  ffn: UnitCount;
  attentionLayers: UnitCount;
  ffnLayers: UnitCount;
}

/** One point of the size/accuracy tradeoff. */
export interface TradeoffPoint {
  /** 'sweep': masks re-thresholded without training; 'finetuned': a trained and fine-tuned run;
   *  'teacher': the unpruned model; 'baseline:<name>': another pruning method run by the bench harness. */
  source: 'sweep' | 'finetuned' | 'teacher' | `baseline:${string}`;
  /** Requested budget (fraction of `kind`). */
  keep: number;
  kind: BudgetKind;
  params: number;
  encoderParams: number;
  flopsPerToken: number;
  metric: number | null;
  latencyMs?: Record<string, number>;
  units?: UnitCounts;
}

export type ProbeName = 'special' | 'current' | 'previous' | 'keywords' | 'entropy';
export const PROBE_NAMES: readonly ProbeName[] = ['special', 'current', 'previous', 'keywords', 'entropy'];

export interface HeadReport {
  index: number;
  kept: boolean;
  /** VIB retention score log α = log μ² − log σ²; a head is kept while it is above `threshold`. */
  logAlpha: number;
  /** Mean attention mass on special tokens, the current token, the previous token, task keywords; and mean entropy (nats). */
  probes?: Partial<Record<ProbeName, number>>;
}

export interface LayerReport {
  index: number;
  heads: HeadReport[];
  /** Heads per key/value group (1 for multi-head attention); a GQA group is kept or pruned as one. */
  groupSize: number;
  ffn: UnitCount;
  attentionKept: boolean;
  ffnKept: boolean;
  /** Best effective head score of the layer (log α − threshold, sublayer gate applied). */
  attentionScore?: number | null;
}

export interface RunReport {
  version: 1;
  runId: string;
  createdAt: string;
  status: 'running' | 'done' | 'failed' | 'cancelled';
  model: {
    dir: string;
    family: string;
    task: 'classification' | 'lm';
    layers: number;
    heads: number;
    hidden: number;
    ffn: number;
    vocab: number;
  };
  method: Method;
  budget: { kind: BudgetKind; keep: number; achieved: number };
  metricName: MetricName;
  teacher: ModelSummary;
  student: ModelSummary | null;
  units: UnitCounts | null;
  layers: LayerReport[];
  hiddenKept: UnitCount | null;
  threshold: number;
  /** Sorted by size, ascending. */
  tradeoff: TradeoffPoint[];
  /** keywordIds are the token ids the backend found; keywords their decoded text (filled in by src/core). */
  probes?: { examples: number; keywords: string[]; keywordIds?: number[]; seqLen: number };
  /** Metrics on the test data, when the run was given some (model selection used the eval data only). */
  test?: { teacher: Metric; student: Metric } | null;
  /** A re-thresholded run: the run whose masks it was cut from. */
  parent?: string;
  wallSeconds?: number;
  environment?: { device: string; torch: string; threads: number; python: string; gpu?: string };
}

export const higherIsBetter = (name: MetricName): boolean => name !== 'perplexity';
