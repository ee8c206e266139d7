/**
 * Running exported `model.onnx` files in onnxruntime-node (CPU): logits for a padded batch of token ids.
 * The exported graphs take int64 `input_ids` and `attention_mask` (and `token_type_ids` for BERT text pairs)
 * with dynamic batch and sequence axes, and return `logits`.
 */
import type * as ort from 'onnxruntime-node';
import { UserError } from './errors';

type Ort = typeof ort;
let ortModule: Ort | undefined;

/** Loaded lazily: the native binding is large and only evaluation needs it. */
function runtime(): Ort {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  ortModule ??= require('onnxruntime-node') as Ort;
  return ortModule;
}

export interface OnnxModel {
  path: string;
  session: ort.InferenceSession;
  inputNames: readonly string[];
  threads: number;
}

export interface TokenBatch {
  /** Row-major (batch × seq) token ids, right-padded. */
  ids: ArrayLike<number>;
  mask: ArrayLike<number>;
  tokenTypes?: ArrayLike<number>;
  batch: number;
  seq: number;
}

export interface Logits {
  data: Float32Array;
  dims: number[];
}

export async function openOnnx(path: string, threads: number): Promise<OnnxModel> {
  try {
    const session = await runtime().InferenceSession.create(path, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    return { path, session, inputNames: session.inputNames, threads };
  } catch (e) {
    throw new UserError(
      `${path}: onnxruntime cannot load the model (${(e as Error).message.split('\n')[0]}).`,
      'Re-export it with `vtrans export`.',
    );
  }
}

function int64(values: ArrayLike<number>, n: number): BigInt64Array {
  const out = new BigInt64Array(n);
  for (let i = 0; i < n; i++) out[i] = BigInt(values[i] ?? 0);
  return out;
}

export async function runLogits(model: OnnxModel, b: TokenBatch): Promise<Logits> {
  const { Tensor } = runtime();
  const n = b.batch * b.seq;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new Tensor('int64', int64(b.ids, n), [b.batch, b.seq]),
    attention_mask: new Tensor('int64', int64(b.mask, n), [b.batch, b.seq]),
  };
  if (model.inputNames.includes('token_type_ids')) {
    feeds.token_type_ids = new Tensor('int64', b.tokenTypes ? int64(b.tokenTypes, n) : new BigInt64Array(n), [b.batch, b.seq]);
  }
  const out = await model.session.run(feeds);
  const logits = out.logits;
  return { data: logits.data as Float32Array, dims: logits.dims.map(Number) };
}

export async function closeOnnx(model: OnnxModel): Promise<void> {
  await model.session.release();
}
