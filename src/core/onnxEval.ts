/**
 * onnxruntime-node evaluation of exported models: file size, latency (batch 1 and 32 at sequence length 128,
 * after warm-up runs, median of repeated runs, the thread count stated) and the task metric computed here in
 * TypeScript from the same token shards the backend evaluated (accuracy + macro F1, or perplexity).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { closeOnnx, openOnnx, runLogits, type OnnxModel } from './onnx';
import type { Metric, OnnxMeasurement } from './report';
import { batchFromShards, type Shards } from './shards';

export interface LatencyOptions {
  seqLen?: number;
  batchSizes?: number[];
  warmup?: number;
  /** Timed runs per batch size (the median is reported). */
  repeats?: number;
}

export function defaultThreads(): number {
  return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Median wall time of one inference per batch size, on fixed pseudo-random ids (no padding). */
export async function measureLatency(model: OnnxModel, vocab: number, opts: LatencyOptions = {}): Promise<Record<string, number>> {
  const seq = opts.seqLen ?? 128;
  const out: Record<string, number> = {};
  for (const batch of opts.batchSizes ?? [1, 32]) {
    const n = batch * seq;
    const ids = new Int32Array(n);
    let x = 12345;
    for (let i = 0; i < n; i++) {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      ids[i] = 5 + (x % Math.max(vocab - 5, 1));
    }
    const input = { ids, mask: new Uint8Array(n).fill(1), batch, seq };
    for (let i = 0; i < (opts.warmup ?? 3); i++) await runLogits(model, input);
    const times: number[] = [];
    const repeats = opts.repeats ?? (batch === 1 ? 20 : 5);
    for (let i = 0; i < repeats; i++) {
      const t0 = process.hrtime.bigint();
      await runLogits(model, input);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    out[String(batch)] = median(times);
  }
  return out;
}

function logSumExp(data: Float32Array, offset: number, n: number): number {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, data[offset + i]);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(data[offset + i] - max);
  return max + Math.log(sum);
}

export function macroF1(pred: ArrayLike<number>, gold: ArrayLike<number>, classes: number): number {
  const scores: number[] = [];
  for (let c = 0; c < classes; c++) {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    for (let i = 0; i < gold.length; i++) {
      if (pred[i] === c && gold[i] === c) tp++;
      else if (pred[i] === c) fp++;
      else if (gold[i] === c) fn++;
    }
    if (tp + fp + fn > 0) scores.push((2 * tp) / (2 * tp + fp + fn));
  }
  return scores.length ? scores.reduce((a, b) => a + b, 0) / scores.length : 0;
}

/** The model's metric on the shards, from onnxruntime-node's logits (examples in file order; `limit` caps them). */
export async function evaluateOnnx(
  model: OnnxModel,
  shards: Shards,
  opts: { limit?: number; batchSize?: number; signal?: AbortSignal } = {},
): Promise<Metric> {
  const n = Math.min(shards.meta.examples, opts.limit ?? Infinity);
  const lm = shards.meta.task === 'lm';
  const batchSize = opts.batchSize ?? (lm ? 8 : 32);
  const preds: number[] = [];
  const golds: number[] = [];
  let nll = 0;
  let tokens = 0;
  for (let start = 0; start < n; start += batchSize) {
    if (opts.signal?.aborted) throw new Error('evaluation cancelled');
    const b = batchFromShards(shards, start, Math.min(batchSize, n - start));
    const { data, dims } = await runLogits(model, b);
    if (!lm) {
      const classes = dims[1];
      for (let r = 0; r < b.batch; r++) {
        let best = 0;
        for (let c = 1; c < classes; c++) if (data[r * classes + c] > data[r * classes + best]) best = c;
        preds.push(best);
        golds.push(b.labels![r]);
      }
    } else {
      const vocab = dims[2];
      for (let r = 0; r < b.batch; r++) {
        for (let t = 0; t + 1 < b.seq; t++) {
          if (!b.mask[r * b.seq + t + 1]) continue;
          const offset = (r * b.seq + t) * vocab;
          const target = b.ids[r * b.seq + t + 1];
          nll += logSumExp(data, offset, vocab) - data[offset + target];
          tokens++;
        }
      }
    }
  }
  if (lm) return { name: 'perplexity', value: Math.exp(nll / Math.max(tokens, 1)), count: tokens };
  const correct = preds.reduce((acc, p, i) => acc + (p === golds[i] ? 1 : 0), 0);
  const classes = Math.max(shards.meta.labels?.length ?? 0, ...golds.map((g) => g + 1), ...preds.map((p) => p + 1));
  return { name: 'accuracy', value: correct / Math.max(golds.length, 1), f1: macroF1(preds, golds, classes), count: golds.length };
}

/** Size, latency and (when shards are given) the metric of one model.onnx. */
export async function measureOnnx(
  onnxPath: string,
  relPath: string,
  vocab: number,
  opts: { shards?: Shards; threads?: number; latency?: LatencyOptions; limit?: number; signal?: AbortSignal } = {},
): Promise<OnnxMeasurement> {
  const threads = opts.threads ?? defaultThreads();
  const model = await openOnnx(onnxPath, threads);
  try {
    const latencyMs = await measureLatency(model, vocab, opts.latency);
    const metric = opts.shards ? await evaluateOnnx(model, opts.shards, { limit: opts.limit, signal: opts.signal }) : undefined;
    return { path: relPath, bytes: fs.statSync(onnxPath).size, latencyMs, seqLen: opts.latency?.seqLen ?? 128, threads, metric };
  } finally {
    await closeOnnx(model);
  }
}
