/** `vtrans inspect`: a model project's architecture and size, from config.json and the weight headers only. */
import { countParams, countParamsFromTensors, flopsPerToken, type ParamCounts } from './accounting';
import { readModelShape, type Family, type Task } from './modelShape';
import { readWeightsHeader } from './safetensors';
import { fmtCount } from './findings';

export interface InspectResult {
  modelDir: string;
  family: Family;
  task: Task;
  layers: number;
  /** Query heads per layer (one number when every layer has the same). */
  heads: number | number[];
  kvHeads: number | number[];
  ffn: number | number[];
  hidden: number;
  headDim: number;
  vocab: number;
  numLabels: number;
  dtype: string;
  weightFiles: string[];
  fileBytes: number;
  params: ParamCounts;
  /** 'weights' when counted from the safetensors headers, 'config' when derived (pytorch_model.bin). */
  paramsFrom: 'weights' | 'config';
  seqLen: number;
  flopsPerToken: number;
  pruned: boolean;
}

const collapse = (xs: number[]): number | number[] => (xs.every((x) => x === xs[0]) ? xs[0] : xs);

export function inspectModel(modelDir: string, opts: { seqLen?: number; task?: Task } = {}): InspectResult {
  const shape = readModelShape(modelDir, opts.task);
  const weights = readWeightsHeader(modelDir);
  const fromWeights = weights.tensors.size > 0;
  const seqLen = opts.seqLen ?? 128;
  return {
    modelDir,
    family: shape.family,
    task: shape.task,
    layers: shape.layers.length,
    heads: collapse(shape.layers.map((l) => l.heads)),
    kvHeads: collapse(shape.layers.map((l) => l.kvHeads)),
    ffn: collapse(shape.layers.map((l) => l.ffn)),
    hidden: shape.hidden,
    headDim: shape.headDim,
    vocab: shape.vocab,
    numLabels: shape.numLabels,
    dtype: dominantDtype(weights.tensors.values()) ?? shape.torchDtype ?? 'unknown',
    weightFiles: weights.files,
    fileBytes: weights.bytes,
    params: fromWeights ? countParamsFromTensors(weights.tensors) : countParams(shape),
    paramsFrom: fromWeights ? 'weights' : 'config',
    seqLen,
    flopsPerToken: flopsPerToken(shape, seqLen),
    pruned: shape.pruned,
  };
}

function dominantDtype(tensors: Iterable<{ dtype: string; shape: number[] }>): string | undefined {
  const byDtype = new Map<string, number>();
  for (const t of tensors) byDtype.set(t.dtype, (byDtype.get(t.dtype) ?? 0) + t.shape.reduce((a, b) => a * b, 1));
  let best: string | undefined;
  for (const [k, v] of byDtype) if (best === undefined || v > byDtype.get(best)!) best = k;
  return best;
}

/** The one compact count form (src/core/findings.ts fmtCount). */
export const formatCount = fmtCount;

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

export function formatInspect(r: InspectResult): string {
  const show = (v: number | number[]) => (Array.isArray(v) ? `[${v.join(', ')}]` : String(v));
  const rows: Array<[string, string]> = [
    ['model', `${r.modelDir} (${r.family}${r.pruned ? ', pruned' : ''})`],
    ['task', r.task === 'lm' ? 'causal language modelling' : `sequence classification (${r.numLabels} labels)`],
    ['layers', String(r.layers)],
    ['heads', show(r.heads)],
    ['key/value heads', show(r.kvHeads)],
    ['hidden size', `${r.hidden} (head dim ${r.headDim})`],
    ['FFN size', show(r.ffn)],
    ['vocabulary', String(r.vocab)],
    ['dtype', r.dtype],
    ['weights', `${r.weightFiles.join(', ')} (${formatBytes(r.fileBytes)})`],
    ['parameters', `${r.params.total.toLocaleString('en-US')} (${formatCount(r.params.total)})`],
    ['  embeddings', r.params.embedding.toLocaleString('en-US')],
    ['  non-embedding', r.params.nonEmbedding.toLocaleString('en-US')],
    ['  encoder (CoFi)', r.params.encoder.toLocaleString('en-US')],
    [
      `FLOPs/token @${r.seqLen}`,
      `${r.flopsPerToken.toLocaleString('en-US', { maximumFractionDigits: 0 })} (${formatCount(r.flopsPerToken)})`,
    ],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}
