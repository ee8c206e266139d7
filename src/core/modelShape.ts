/**
 * The architecture of a model project, read from its Hugging Face `config.json`, normalised across the
 * four supported families. Pruned models written by VTrans keep the family's own fields and add
 * per-layer sizes (see docs/model-format.md):
 *
 *   head_dim                      size of one attention head (unchanged by pruning)
 *   layer_num_attention_heads     [L] query heads kept in each layer (0: attention sublayer removed)
 *   layer_num_key_value_heads     [L] key/value heads kept in each layer (llama; equals the query heads otherwise)
 *   layer_intermediate_size       [L] FFN neurons kept in each layer (0: FFN sublayer removed)
 *   head_hidden_size              bert/roberta: output width of the pooler / classifier dense layer
 *
 * and `hidden_size` / `n_embd` hold the pruned hidden width.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MODEL_LIMITS } from './contracts';
import { UserError } from './errors';

export const FAMILIES = ['bert', 'roberta', 'gpt2', 'llama'] as const;
export type Family = (typeof FAMILIES)[number];
export type Task = 'classification' | 'lm';

export interface LayerShape {
  /** Query heads; 0 means the attention sublayer is removed. */
  heads: number;
  /** Key/value heads (GQA groups); equals `heads` for multi-head attention. */
  kvHeads: number;
  /** FFN intermediate neurons; 0 means the FFN sublayer is removed. */
  ffn: number;
}

export interface ModelShape {
  family: Family;
  hidden: number;
  headDim: number;
  layers: LayerShape[];
  vocab: number;
  maxPositions: number;
  /** BERT/RoBERTa segment embeddings. */
  typeVocab: number;
  /** bert/roberta: output width of the pooler / classifier dense layer (`head_hidden_size`, else the hidden size). */
  headHidden: number;
  /** Number of labels of a sequence-classification head, or 0 when the model is a causal LM / bare encoder. */
  numLabels: number;
  task: Task;
  tiedEmbeddings: boolean;
  /** llama only: bias terms on the attention and MLP projections. */
  attentionBias: boolean;
  mlpBias: boolean;
  /** Source `torch_dtype`, when the config names it. */
  torchDtype?: string;
  /** True when the config carries VTrans per-layer sizes. */
  pruned: boolean;
}

type Json = Record<string, unknown>;

export function readConfig(modelDir: string): Json {
  if (!fs.existsSync(modelDir) || !fs.statSync(modelDir).isDirectory()) {
    throw new UserError(`${modelDir}: model directory not found.`, 'Pass the folder that holds config.json and the weights.');
  }
  const file = path.join(modelDir, 'config.json');
  if (!fs.existsSync(file)) {
    throw new UserError(`${file}: missing.`, 'A Hugging Face model directory needs config.json next to its weights.');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message}).`, 'Fix the syntax or re-save the config.');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new UserError(`${file}: must be a JSON object.`, 'Re-save the config with save_pretrained.');
  }
  return raw as Json;
}

export function readModelShape(modelDir: string, taskOverride?: Task): ModelShape {
  return shapeFromConfig(readConfig(modelDir), path.join(modelDir, 'config.json'), taskOverride);
}

/** Normalises a parsed config.json; `file` only names the source in error messages. */
export function shapeFromConfig(cfg: Json, file: string, taskOverride?: Task): ModelShape {
  const num = (key: string, fallback?: number): number => {
    const v = cfg[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new UserError(`${file}: "${key}" is missing.`, `Add "${key}" to the config (model_type ${String(cfg.model_type)}).`);
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
      throw new UserError(`${file}: "${key}" must be a non-negative integer, got ${JSON.stringify(v)}.`, 'Fix the value in config.json.');
    }
    return v;
  };
  const family = cfg.model_type;
  if (typeof family !== 'string' || !(FAMILIES as readonly string[]).includes(family)) {
    throw new UserError(
      `${file}: model_type ${JSON.stringify(family)} is not supported.`,
      `Supported model_type values: ${FAMILIES.join(', ')}.`,
    );
  }
  const fam = family as Family;
  const isGpt2 = fam === 'gpt2';
  const hidden = num(isGpt2 ? 'n_embd' : 'hidden_size');
  const nLayers = num(isGpt2 ? 'n_layer' : 'num_hidden_layers');
  const heads = num(isGpt2 ? 'n_head' : 'num_attention_heads');
  const kvHeads = fam === 'llama' ? num('num_key_value_heads', heads) : heads;
  const headDim = num('head_dim', heads > 0 ? Math.floor(hidden / heads) : 0);
  const ffn = isGpt2 ? num('n_inner', 4 * hidden) : num('intermediate_size');
  if (hidden === 0 || nLayers === 0) throw new UserError(`${file}: hidden size and layer count must be positive.`, 'Fix config.json.');
  if (heads === 0)
    throw new UserError(
      `${file}: "${isGpt2 ? 'n_head' : 'num_attention_heads'}" is 0; a transformer needs at least one attention head.`,
      'Fix config.json.',
    );
  const vocabSize = num('vocab_size');
  for (const [what, value, limit] of [
    ['layers', nLayers, MODEL_LIMITS.layers],
    ['hidden', hidden, MODEL_LIMITS.hidden],
    ['ffn', ffn, MODEL_LIMITS.ffn],
    ['vocab', vocabSize, MODEL_LIMITS.vocab],
  ] as const) {
    if (value > limit)
      throw new UserError(`${file}: ${what} = ${value} is beyond any model VTrans can hold (at most ${limit}).`, 'Fix config.json.');
  }
  if (!cfg.head_dim && heads > 0 && hidden % heads !== 0) {
    throw new UserError(`${file}: hidden size ${hidden} is not divisible by ${heads} heads.`, 'Set "head_dim" explicitly.');
  }
  if (heads % Math.max(kvHeads, 1) !== 0) {
    throw new UserError(`${file}: ${heads} attention heads are not a multiple of ${kvHeads} key/value heads.`, 'Fix num_key_value_heads.');
  }
  const layers = perLayer(cfg, file, nLayers, { heads, kvHeads, ffn }, fam);
  const labels = numLabels(cfg);
  // Decoders without a classification head are language models; encoders are always classifiers here.
  const defaultTask: Task = labels > 0 || fam === 'bert' || fam === 'roberta' ? 'classification' : 'lm';
  return {
    family: fam,
    hidden,
    headDim,
    layers,
    vocab: vocabSize,
    maxPositions: isGpt2 ? num('n_positions', 1024) : num('max_position_embeddings', 2048),
    typeVocab: fam === 'bert' || fam === 'roberta' ? num('type_vocab_size', fam === 'bert' ? 2 : 1) : 0,
    headHidden: fam === 'bert' || fam === 'roberta' ? num('head_hidden_size', hidden) : 0,
    numLabels: labels,
    task: taskOverride ?? defaultTask,
    tiedEmbeddings: cfg.tie_word_embeddings === undefined ? fam !== 'llama' : cfg.tie_word_embeddings === true,
    attentionBias: fam === 'llama' ? cfg.attention_bias === true : true,
    mlpBias: fam === 'llama' ? cfg.mlp_bias === true : true,
    torchDtype: typeof cfg.torch_dtype === 'string' ? cfg.torch_dtype : typeof cfg.dtype === 'string' ? cfg.dtype : undefined,
    pruned: Array.isArray(cfg.layer_num_attention_heads) || Array.isArray(cfg.layer_intermediate_size),
  };
}

function perLayer(cfg: Json, file: string, n: number, uniform: LayerShape, family: Family): LayerShape[] {
  const list = (key: string, fallback: number): number[] => {
    const v = cfg[key];
    if (v === undefined) return Array(n).fill(fallback);
    if (!Array.isArray(v) || v.length !== n || v.some((x) => typeof x !== 'number' || !Number.isInteger(x) || x < 0)) {
      throw new UserError(`${file}: "${key}" must list ${n} non-negative integers (one per layer).`, 'Fix the per-layer sizes.');
    }
    return v as number[];
  };
  const heads = list('layer_num_attention_heads', uniform.heads);
  const kv = family === 'llama' ? list('layer_num_key_value_heads', uniform.kvHeads) : heads;
  const ffn = list('layer_intermediate_size', uniform.ffn);
  return heads.map((h, i) => {
    if ((h === 0) !== (kv[i] === 0) || (kv[i] > 0 && h % kv[i] !== 0)) {
      throw new UserError(
        `${file}: layer ${i} has ${h} query heads and ${kv[i]} key/value heads.`,
        'Query heads must be a multiple of key/value heads.',
      );
    }
    return { heads: h, kvHeads: kv[i], ffn: ffn[i] };
  });
}

/**
 * Hugging Face writes a default two-label `id2label` into every config, so only the architecture
 * name tells whether the checkpoint has a sequence-classification head.
 */
function numLabels(cfg: Json): number {
  const archs = Array.isArray(cfg.architectures) ? (cfg.architectures as unknown[]).map(String) : [];
  if (!archs.some((a) => a.endsWith('ForSequenceClassification'))) return 0;
  if (typeof cfg.num_labels === 'number') return cfg.num_labels;
  if (cfg.id2label && typeof cfg.id2label === 'object') return Object.keys(cfg.id2label as object).length;
  return 2;
}

/** Label names in index order, from `id2label`, when the config has them. */
export function labelNames(cfg: Json): string[] | undefined {
  const map = cfg.id2label;
  if (!map || typeof map !== 'object') return undefined;
  const entries = Object.entries(map as Record<string, unknown>).map(([k, v]) => [Number(k), String(v)] as const);
  if (entries.some(([k]) => !Number.isInteger(k))) return undefined;
  entries.sort((a, b) => a[0] - b[0]);
  return entries.map(([, v]) => v);
}
