/**
 * Size accounting for a model shape: parameter counts by part and forward FLOPs per token.
 * The backend implements the same formulas in each family module (`backend/vtrans/models/<family>.py`, dispatched
 * by `vtrans/structure.py`); test/unit/accounting-parity.test.ts checks that both sides and PyTorch agree.
 *
 * Parameters (Hugging Face layouts, H = hidden width, d = head_dim, h/g = query/key-value heads, F = FFN size):
 *   bert/roberta  embeddings V·H + P·H + T·H + 2H (LayerNorm);
 *                 per layer: attention (if h>0) 3(H·h·d + h·d) + h·d·H + H, its LayerNorm 2H (kept even when
 *                 the attention is removed: post-LN), FFN (if F>0) 2·H·F + F + H, its LayerNorm 2H;
 *                 pooler H·P + P; classifier P·C + C (roberta: dense H·P + P, out_proj P·C + C, no pooler),
 *                 with P = head_hidden_size (the unpruned H).
 *   gpt2          wte V·H, wpe P·H; per layer: ln_1 2H + c_attn H·3hd + 3hd + c_proj hd·H + H (if h>0),
 *                 ln_2 2H + c_fc H·F + F + c_proj F·H + H (if F>0); ln_f 2H; lm_head V·H when untied; score H·C.
 *   llama         embed V·H; per layer: input norm H + q H·h·d + k,v 2·H·g·d + o h·d·H (+ biases) (if h>0),
 *                 post-attention norm H + gate, up, down 3·H·F (if F>0); final norm H; lm_head V·H when untied; score H·C.
 *
 * Encoder parameters follow CoFi's convention: everything inside the transformer blocks (projections,
 * biases, norms); embeddings, pooler, final norm and task heads excluded.
 *
 * FLOPs per token at sequence length n count 2 per multiply-accumulate of the matrix products only
 * (norms, softmax, activations and embedding lookups are ignored, as is usual):
 *   per layer  2·H·(h + 2g)·d  (Q, K, V)  + 2·h·d·H (output)  + 4·n·h·d (scores and weighted sum over n keys)
 *              + 2·H·F·m  with m = 2 (up, down) or 3 (llama: gate, up, down)
 *   head       LM: 2·H·V per token; classification: (pooler/dense 2·H·P + classifier 2·P·C) / n, once per sequence
 *              (decoders: score 2·H·C / n).
 */
import type { LayerShape, ModelShape } from './modelShape';

export interface ParamCounts {
  total: number;
  /** Token, position and segment embeddings (and BERT's embedding LayerNorm). */
  embedding: number;
  /** total − embedding. */
  nonEmbedding: number;
  /** CoFi's "encoder params": the transformer blocks only. */
  encoder: number;
}

function layerParams(s: ModelShape, l: LayerShape): number {
  const { hidden: H, headDim: d } = s;
  const { heads: h, kvHeads: g, ffn: F } = l;
  switch (s.family) {
    case 'bert':
    case 'roberta':
      return (h > 0 ? 3 * (H * h * d + h * d) + h * d * H + H : 0) + 2 * H + (F > 0 ? 2 * H * F + F + H : 0) + 2 * H;
    case 'gpt2':
      return (h > 0 ? 2 * H + H * 3 * h * d + 3 * h * d + h * d * H + H : 0) + (F > 0 ? 2 * H + H * F + F + F * H + H : 0);
    case 'llama': {
      const attnBias = s.attentionBias ? h * d + 2 * g * d + H : 0;
      const mlpBias = s.mlpBias ? 2 * F + H : 0;
      return (h > 0 ? H + H * h * d + 2 * H * g * d + h * d * H + attnBias : 0) + (F > 0 ? H + 3 * H * F + mlpBias : 0);
    }
  }
}

function embeddingParams(s: ModelShape): number {
  const { hidden: H, vocab: V, maxPositions: P } = s;
  switch (s.family) {
    case 'bert':
    case 'roberta':
      return V * H + P * H + s.typeVocab * H + 2 * H;
    case 'gpt2':
      return V * H + P * H;
    case 'llama':
      return V * H;
  }
}

/** Pooler, final norm and task head. */
function headParams(s: ModelShape): number {
  const { hidden: H, vocab: V, numLabels: C, headHidden: P } = s;
  switch (s.family) {
    case 'bert':
      return H * P + P + (C > 0 ? P * C + C : 0);
    case 'roberta':
      return C > 0 ? H * P + P + P * C + C : 0;
    case 'gpt2':
      return 2 * H + (C > 0 ? H * C : s.tiedEmbeddings ? 0 : V * H);
    case 'llama':
      return H + (C > 0 ? H * C : s.tiedEmbeddings ? 0 : V * H);
  }
}

export function countParams(s: ModelShape): ParamCounts {
  const encoder = s.layers.reduce((sum, l) => sum + layerParams(s, l), 0);
  const embedding = embeddingParams(s);
  const total = embedding + encoder + headParams(s);
  return { total, embedding, nonEmbedding: total - embedding, encoder };
}

export function flopsPerToken(s: ModelShape, seqLen: number): number {
  const { hidden: H, headDim: d } = s;
  const ffnMats = s.family === 'llama' ? 3 : 2;
  let flops = 0;
  for (const { heads: h, kvHeads: g, ffn: F } of s.layers) {
    if (h > 0) flops += 2 * H * (h + 2 * g) * d + 2 * h * d * H + 4 * seqLen * h * d;
    if (F > 0) flops += 2 * H * F * ffnMats;
  }
  if (s.task === 'lm') {
    flops += 2 * H * s.vocab;
  } else if (s.numLabels > 0) {
    const encoder = s.family === 'bert' || s.family === 'roberta';
    flops += (encoder ? 2 * H * s.headHidden + 2 * s.headHidden * s.numLabels : 2 * H * s.numLabels) / seqLen;
  }
  return flops;
}

const EMBEDDING_NAME =
  /(^|\.)(word_embeddings|position_embeddings|token_type_embeddings|wte|wpe|embed_tokens)\.|(^|\.)embeddings\.LayerNorm\./;
const BLOCK_NAME = /(^|\.)(layer|h|layers)\.\d+\./;

/**
 * Buffers some checkpoints carry next to the weights (position ids, causal masks, rotary frequencies): not
 * parameters, and not counted (`transformers` does not count them either). The backend ignores the same names.
 */
export const BUFFER_SUFFIXES = ['.attn.bias', '.attn.masked_bias', 'rotary_emb.inv_freq', 'embeddings.position_ids'] as const;
const isBuffer = (name: string, dtype?: string) =>
  BUFFER_SUFFIXES.some((s) => name.endsWith(s)) || (dtype !== undefined && !/^(F|BF)/.test(dtype));

/** Counts parameters from tensor names and shapes (a checkpoint's safetensors header). */
export function countParamsFromTensors(tensors: Iterable<[string, { shape: number[]; dtype?: string }]>): ParamCounts {
  let total = 0;
  let embedding = 0;
  let encoder = 0;
  for (const [name, { shape, dtype }] of tensors) {
    if (isBuffer(name, dtype)) continue;
    const n = shape.reduce((a, b) => a * b, 1);
    total += n;
    if (EMBEDDING_NAME.test(name)) embedding += n;
    else if (BLOCK_NAME.test(name)) encoder += n;
  }
  return { total, embedding, nonEmbedding: total - embedding, encoder };
}
