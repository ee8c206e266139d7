/**
 * Reads safetensors headers without loading tensors: the 8-byte little-endian header length,
 * then a JSON object of `name -> {dtype, shape, data_offsets}` (plus an optional `__metadata__`).
 * Sharded checkpoints are described by `model.safetensors.index.json` (`weight_map: name -> shard`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from './errors';

export interface TensorInfo {
  dtype: string;
  shape: number[];
  /** The shard file that holds it (base name). */
  file: string;
}

export interface WeightsHeader {
  tensors: Map<string, TensorInfo>;
  files: string[];
  /** Sum of the weight files' sizes in bytes. */
  bytes: number;
  format: 'safetensors' | 'pytorch';
}

const DTYPE_BYTES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};
/** Headers larger than this are refused as corrupt (the format's own reference limit is 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

export function dtypeBytes(dtype: string): number {
  const n = DTYPE_BYTES[dtype];
  if (n === undefined) throw new Error(`unknown safetensors dtype ${dtype}`);
  return n;
}

function corrupt(file: string, what: string): UserError {
  return new UserError(
    `${file}: not a valid safetensors file (${what}).`,
    'Re-save the weights (e.g. with save_pretrained) or restore the file from its source.',
  );
}

/** Parses one safetensors file's header and checks it against the file's size. */
export function readSafetensorsHeader(file: string): Map<string, Omit<TensorInfo, 'file'>> {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    throw new UserError(`${file}: weight file not found.`, 'Check the checkpoint directory is complete.');
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size < 8) throw corrupt(file, `file is ${size} bytes, shorter than the 8-byte header length`);
    const lenBuf = Buffer.alloc(8);
    fs.readSync(fd, lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen <= 0 || headerLen > MAX_HEADER_BYTES) throw corrupt(file, `header length ${headerLen} is implausible`);
    if (8 + headerLen > size) throw corrupt(file, `header of ${headerLen} bytes runs past the end of the ${size}-byte file: truncated`);
    const headerBuf = Buffer.alloc(headerLen);
    fs.readSync(fd, headerBuf, 0, headerLen, 8);
    let raw: unknown;
    try {
      raw = JSON.parse(headerBuf.toString('utf8'));
    } catch (e) {
      throw corrupt(file, `header is not JSON: ${(e as Error).message}`);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw corrupt(file, 'header is not a JSON object');
    const out = new Map<string, Omit<TensorInfo, 'file'>>();
    let end = 0;
    for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
      if (name === '__metadata__') continue;
      const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof v?.dtype !== 'string' || !(v.dtype in DTYPE_BYTES) || !Array.isArray(v.shape) || !Array.isArray(v.data_offsets)) {
        throw corrupt(file, `entry "${name}" lacks a known dtype, a shape or data_offsets`);
      }
      const shape = v.shape as number[];
      const [begin, stop] = v.data_offsets as number[];
      const expected = shape.reduce((a, b) => a * b, 1) * dtypeBytes(v.dtype);
      if (!Number.isInteger(begin) || !Number.isInteger(stop) || stop - begin !== expected) {
        throw corrupt(file, `entry "${name}" has data_offsets [${begin}, ${stop}] that do not fit its shape [${shape}] in ${v.dtype}`);
      }
      end = Math.max(end, stop);
      out.set(name, { dtype: v.dtype, shape });
    }
    if (8 + headerLen + end > size) {
      throw corrupt(file, `tensor data needs ${8 + headerLen + end} bytes but the file has ${size}: truncated`);
    }
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Reads every tensor's dtype and shape from a model directory's safetensors weights
 * (`model.safetensors`, or the shards named by `model.safetensors.index.json`).
 * A directory with only `pytorch_model.bin` yields no tensors (pickles are not parsed here) and format 'pytorch'.
 */
export function readWeightsHeader(modelDir: string): WeightsHeader {
  const single = path.join(modelDir, 'model.safetensors');
  const index = path.join(modelDir, 'model.safetensors.index.json');
  const pickle = path.join(modelDir, 'pytorch_model.bin');
  const tensors = new Map<string, TensorInfo>();
  if (fs.existsSync(single)) {
    for (const [name, info] of readSafetensorsHeader(single)) tensors.set(name, { ...info, file: 'model.safetensors' });
    return { tensors, files: ['model.safetensors'], bytes: fs.statSync(single).size, format: 'safetensors' };
  }
  if (fs.existsSync(index)) {
    const shards = readShardIndex(index);
    let bytes = 0;
    for (const shard of new Set(shards.values())) {
      const shardPath = path.join(modelDir, shard);
      if (!fs.existsSync(shardPath)) {
        throw new UserError(
          `${index}: names shard "${shard}", which is missing from ${modelDir}.`,
          'Copy the missing shard or re-download the checkpoint.',
        );
      }
      for (const [name, info] of readSafetensorsHeader(shardPath)) tensors.set(name, { ...info, file: shard });
      bytes += fs.statSync(shardPath).size;
    }
    for (const [name, shard] of shards) {
      if (!tensors.has(name))
        throw new UserError(
          `${index}: maps "${name}" to ${shard}, which does not contain it.`,
          'The index and the shards disagree; re-save the checkpoint.',
        );
    }
    return { tensors, files: [...new Set(shards.values())], bytes, format: 'safetensors' };
  }
  if (fs.existsSync(pickle)) {
    return { tensors, files: ['pytorch_model.bin'], bytes: fs.statSync(pickle).size, format: 'pytorch' };
  }
  throw new UserError(
    `${modelDir}: no weights found (expected model.safetensors, model.safetensors.index.json or pytorch_model.bin).`,
    'Point to a Hugging Face style model directory.',
  );
}

function readShardIndex(index: string): Map<string, string> {
  let raw: { weight_map?: Record<string, unknown> };
  try {
    raw = JSON.parse(fs.readFileSync(index, 'utf8'));
  } catch (e) {
    throw new UserError(`${index}: not valid JSON (${(e as Error).message}).`, 'Re-save the checkpoint index.');
  }
  if (!raw || typeof raw.weight_map !== 'object' || raw.weight_map === null) {
    throw new UserError(`${index}: has no "weight_map" object.`, 'Re-save the checkpoint index.');
  }
  const map = new Map<string, string>();
  for (const [name, shard] of Object.entries(raw.weight_map)) {
    if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\')) {
      throw new UserError(
        `${index}: weight "${name}" maps to an invalid shard name ${JSON.stringify(shard)}.`,
        'Shard names must be plain file names.',
      );
    }
    map.set(name, shard);
  }
  return map;
}

/** Writes a safetensors file; used by tests and fixtures (data zero-filled as a sparse file when `data` is omitted). */
export function writeSafetensors(
  file: string,
  tensors: Array<{ name: string; dtype: string; shape: number[]; data?: Buffer }>,
  metadata?: Record<string, string>,
): void {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1) * dtypeBytes(t.dtype);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const headerBuf = Buffer.from(json, 'utf8');
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(headerBuf.length));
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, lenBuf);
    fs.writeSync(fd, headerBuf);
    let pos = 8 + headerBuf.length;
    for (const t of tensors) {
      if (t.data) fs.writeSync(fd, t.data, 0, t.data.length, pos);
      pos += t.shape.reduce((a, b) => a * b, 1) * dtypeBytes(t.dtype);
    }
    fs.ftruncateSync(fd, pos);
  } finally {
    fs.closeSync(fd);
  }
}
