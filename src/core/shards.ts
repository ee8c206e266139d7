/**
 * Token shards: the tokenized data set as flat little-endian arrays, the contract between the TypeScript
 * side (which tokenizes) and the Python backend (which trains on them). Exact format: docs/data-format.md.
 *
 *   meta.json     {"format": "vtrans-tokens", "version": 1, "task", "examples", "tokens", "maxLen", "padId",
 *                  "labels", "pairs", "meanLength", "source", "sourceBytes", "sourceMtimeMs", "tokenizerSha256", "createdAt", ...}
 *   ids.i32       int32 LE, every example's token ids concatenated, no padding
 *   lengths.i32   int32 LE, tokens per example
 *   labels.i32    int32 LE, class index per example (classification only)
 *   types.u8      uint8, token type id per token (text pairs only)
 *
 * Shards are cached under `cacheDir/<key>/`, the key hashing everything that decides their content, and
 * written into a temporary folder that is renamed into place only when complete.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { dataFormat, displayPath, iterateExamples, labelResolver, type Fields, type LabelResolver } from './data';
import { UserError } from './errors';
import { readConfig, type Task } from './modelShape';
import type { TokenBatch } from './onnx';
import type { ShardMeta } from './contracts';
import { LmBlocker, loadTokenizer, sha256 } from './tokenize';

export const SHARD_FORMAT = 'vtrans-tokens';
export const SHARD_VERSION = 1;

/** meta.json: the backend's contract (src/core/contracts.ts, from backend/vtrans/shards.py). */
export type { ShardMeta };

/** How language-modelling data becomes one token stream (see docs/data-format.md). */
export type LmInput = NonNullable<ShardMeta['lmInput']>;

/** A `.txt` file is text as it is; records of the other formats are documents. */
export function lmInputOf(dataFile: string): LmInput {
  return dataFormat(dataFile) === 'txt' ? 'text' : 'documents';
}

export interface ShardProgress {
  /** Examples read from the data file so far. */
  examples: number;
  /** Examples (or lm blocks) written so far. */
  written: number;
  tokens: number;
  bytes: number;
  totalBytes: number;
}

export interface PrepareOptions {
  modelDir: string;
  dataFile: string;
  task: Task;
  maxLen: number;
  cacheDir: string;
  /** Class names to use instead of config.json id2label. */
  labelNames?: string[];
  fields?: Fields;
  /** Text pairs: true requires them, false ignores the pair field, unset detects them (see data.ts). */
  pairs?: boolean;
  /** Called about every 1000 examples, and once at the end. */
  onProgress?: (p: ShardProgress) => void;
  signal?: AbortSignal;
}

export interface PreparedShards {
  dir: string;
  meta: ShardMeta;
  /** True when an existing complete shard folder was reused. */
  cached: boolean;
}

export interface Shards {
  dir: string;
  meta: ShardMeta;
  ids: Int32Array;
  lengths: Int32Array;
  /** offsets[i]..offsets[i+1] are example i's tokens in ids (length examples + 1). */
  offsets: Float64Array;
  labels?: Int32Array;
  types?: Uint8Array;
}

export interface ShardBatch extends TokenBatch {
  /** Row-major (batch × seq), right-padded with padId. */
  ids: Int32Array;
  /** 1 for tokens, 0 for padding. */
  mask: Uint8Array;
  tokenTypes?: Uint8Array;
  labels?: Int32Array;
  /** Index of the first example. */
  start: number;
}

const FILES = { meta: 'meta.json', ids: 'ids.i32', lengths: 'lengths.i32', labels: 'labels.i32', types: 'types.u8' } as const;
const STALE_TMP_MS = 24 * 3600 * 1000;

/** Tokenizes a data file into shards under cacheDir, or returns the cached ones. */
export async function prepareShards(opts: PrepareOptions): Promise<PreparedShards> {
  const { modelDir, dataFile, task, maxLen, cacheDir } = opts;
  if (!Number.isInteger(maxLen) || maxLen < 1) throw new UserError(`Maximum sequence length must be a positive integer, got ${maxLen}.`);
  const format = dataFormat(dataFile);
  const source = path.resolve(dataFile);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(source);
  } catch {
    throw new UserError(`${displayPath(dataFile)}: file not found.`, 'Check the path of the data file.');
  }
  if (!stat.isFile())
    throw new UserError(`${displayPath(dataFile)}: is a folder, not a data file.`, 'Pick a .jsonl, .csv, .tsv or .txt file.');
  const cfg = readConfig(modelDir);
  const configFile = path.join(modelDir, 'config.json');
  checkPositions(cfg, configFile, maxLen);
  const tok = loadTokenizer(modelDir);
  let labels: LabelResolver | undefined;
  if (task === 'classification') {
    if (format === 'txt') dataFormatTxtError(dataFile);
    labels = labelResolver(cfg, { file: dataFile, configFile, labelNames: opts.labelNames });
  }

  const lmInput = task === 'lm' ? lmInputOf(dataFile) : null;
  const key = sha256(
    JSON.stringify({
      version: SHARD_VERSION,
      lmInput,
      tokenizer: tok.sha256,
      tokenizerConfig: tok.configSha256,
      data: { path: source, size: stat.size, mtimeMs: stat.mtimeMs },
      task,
      maxLen,
      fields: opts.fields ?? null,
      pairs: opts.pairs ?? null,
      labels: labels?.names ?? null,
      padId: tok.padId,
      eosId: tok.eosId ?? null,
      usesTokenTypes: tok.usesTokenTypes,
      // What the shards record beyond the tokens (label counts, data warnings): older caches lack it.
      checks: 1,
    }),
  );
  const dir = path.join(path.resolve(cacheDir), key);
  const existing = completeMeta(dir);
  if (existing) return { dir, meta: existing, cached: true };

  try {
    fs.mkdirSync(cacheDir, { recursive: true });
  } catch (e) {
    throw new UserError(`${cacheDir}: cannot create the token cache folder (${(e as Error).message}).`, 'Check the folder is writable.');
  }
  removeStaleTemps(cacheDir);
  const tmp = fs.mkdtempSync(path.join(cacheDir, `.tmp-${key.slice(0, 12)}-`));
  try {
    const meta = await writeShards(tmp, opts, { source, stat, tok, labels });
    const after = fs.statSync(source);
    if (after.size !== stat.size || after.mtimeMs !== stat.mtimeMs) {
      throw new UserError(`${displayPath(dataFile)}: changed while it was being tokenized.`, 'Run again once the file is written.');
    }
    if (fs.existsSync(dir)) fs.rmSync(dir, { recursive: true, force: true }); // an incomplete leftover
    try {
      fs.renameSync(tmp, dir);
    } catch (e) {
      // Another process finished the same shards first: use those.
      const theirs = completeMeta(dir);
      if (theirs) return { dir, meta: theirs, cached: true };
      throw e;
    }
    return { dir, meta, cached: false };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** A text cut to a length its first maxLen tokens surely lie within (64 characters a token), at a word break:
 * tokenizing a megabyte to keep 128 tokens would only cost time and memory. Short texts are left whole. */
export function boundForTokenizer(text: string, maxLen: number): string {
  const bound = Math.max(4096, 64 * maxLen);
  if (text.length <= bound) return text;
  const cut = text.lastIndexOf(' ', bound);
  return text.slice(0, cut > bound / 2 ? cut : bound);
}

/** What looked wrong in the data: reported with the shards (and again whenever they are reused). */
function dataWarnings(
  name: string,
  examples: number,
  issues: Record<'empty' | 'undecodable', { count: number; line: number }>,
  labelNames: string[] | undefined,
  labelCounts: number[],
): string[] {
  const out: string[] = [];
  const { empty, undecodable } = issues;
  if (empty.count) out.push(`${name}: ${empty.count} of ${examples} texts are empty (the first at line ${empty.line}).`);
  if (undecodable.count) {
    out.push(
      `${name} line ${undecodable.line}: bytes that are not UTF-8, read as U+FFFD (${undecodable.count} example(s)). Save the file as UTF-8.`,
    );
  }
  const present = labelCounts.map((n, i) => [n, i]).filter(([n]) => n > 0);
  if (labelNames && present.length === 1) {
    out.push(`${name}: every example has the label "${labelNames[present[0][1]]}"; a classifier learns nothing from one class.`);
  }
  return out;
}

/** Token ids the model's embedding table has rows for: another model's tokenizer is caught here, by name. */
function checkVocabulary(modelDir: string, maxId: number): void {
  const vocab = readConfig(modelDir).vocab_size;
  if (typeof vocab === 'number' && maxId >= vocab) {
    throw new UserError(
      `${displayPath(path.join(modelDir, 'tokenizer.json'))}: gives token id ${maxId}, but the model has ${vocab} embedding rows (${displayPath(path.join(modelDir, 'config.json'))} vocab_size).`,
      'The tokenizer and the weights belong to different models: put the model’s own tokenizer.json next to its weights.',
    );
  }
}

function dataFormatTxtError(dataFile: string): never {
  throw new UserError(
    `${displayPath(dataFile)}: a .txt file has no labels, so it can only be used for language modelling.`,
    'For classification use .jsonl, .csv or .tsv with a label on every example, or set the task to lm.',
  );
}

/** maxLen must fit the model's position embeddings (RoBERTa reserves two positions for its padding offset). */
function checkPositions(cfg: Record<string, unknown>, configFile: string, maxLen: number): void {
  const key = cfg.model_type === 'gpt2' ? 'n_positions' : 'max_position_embeddings';
  const n = cfg[key];
  if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0) return;
  const limit = cfg.model_type === 'roberta' ? n - 2 : n;
  if (maxLen > limit) {
    throw new UserError(
      `Maximum sequence length ${maxLen} is more than the model's ${limit} positions (${displayPath(configFile)} ${key}${cfg.model_type === 'roberta' ? ' minus 2' : ''}).`,
      `Use at most ${limit}.`,
    );
  }
}

interface WriteContext {
  source: string;
  stat: fs.Stats;
  tok: ReturnType<typeof loadTokenizer>;
  labels?: LabelResolver;
}

async function writeShards(tmp: string, opts: PrepareOptions, w: WriteContext): Promise<ShardMeta> {
  const { task, maxLen } = opts;
  const { tok, labels } = w;
  const ids = new IntWriter(path.join(tmp, FILES.ids), 'i32');
  const lengths = new IntWriter(path.join(tmp, FILES.lengths), 'i32');
  const labelOut = task === 'classification' ? new IntWriter(path.join(tmp, FILES.labels), 'i32') : undefined;
  let types: IntWriter | undefined;
  let pairs = false;
  let read = 0;
  let written = 0;
  let tokens = 0;
  let truncated = 0;
  let bytes = 0;
  const report = () => opts.onProgress?.({ examples: read, written, tokens, bytes, totalBytes: w.stat.size });
  let maxId = -1;
  const issues = { empty: { count: 0, line: 0 }, undecodable: { count: 0, line: 0 } };
  const labelCounts: number[] = [];
  const emit = (seq: readonly number[], seqTypes?: readonly number[]) => {
    for (const id of seq) if (id > maxId) maxId = id;
    ids.push(seq);
    lengths.pushOne(seq.length);
    if (types) types.push(seqTypes ?? new Array<number>(seq.length).fill(0));
    tokens += seq.length;
    written++;
  };
  // lm: a .txt file is one stream (its lines keep their line breaks; nothing is inserted between them),
  // records are documents joined with EOS.
  const lmInput = task === 'lm' ? lmInputOf(opts.dataFile) : undefined;
  const joinId = lmInput === 'documents' ? tok.eosId : undefined;
  const blocker = task === 'lm' ? new LmBlocker(maxLen, joinId) : undefined;
  try {
    if (opts.signal?.aborted) throw new UserError('Tokenization cancelled.');
    const examples = iterateExamples(
      opts.dataFile,
      { task, fields: opts.fields, pairs: task === 'lm' ? false : opts.pairs },
      {
        onPairs: (p) => {
          pairs = p;
          if (p) types = new IntWriter(path.join(tmp, FILES.types), 'u8');
        },
        onProgress: (p) => {
          bytes = p.bytes;
        },
        onIssue: (issue, line) => {
          if (issues[issue].count++ === 0) issues[issue].line = line;
        },
      },
    );
    for await (const ex of examples) {
      read++;
      if (blocker) {
        for (const block of blocker.push(tok.encodeText(ex.text))) emit(block);
      } else {
        const label = labels!.resolve(ex.label, ex.line);
        labelCounts[label] = (labelCounts[label] ?? 0) + 1;
        const enc = tok.encode(
          boundForTokenizer(ex.text, maxLen),
          pairs ? boundForTokenizer(ex.textPair ?? '', maxLen) : undefined,
          maxLen,
        );
        if (enc.truncated) truncated++;
        emit(enc.ids, enc.types);
        labelOut!.pushOne(label);
      }
      if (read % 1000 === 0) {
        report();
        if (opts.signal?.aborted) throw new UserError('Tokenization cancelled.');
        await new Promise((r) => setImmediate(r)); // let the host breathe (progress bar, cancellation)
      }
    }
    if (blocker) for (const block of blocker.finish()) emit(block);
  } finally {
    ids.close();
    lengths.close();
    labelOut?.close();
    types?.close();
  }
  bytes = w.stat.size;
  report();
  if (written === 0) {
    throw new UserError(`${displayPath(opts.dataFile)}: no tokens after tokenization.`, 'Check that the texts are not empty.');
  }
  const meta: ShardMeta = {
    format: SHARD_FORMAT,
    version: SHARD_VERSION,
    task,
    examples: written,
    tokens,
    maxLen,
    padId: tok.padId,
    labels: labels ? labels.names : null,
    pairs,
    meanLength: tokens / written,
    source: w.source,
    sourceBytes: w.stat.size,
    sourceMtimeMs: w.stat.mtimeMs,
    tokenizerSha256: tok.sha256,
    createdAt: new Date().toISOString(),
    ...(task === 'classification'
      ? { truncated }
      : { droppedTokens: blocker!.dropped, ...(joinId !== undefined ? { eosId: joinId } : {}), lmInput }),
    ...(task === 'classification' ? { labelCounts: Array.from({ length: labels!.names.length }, (_, i) => labelCounts[i] ?? 0) } : {}),
    warnings: dataWarnings(displayPath(opts.dataFile), read, issues, labels?.names, labelCounts),
  };
  checkVocabulary(opts.modelDir, maxId);
  // meta.json last: a folder without it is never taken for complete.
  fs.writeFileSync(path.join(tmp, FILES.meta), JSON.stringify(meta, null, 2) + '\n');
  return meta;
}

/** Buffered writer of little-endian int32 or uint8 values. */
class IntWriter {
  private fd: number;
  private buf: Int32Array | Uint8Array;
  private n = 0;

  constructor(
    file: string,
    private readonly kind: 'i32' | 'u8',
  ) {
    if (kind === 'i32' && os.endianness() !== 'LE') throw new Error('Token shards need a little-endian host.');
    this.fd = fs.openSync(file, 'w');
    this.buf = kind === 'i32' ? new Int32Array(1 << 16) : new Uint8Array(1 << 16);
  }

  push(values: readonly number[]): void {
    for (let i = 0; i < values.length; i++) {
      if (this.n === this.buf.length) this.flush();
      this.buf[this.n++] = values[i];
    }
  }

  pushOne(v: number): void {
    if (this.n === this.buf.length) this.flush();
    this.buf[this.n++] = v;
  }

  private flush(): void {
    if (this.n === 0) return;
    const bytesPer = this.kind === 'i32' ? 4 : 1;
    fs.writeSync(this.fd, new Uint8Array(this.buf.buffer, 0, this.n * bytesPer));
    this.n = 0;
  }

  close(): void {
    if (this.fd < 0) return;
    try {
      this.flush();
    } finally {
      fs.closeSync(this.fd);
      this.fd = -1;
    }
  }
}

function removeStaleTemps(cacheDir: string): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(cacheDir);
  } catch {
    return;
  }
  const now = Date.now();
  for (const e of entries) {
    if (!e.startsWith('.tmp-')) continue;
    const p = path.join(cacheDir, e);
    try {
      if (now - fs.statSync(p).mtimeMs > STALE_TMP_MS) fs.rmSync(p, { recursive: true, force: true });
    } catch {
      // another process may be removing it too
    }
  }
}

/** meta of a complete shard folder (meta.json valid and every file the size it says), else undefined. */
function completeMeta(dir: string): ShardMeta | undefined {
  try {
    const meta = JSON.parse(fs.readFileSync(path.join(dir, FILES.meta), 'utf8')) as ShardMeta;
    if (meta.format !== SHARD_FORMAT || meta.version !== SHARD_VERSION) return undefined;
    const size = (f: string) => fs.statSync(path.join(dir, f)).size;
    if (size(FILES.ids) !== 4 * meta.tokens || size(FILES.lengths) !== 4 * meta.examples) return undefined;
    if (meta.task === 'classification' && size(FILES.labels) !== 4 * meta.examples) return undefined;
    if (meta.pairs && size(FILES.types) !== meta.tokens) return undefined;
    return meta;
  } catch {
    return undefined;
  }
}

/** Reads a shard folder into typed arrays (for evaluation in TypeScript). */
export function readShards(dir: string): Shards {
  const metaFile = path.join(dir, FILES.meta);
  if (!fs.existsSync(metaFile)) {
    throw new UserError(`${metaFile}: missing; ${dir} is not a token shard folder.`, 'Run the command again to tokenize the data.');
  }
  let meta: ShardMeta;
  try {
    meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as ShardMeta;
  } catch (e) {
    throw new UserError(`${metaFile}: not valid JSON (${(e as Error).message}).`, `Delete ${dir} to tokenize the data again.`);
  }
  if (meta.format !== SHARD_FORMAT || meta.version !== SHARD_VERSION) {
    throw new UserError(
      `${metaFile}: unsupported shard format ${JSON.stringify(meta.format)} version ${JSON.stringify(meta.version)}.`,
      `Delete ${dir} to tokenize the data again.`,
    );
  }
  const read = (name: string, bytesPer: number, count: number): Buffer => {
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) throw new UserError(`${file}: missing from the token shards.`, `Delete ${dir} to tokenize the data again.`);
    const buf = fs.readFileSync(file);
    if (buf.length !== bytesPer * count) {
      throw new UserError(
        `${file}: ${buf.length} bytes, but meta.json says ${count} values (${bytesPer * count} bytes).`,
        `Delete ${dir} to tokenize the data again.`,
      );
    }
    return buf;
  };
  const ids = int32s(read(FILES.ids, 4, meta.tokens));
  const lengths = int32s(read(FILES.lengths, 4, meta.examples));
  const offsets = new Float64Array(meta.examples + 1);
  for (let i = 0; i < meta.examples; i++) offsets[i + 1] = offsets[i] + lengths[i];
  if (offsets[meta.examples] !== meta.tokens) {
    throw new UserError(
      `${path.join(dir, FILES.lengths)}: lengths sum to ${offsets[meta.examples]} tokens, but ids.i32 holds ${meta.tokens}.`,
      `Delete ${dir} to tokenize the data again.`,
    );
  }
  const shards: Shards = { dir, meta, ids, lengths, offsets };
  if (meta.task === 'classification') shards.labels = int32s(read(FILES.labels, 4, meta.examples));
  if (meta.pairs) {
    const b = read(FILES.types, 1, meta.tokens);
    shards.types = new Uint8Array(b.buffer, b.byteOffset, b.length);
  }
  return shards;
}

/** A Buffer's bytes as int32 LE, copied when the buffer is not 4-byte aligned (Node pools small buffers). */
function int32s(buf: Buffer): Int32Array {
  if (os.endianness() !== 'LE') {
    const out = new Int32Array(buf.length / 4);
    for (let i = 0; i < out.length; i++) out[i] = buf.readInt32LE(4 * i);
    return out;
  }
  if (buf.byteOffset % 4 === 0) return new Int32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  return new Int32Array(new Uint8Array(buf).buffer);
}

/**
 * Examples start..start+count-1 as one batch, right-padded with padId to the longest of them; `maxLen`
 * caps the sequence length (longer examples keep their first maxLen tokens — prefer tokenizing with the
 * smaller maxLen, which keeps the closing special tokens).
 */
export function batchFromShards(shards: Shards, start: number, count: number, maxLen?: number): ShardBatch {
  const n = shards.meta.examples;
  if (!Number.isInteger(start) || start < 0 || start >= n) throw new RangeError(`batch start ${start} is outside 0..${n - 1}`);
  const end = Math.min(n, start + Math.max(1, count));
  const batch = end - start;
  let seq = 0;
  for (let i = start; i < end; i++) seq = Math.max(seq, shards.lengths[i]);
  if (maxLen !== undefined) seq = Math.min(seq, maxLen);
  const ids = new Int32Array(batch * seq).fill(shards.meta.padId);
  const mask = new Uint8Array(batch * seq);
  const tokenTypes = shards.types ? new Uint8Array(batch * seq) : undefined;
  for (let r = 0; r < batch; r++) {
    const i = start + r;
    const off = shards.offsets[i];
    const len = Math.min(shards.lengths[i], seq);
    ids.set(shards.ids.subarray(off, off + len), r * seq);
    mask.fill(1, r * seq, r * seq + len);
    if (tokenTypes && shards.types) tokenTypes.set(shards.types.subarray(off, off + len), r * seq);
  }
  const out: ShardBatch = { ids, mask, batch, seq, start };
  if (tokenTypes) out.tokenTypes = tokenTypes;
  if (shards.labels) out.labels = shards.labels.slice(start, end);
  return out;
}

/**
 * A held-out evaluation part carved from one shard folder, for runs given no separate eval data: `fraction` of
 * the examples (at least one), chosen by a seeded shuffle, go to `eval`, the rest to `train`. Both folders are
 * cached next to the source and written atomically.
 */
export function splitShards(dir: string, fraction: number, seed = 0): { train: string; eval: string } {
  const out = `${dir}-holdout-${fraction}-${seed}`;
  const parts = { train: path.join(out, 'train'), eval: path.join(out, 'eval') };
  if (fs.existsSync(path.join(parts.train, FILES.meta)) && fs.existsSync(path.join(parts.eval, FILES.meta))) return parts;
  const src = readShards(dir);
  const n = src.meta.examples;
  if (n < 2)
    throw new UserError(
      `${src.meta.source}: has ${n} example(s); at least 2 are needed to hold some out for evaluation.`,
      'Pass separate evaluation data.',
    );
  const order = Array.from({ length: n }, (_, i) => i);
  let state = (seed * 2654435761 + 1) >>> 0;
  for (let i = n - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = state % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const nEval = Math.min(n - 1, Math.max(1, Math.round(n * fraction)));
  const evalSet = order.slice(0, nEval).sort((a, b) => a - b);
  const trainSet = order.slice(nEval).sort((a, b) => a - b);
  const tmp = `${out}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  writeSubset(src, trainSet, path.join(tmp, 'train'));
  writeSubset(src, evalSet, path.join(tmp, 'eval'));
  fs.rmSync(out, { recursive: true, force: true });
  fs.renameSync(tmp, out);
  return parts;
}

function writeSubset(src: Shards, indices: number[], dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const lengths = Int32Array.from(indices, (i) => src.lengths[i]);
  const tokens = lengths.reduce((a, b) => a + b, 0);
  const ids = new Int32Array(tokens);
  const types = src.types ? new Uint8Array(tokens) : undefined;
  let pos = 0;
  for (const i of indices) {
    const off = src.offsets[i];
    ids.set(src.ids.subarray(off, off + src.lengths[i]), pos);
    if (types && src.types) types.set(src.types.subarray(off, off + src.lengths[i]), pos);
    pos += src.lengths[i];
  }
  const le = (a: Int32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  fs.writeFileSync(path.join(dir, FILES.ids), le(ids));
  fs.writeFileSync(path.join(dir, FILES.lengths), le(lengths));
  if (src.labels) fs.writeFileSync(path.join(dir, FILES.labels), le(Int32Array.from(indices, (i) => src.labels![i])));
  if (types) fs.writeFileSync(path.join(dir, FILES.types), types);
  const meta: ShardMeta = { ...src.meta, examples: indices.length, tokens, meanLength: indices.length ? tokens / indices.length : 0 };
  fs.writeFileSync(path.join(dir, FILES.meta), JSON.stringify(meta, null, 2));
}
