/**
 * The extension/CLI ↔ backend protocol: JSON-RPC 2.0 over stdio with `Content-Length` framing.
 * Mirrored by backend/vtrans/protocol.py (method names, error codes, payloads).
 */
import { NotificationType, NotificationType0, RequestType, RequestType0 } from 'vscode-jsonrpc/node';
import type { BudgetKind, Method, Metric, ModelSummary, TradeoffPoint, UnitCounts } from './report';

export const ErrorCodes = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** Bad input the user can fix; the message names the file or setting. */
  UserError: -32001,
  RequestCancelled: -32800,
} as const;

export interface InitializeResult {
  version: string;
  torch: string;
  python: string;
  cuda: boolean;
  gpus: number;
  device: 'cpu' | 'cuda';
  threads: number;
  gpuName: string | null;
  methods: Method[];
  budgets: BudgetKind[];
}

export interface DistillParams {
  enabled?: boolean;
  temperature?: number;
  alpha?: number;
  hidden?: number;
}

export interface VibParams {
  initMu?: number;
  initLogvar?: number;
  beta?: number;
  temperature?: number;
  kl?: Partial<Record<Granularity, number>>;
  threshold?: Partial<Record<Granularity, number>>;
}

export type Granularity = 'hidden' | 'heads' | 'attn' | 'ffn' | 'ffn_layer';

/** Settings of one compression (backend/vtrans/settings.py documents the defaults). */
export interface CompressParams {
  modelDir: string;
  trainShards: string;
  evalShards: string;
  testShards?: string;
  runDir: string;
  method?: Method;
  keep?: number;
  budget?: BudgetKind;
  task?: 'classification' | 'lm';
  dataFraction?: number;
  pruneEpochs?: number;
  minPruneSteps?: number;
  finetuneEpochs?: number;
  minFinetuneSteps?: number;
  batchSize?: number;
  lr?: number;
  maskLr?: number;
  lambdaLr?: number;
  warmup?: number;
  roundTo?: number;
  device?: string;
  /** auto: bf16 autocast on GPUs that support it, fp32 elsewhere. */
  precision?: 'auto' | 'fp32' | 'bf16';
  seed?: number;
  checkpointEvery?: number;
  evalLimit?: number;
  /** Cap on the examples of the teacher/student metric (all by default). */
  evalExamples?: number;
  sweep?: number[];
  probeExamples?: number;
  specialTokenIds?: number[];
  withTokenTypes?: boolean;
  distill?: DistillParams;
  vib?: VibParams;
  threads?: number;
  /** GPUs for data-parallel training (torchrun workers when > 1). */
  gpus?: number;
  resume?: boolean;
}

export interface CompressResult {
  status: 'done';
  runDir: string;
  method: Method;
  budget: BudgetKind;
  keep: number;
  achieved: number;
  teacher: ModelSummary;
  student: ModelSummary;
  units: UnitCounts;
  wallSeconds: number;
  modelDir: string;
  onnxPath: string;
  test: { teacher: Metric; student: Metric } | null;
}

export interface EvaluateParams {
  modelDir: string;
  shards: string;
  batchSize?: number;
  limit?: number;
  device?: string;
}

export interface PredictParams {
  runDir: string;
  keep: number;
  budget?: BudgetKind;
}

export interface PredictResult {
  keep: number;
  kind: BudgetKind;
  achieved: number;
  params: number;
  encoderParams: number;
  flopsPerToken: number;
  /** The sweep's metric interpolated at this size (re-thresholded, not fine-tuned). */
  metric: number | null;
  metricSource: 'sweep-interpolation';
  units: UnitCounts;
  seconds: number;
}

export interface RethresholdParams {
  runDir: string;
  keep: number;
  budget?: BudgetKind;
  outDir: string;
  /** > 0: a short mask-only re-tune towards the new budget first. */
  retuneSteps?: number;
  skipEval?: boolean;
}

export interface RethresholdResult {
  status: 'done';
  runDir: string;
  parent: string;
  method: 'rethreshold';
  budget: BudgetKind;
  keep: number;
  achieved: number;
  student: ModelSummary;
  units: UnitCounts;
  modelDir: string;
  onnxPath: string;
}

export interface SweepParams {
  runDir: string;
  budgets: number[];
  budget?: BudgetKind;
  evalShards?: string;
  limit?: number;
}

export interface SweepResult {
  runDir: string;
  points: TradeoffPoint[];
}

export interface ProbeParams {
  modelDir: string;
  shards: string;
  examples?: number;
  specialTokenIds?: number[];
  runDir?: string;
}

export interface HeadProbe {
  special: number;
  current: number;
  previous: number;
  keywords: number;
  entropy: number;
  kept?: boolean;
}

export interface ProbeResult {
  examples: number;
  keywordIds: number[];
  seqLen: number;
  layers: HeadProbe[][];
}

export interface InspectParams {
  modelDir: string;
  seqLen?: number;
  task?: 'classification' | 'lm';
}

export interface AddHeadParams {
  /** The pretrained checkpoint (read only). */
  modelDir: string;
  /** A new or empty folder, outside the source. */
  outDir: string;
  labels: string[];
  seed?: number;
}

export interface AddHeadResult {
  modelDir: string;
  family: string;
  labels: string[];
  params: number;
}

export interface ProgressParams {
  /** The request this progress belongs to. */
  id: number | string;
  runDir: string;
  phase: 'load' | 'prune' | 'select' | 'finetune' | 'export' | 'sweep' | 'probe' | 'evaluate';
  step: number;
  total: number;
  /** Seconds left in this phase, when known. */
  eta: number | null;
  loss?: number;
  kl?: number;
  /** 1 − expected size under the soft gates. */
  sparsity?: number;
  target?: number;
  lambda?: [number, number];
  achieved?: number;
}

export const Requests = {
  initialize: new RequestType<{ threads?: number }, InitializeResult, void>('initialize'),
  inspect: new RequestType<InspectParams, unknown, void>('inspect'),
  addHead: new RequestType<AddHeadParams, AddHeadResult, void>('addHead'),
  compress: new RequestType<CompressParams, CompressResult, void>('compress'),
  evaluate: new RequestType<EvaluateParams, Metric, void>('evaluate'),
  predict: new RequestType<PredictParams, PredictResult, void>('predict'),
  rethreshold: new RequestType<RethresholdParams, RethresholdResult, void>('rethreshold'),
  sweep: new RequestType<SweepParams, SweepResult, void>('sweep'),
  probe: new RequestType<ProbeParams, ProbeResult, void>('probe'),
  shutdown: new RequestType0<null, void>('shutdown'),
};

export const Notifications = {
  progress: new NotificationType<ProgressParams>('progress'),
  exit: new NotificationType0('exit'),
};
