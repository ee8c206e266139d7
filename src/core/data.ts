/**
 * Reading training / evaluation data: `.jsonl`, `.csv` / `.tsv` with a header row, `.txt` (language
 * modelling), streamed so that a large file is never held in memory as a whole; and mapping labels to the
 * model's class indices. Every problem with the data is a one-line `UserError` that names the file and line.
 * Format details: docs/data-format.md.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { UserError } from './errors';
import { labelNames as configLabelNames, type Task } from './modelShape';

export type DataFormat = 'jsonl' | 'csv' | 'tsv' | 'txt';

/** Field (JSONL) or column (CSV/TSV) names; defaults `text`, `label`, `text_pair`. */
export interface Fields {
  text?: string;
  label?: string;
  /** Setting it makes the second text required on every example. */
  textPair?: string;
}

export interface ReadOptions {
  /** classification (default) needs a label on every example; lm reads the text only. */
  task?: Task;
  fields?: Fields;
  /**
   * Text pairs: true requires the pair field, false ignores it; by default pairs are on when the first
   * example (or the CSV header) has the pair field, and then every example needs it.
   */
  pairs?: boolean;
}

export interface Example {
  text: string;
  textPair?: string;
  /** As written in the file: a string, or a number for JSONL numbers. */
  label?: string | number;
  /** 1-based line where the example starts. */
  line: number;
}

export interface DataSet {
  /** The path as given (used in messages). */
  file: string;
  format: DataFormat;
  pairs: boolean;
  examples: Example[];
}

export interface ReadProgress {
  examples: number;
  bytes: number;
  totalBytes: number;
}

const DEFAULT_FIELDS = { text: 'text', label: 'label', textPair: 'text_pair' } as const;

/** The path as shown in messages: relative to the working directory when inside it, else absolute. */
export function displayPath(file: string): string {
  const abs = path.resolve(file);
  const cwd = process.cwd();
  const rel = path.relative(cwd, abs);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) && cwd !== path.parse(cwd).root ? rel : abs;
}

/** The data file types, by extension. */
const FORMAT_OF_EXTENSION: Record<string, DataFormat> = {
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.csv': 'csv',
  '.tsv': 'tsv',
  '.txt': 'txt',
};
export const SUPPORTED_EXTENSIONS = Object.keys(FORMAT_OF_EXTENSION);

export function dataFormat(file: string): DataFormat {
  const ext = path.extname(file).toLowerCase();
  const format = FORMAT_OF_EXTENSION[ext];
  if (format) return format;
  throw new UserError(
    `${displayPath(file)}: unsupported data file type${ext ? ` "${ext}"` : ' (no extension)'}.`,
    'Use .jsonl (one JSON object per line, {"text": ..., "label": ...}), .csv or .tsv with a header row, or .txt (language modelling).',
  );
}

/** Reads every example into memory (see iterateExamples for streaming). */
export async function readExamples(file: string, opts: ReadOptions = {}): Promise<DataSet> {
  const examples: Example[] = [];
  const state: StreamState = { pairs: false };
  for await (const ex of streamExamples(file, opts, state)) examples.push(ex);
  return { file, format: dataFormat(file), pairs: state.pairs, examples };
}

/** Streams the examples; `onPairs` learns whether the data is text pairs before the first example arrives. */
export async function* iterateExamples(
  file: string,
  opts: ReadOptions = {},
  hooks: {
    onPairs?: (pairs: boolean) => void;
    onProgress?: (p: ReadProgress) => void;
    onIssue?: (issue: DataIssue, line: number) => void;
  } = {},
): AsyncGenerator<Example> {
  const state: StreamState = { pairs: false, onPairs: hooks.onPairs, onProgress: hooks.onProgress, onIssue: hooks.onIssue };
  yield* streamExamples(file, opts, state);
}

/** Suspicious examples, reported (not refused): an empty text, bytes that were not UTF-8 (decoded as U+FFFD). */
export type DataIssue = 'empty' | 'undecodable';

interface StreamState {
  pairs: boolean;
  onPairs?: (pairs: boolean) => void;
  onProgress?: (p: ReadProgress) => void;
  onIssue?: (issue: DataIssue, line: number) => void;
}

/**
 * The longest record (a JSONL or text line, a CSV field) read: past it the file is refused before the record is
 * held in memory whole (a 200 MB line would otherwise be buffered, split and tokenized in one piece).
 */
export const MAX_RECORD_CHARS = 16 * 1024 * 1024;

function recordTooLong(name: string, line: number, what: string): UserError {
  return new UserError(
    `${name} line ${line}: ${what} longer than ${MAX_RECORD_CHARS / (1024 * 1024)} MiB; VTrans reads records up to that size.`,
    'Split the text into several examples or shorten it.',
  );
}

async function* streamExamples(file: string, opts: ReadOptions, state: StreamState): AsyncGenerator<Example> {
  const name = displayPath(file);
  const format = dataFormat(file);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new UserError(`${name}: file not found.`, 'Check the path of the data file.');
  }
  if (stat.isDirectory()) throw new UserError(`${name}: is a folder, not a data file.`, 'Pick a .jsonl, .csv, .tsv or .txt file.');
  if (stat.size === 0) throw new UserError(`${name}: the file is empty.`, 'Add examples, one per line.');
  const task: Task = opts.task ?? 'classification';
  if (format === 'txt' && task === 'classification') {
    throw new UserError(
      `${name}: a .txt file has no labels, so it can only be used for language modelling.`,
      'For classification use .jsonl, .csv or .tsv with a label on every example, or set the task to lm.',
    );
  }
  const ctx: Ctx = {
    name,
    task,
    fields: { ...DEFAULT_FIELDS, ...definedOnly(opts.fields) },
    pairRequested: task === 'lm' ? false : (opts.pairs ?? (opts.fields?.textPair !== undefined ? true : undefined)),
    state,
    totalBytes: stat.size,
  };
  if (ctx.pairRequested !== undefined) setPairs(ctx, ctx.pairRequested);
  let count = 0;
  const inner =
    format === 'jsonl'
      ? jsonlExamples(file, ctx)
      : format === 'txt'
        ? txtExamples(file, ctx)
        : delimitedExamples(file, ctx, format === 'csv' ? ',' : '\t');
  for await (const ex of inner) {
    count++;
    if (ex.text.trim() === '') state.onIssue?.('empty', ex.line);
    if (ex.text.includes('\ufffd') || ex.textPair?.includes('\ufffd')) state.onIssue?.('undecodable', ex.line);
    yield ex;
  }
  if (count === 0) {
    throw new UserError(
      `${name}: no examples found${format === 'csv' || format === 'tsv' ? ' (no rows after the header)' : ' (only blank lines)'}.`,
      'Add examples to the file.',
    );
  }
}

interface Ctx {
  name: string;
  task: Task;
  fields: Required<Fields>;
  /** true: required, false: ignored, undefined: decided by the first example / the header. */
  pairRequested: boolean | undefined;
  state: StreamState;
  totalBytes: number;
}

function definedOnly(f: Fields | undefined): Fields {
  const out: Fields = {};
  if (f?.text) out.text = f.text;
  if (f?.label) out.label = f.label;
  if (f?.textPair) out.textPair = f.textPair;
  return out;
}

function setPairs(ctx: Ctx, pairs: boolean): void {
  ctx.pairRequested = pairs;
  ctx.state.pairs = pairs;
  ctx.state.onPairs?.(pairs);
}

const PROGRESS_EVERY = 1000;

function progress(ctx: Ctx, examples: number, bytes: number): void {
  if (ctx.state.onProgress && examples % PROGRESS_EVERY === 0) ctx.state.onProgress({ examples, bytes, totalBytes: ctx.totalBytes });
}

// ------------------------------------------------------------------------------------------- streaming lines

/**
 * Lines of a UTF-8 file (BOM stripped, `\r\n` or `\n`), with their 1-based numbers, the bytes read so far,
 * and whether a line break ended them (false only for a last line without one); a line longer than
 * MAX_RECORD_CHARS is refused as soon as it is that long.
 */
async function* readLines(
  file: string,
  name = displayPath(file),
): AsyncGenerator<{ text: string; line: number; bytes: number; eol: boolean }> {
  let rest = '';
  let line = 0;
  let bytes = 0;
  let first = true;
  for await (const chunk of readChunks(file)) {
    bytes += chunk.bytes;
    let text = rest + chunk.text;
    if (first && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      first = false;
    }
    let start = 0;
    for (let nl = text.indexOf('\n', start); nl >= 0; nl = text.indexOf('\n', start)) {
      const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      yield { text: text.slice(start, end), line: ++line, bytes, eol: true };
      start = nl + 1;
    }
    rest = text.slice(start);
    if (rest.length > MAX_RECORD_CHARS) throw recordTooLong(name, line + 1, 'a line');
  }
  if (rest.length > 0) yield { text: rest.endsWith('\r') ? rest.slice(0, -1) : rest, line: ++line, bytes, eol: false };
}

/** The file as decoded UTF-8 chunks (1 MiB reads). */
export async function* readChunks(file: string): AsyncGenerator<{ text: string; bytes: number }> {
  const decoder = new StringDecoder('utf8');
  const stream = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  for await (const buf of stream as AsyncIterable<Buffer>) yield { text: decoder.write(buf), bytes: buf.length };
  const tail = decoder.end();
  if (tail) yield { text: tail, bytes: 0 };
}

// ------------------------------------------------------------------------------------------- JSONL

async function* jsonlExamples(file: string, ctx: Ctx): AsyncGenerator<Example> {
  let n = 0;
  for await (const { text, line, bytes } of readLines(file)) {
    if (text.trim() === '') continue;
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (e) {
      throw new UserError(
        `${ctx.name} line ${line}: invalid JSON (${(e as Error).message.split('\n')[0]}).`,
        'Each line must be one JSON object such as {"text": "...", "label": "..."}.',
      );
    }
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) {
      throw new UserError(
        `${ctx.name} line ${line}: expected a JSON object, got ${Array.isArray(obj) ? 'an array' : obj === null ? 'null' : typeof obj}.`,
        'Each line must be one JSON object such as {"text": "...", "label": "..."}.',
      );
    }
    const rec = obj as Record<string, unknown>;
    const ex = fromRecord(ctx, line, Object.keys(rec), (k) => rec[k], 'field');
    progress(ctx, ++n, bytes);
    yield ex;
  }
}

/** Builds an example from a JSONL object or a CSV row (`get` returns undefined for absent fields). */
function fromRecord(ctx: Ctx, line: number, keys: string[], get: (k: string) => unknown, what: 'field' | 'column'): Example {
  const { fields } = ctx;
  const where = `${ctx.name} line ${line}`;
  const list = keys.length ? keys.map((k) => JSON.stringify(k)).join(', ') : 'none';
  const text = get(fields.text);
  if (text === null) throw new UserError(`${where}: "${fields.text}" is null.`, 'Every example needs its text as a string.');
  if (text === undefined) {
    throw new UserError(
      `${where}: no "${fields.text}" ${what} (${what}s: ${list}).`,
      `Name the text ${what} "${fields.text}" or set the text ${what} name to one of these.`,
    );
  }
  if (typeof text !== 'string')
    throw new UserError(`${where}: "${fields.text}" must be a string, got ${describe(text)}.`, 'Put the text in quotes.');
  const ex: Example = { text, line };
  if (ctx.pairRequested === undefined) setPairs(ctx, get(fields.textPair) !== undefined && get(fields.textPair) !== null);
  if (ctx.pairRequested) {
    const pair = get(fields.textPair);
    if (pair === null) throw new UserError(`${where}: "${fields.textPair}" is null.`, 'Text-pair data needs the second text as a string.');
    if (pair === undefined) {
      throw new UserError(
        `${where}: no "${fields.textPair}" ${what} for the second text (${what}s: ${list}).`,
        'Text-pair data needs the second text on every example; leave the pair field unset for single texts.',
      );
    }
    if (typeof pair !== 'string')
      throw new UserError(`${where}: "${fields.textPair}" must be a string, got ${describe(pair)}.`, 'Put the text in quotes.');
    ex.textPair = pair;
  }
  if (ctx.task === 'classification') {
    const label = get(fields.label);
    if (label === null) throw new UserError(`${where}: "${fields.label}" is null.`, 'Classification data needs a label on every example.');
    if (label === undefined) {
      throw new UserError(
        `${where}: no "${fields.label}" ${what} (${what}s: ${list}).`,
        `Classification data needs a label on every example: add "${fields.label}", set the label ${what} name, or set the task to lm.`,
      );
    }
    if (typeof label === 'string' && label.trim() === '') {
      throw new UserError(`${where}: the "${fields.label}" ${what} is empty.`, 'Classification data needs a label on every example.');
    }
    if (typeof label !== 'string' && typeof label !== 'number') {
      throw new UserError(
        `${where}: "${fields.label}" must be a string or an integer class index, got ${describe(label)}.`,
        'Use the class name or its index.',
      );
    }
    ex.label = label;
  }
  return ex;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${JSON.stringify(v)}`;
}

// ------------------------------------------------------------------------------------------- CSV / TSV

/**
 * RFC 4180 records: fields separated by `delim`, records by CRLF or LF; a field that starts with `"` is quoted
 * and may hold delimiters, newlines and doubled quotes (`""`). A quote inside an unquoted field is literal.
 */
export async function* parseDelimited(
  chunks: AsyncIterable<{ text: string; bytes: number }>,
  delim: string,
  name: string,
): AsyncGenerator<{ fields: string[]; line: number; bytes: number }> {
  let fields: string[] = [];
  let field = '';
  let quoted = false; // inside a quoted field
  let afterQuote = false; // a quote just closed (or is doubled)
  let fieldStarted = false;
  let line = 1;
  let recordLine = 1;
  let quoteLine = 1;
  let bytes = 0;
  let first = true;
  let pendingCR = false;
  const D = delim.charCodeAt(0);
  for await (const chunk of chunks) {
    bytes += chunk.bytes;
    let s = chunk.text;
    if (first) {
      if (s.charCodeAt(0) === 0xfeff) s = s.slice(1);
      if (s.length > 0) first = false;
    }
    const out: { fields: string[]; line: number; bytes: number }[] = [];
    let i = 0;
    const n = s.length;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (pendingCR) {
        pendingCR = false;
        if (c === 10) {
          i++;
          continue;
        }
      }
      if (quoted) {
        if (afterQuote) {
          afterQuote = false;
          if (c === 34) {
            field += '"';
            i++;
            continue;
          }
          quoted = false; // the quote closed the field; fall through to the unquoted handling
        } else {
          // Fast path: copy up to the next quote.
          const q = s.indexOf('"', i);
          const upto = q < 0 ? n : q;
          const piece = s.slice(i, upto);
          field += piece;
          for (let k = piece.indexOf('\n'); k >= 0; k = piece.indexOf('\n', k + 1)) line++;
          if (q < 0) {
            i = n;
          } else {
            afterQuote = true;
            i = q + 1;
          }
          continue;
        }
      }
      if (c === D) {
        fields.push(field);
        field = '';
        fieldStarted = false;
        i++;
      } else if (c === 10 || c === 13) {
        fields.push(field);
        out.push({ fields, line: recordLine, bytes });
        fields = [];
        field = '';
        fieldStarted = false;
        line++;
        recordLine = line;
        if (c === 13) pendingCR = true;
        i++;
      } else if (c === 34 && !fieldStarted) {
        quoted = true;
        fieldStarted = true;
        quoteLine = line;
        i++;
      } else {
        // Unquoted run: copy up to the next delimiter or line break.
        let j = i;
        while (j < n) {
          const d = s.charCodeAt(j);
          if (d === D || d === 10 || d === 13) break;
          j++;
        }
        field += s.slice(i, j);
        fieldStarted = true;
        i = j;
      }
    }
    for (const r of out) yield r;
    if (field.length > MAX_RECORD_CHARS) throw recordTooLong(name, recordLine, 'a field');
  }
  if (quoted && !afterQuote) {
    throw new UserError(
      `${name} line ${quoteLine}: a quoted field starting here is never closed.`,
      'Close the quote, and write a quote inside a quoted field as two quotes ("").',
    );
  }
  if (fieldStarted || fields.length > 0 || quoted) {
    fields.push(field);
    yield { fields, line: recordLine, bytes };
  }
}

async function* delimitedExamples(file: string, ctx: Ctx, delim: string): AsyncGenerator<Example> {
  let header: string[] | undefined;
  let col: { text: number; label: number; pair: number } | undefined;
  const kind = delim === ',' ? 'comma' : 'tab';
  let n = 0;
  for await (const { fields, line, bytes } of parseDelimited(readChunks(file), delim, ctx.name)) {
    if (fields.length === 1 && fields[0].trim() === '') continue; // blank line
    if (!header) {
      header = fields.map((h) => h.trim());
      const list = header.map((h) => JSON.stringify(h)).join(', ');
      const idx = (name: string) => header!.indexOf(name);
      col = { text: idx(ctx.fields.text), label: idx(ctx.fields.label), pair: idx(ctx.fields.textPair) };
      if (col.text < 0) {
        throw new UserError(
          `${ctx.name} line ${line}: the header has no "${ctx.fields.text}" column (columns: ${list}).`,
          `The first row must name the columns; name the text column "${ctx.fields.text}" or set the text column name.`,
        );
      }
      if (ctx.task === 'classification' && col.label < 0) {
        throw new UserError(
          `${ctx.name} line ${line}: the header has no "${ctx.fields.label}" column (columns: ${list}).`,
          `Classification data needs a label column: name it "${ctx.fields.label}", set the label column name, or set the task to lm.`,
        );
      }
      if (ctx.pairRequested === true && col.pair < 0) {
        throw new UserError(
          `${ctx.name} line ${line}: the header has no "${ctx.fields.textPair}" column for the second text (columns: ${list}).`,
          'Add the column, or leave the pair column unset for single texts.',
        );
      }
      if (ctx.pairRequested === undefined) setPairs(ctx, col.pair >= 0);
      continue;
    }
    if (fields.length !== header.length) {
      throw new UserError(
        `${ctx.name} line ${line}: ${fields.length} ${fields.length === 1 ? 'field' : 'fields'}, but the header has ${header.length}.`,
        kind === 'comma'
          ? 'Quote fields that contain commas or line breaks ("a, b"), and double quotes inside them ("").'
          : 'Quote fields that contain tabs or line breaks, and double quotes inside them ("").',
      );
    }
    const row = fields;
    const h = header;
    const cols = col!;
    const get = (k: string): unknown => {
      const i =
        k === ctx.fields.text ? cols.text : k === ctx.fields.label ? cols.label : k === ctx.fields.textPair ? cols.pair : h.indexOf(k);
      return i >= 0 ? row[i] : undefined;
    };
    const ex = fromRecord(ctx, line, h, get, 'column');
    if (typeof ex.label === 'string') ex.label = ex.label.trim();
    progress(ctx, ++n, bytes);
    yield ex;
  }
}

// ------------------------------------------------------------------------------------------- TXT

/**
 * The text as it is, line by line: every line is one example (label-less) that keeps its line break (`\n`;
 * `\r\n` becomes `\n`; a last line without one stays without), blank lines included, so that the examples
 * concatenated give the file's text back. A file with no line holding more than whitespace yields nothing.
 */
async function* txtExamples(file: string, ctx: Ctx): AsyncGenerator<Example> {
  let leading: Example[] = []; // blank lines before the first line with text
  let seenText = false;
  let n = 0;
  for await (const { text, line, bytes, eol } of readLines(file)) {
    const ex: Example = { text: eol ? `${text}\n` : text, line };
    if (!seenText) {
      if (text.trim() === '') {
        leading.push(ex);
        continue;
      }
      seenText = true;
      for (const b of leading) {
        progress(ctx, ++n, bytes);
        yield b;
      }
      leading = [];
    }
    progress(ctx, ++n, bytes);
    yield ex;
  }
}

// ------------------------------------------------------------------------------------------- labels

type Json = Record<string, unknown>;

export interface LabelResolver {
  /** Class names in index order. */
  names: string[];
  /** Where the names come from, for messages: e.g. `config.json id2label`. */
  source: string;
  /** Class index of a label written on `line`. */
  resolve(label: string | number | undefined, line: number): number;
}

export interface LabelOptions {
  /** The data file, for messages. */
  file: string;
  /** The model's config.json path, for messages (default "config.json"). */
  configFile?: string;
  /** Class names to use instead of the config's id2label (e.g. for a model whose head is created for the data). */
  labelNames?: string[];
}

/**
 * Maps data labels to class indices. String labels match the model's label names (exact first, then
 * case-insensitive); integers and numeric strings are class indices and must be < the number of labels.
 */
export function labelResolver(modelConfig: Json, opts: LabelOptions): LabelResolver {
  const name = displayPath(opts.file);
  const cfgName = opts.configFile ? displayPath(opts.configFile) : 'config.json';
  let names: string[];
  let source: string;
  if (opts.labelNames && opts.labelNames.length > 0) {
    names = opts.labelNames;
    source = 'the label names given';
  } else {
    const n = classifierLabels(modelConfig);
    if (n === 0) {
      const archs = Array.isArray(modelConfig.architectures)
        ? (modelConfig.architectures as unknown[]).map(String).join(', ')
        : 'none listed';
      throw new UserError(
        `${cfgName}: the model has no sequence-classification head (architectures: ${archs}), so it cannot be trained on the labels in ${name}.`,
        'Use a checkpoint saved from a …ForSequenceClassification model, give the label names, or set the task to lm.',
      );
    }
    const fromConfig = configLabelNames(modelConfig);
    names = fromConfig && fromConfig.length === n ? fromConfig : Array.from({ length: n }, (_, i) => `LABEL_${i}`);
    source = `${cfgName} id2label`;
  }
  const exact = new Map<string, number>();
  const lower = new Map<string, number>();
  names.forEach((l, i) => {
    if (!exact.has(l)) exact.set(l, i);
    if (!lower.has(l.toLowerCase())) lower.set(l.toLowerCase(), i);
  });
  const shown = names.join(', ');
  const resolve = (label: string | number | undefined, line: number): number => {
    const where = `${name} line ${line}`;
    if (label === undefined) {
      throw new UserError(`${where}: the example has no label.`, 'Classification data needs a label on every example.');
    }
    if (typeof label === 'string') {
      const hit = exact.get(label) ?? lower.get(label.toLowerCase());
      if (hit !== undefined) return hit;
      if (/^\s*-?\d+\s*$/.test(label)) return index(Number(label), label, where);
      throw new UserError(
        `${where}: label ${JSON.stringify(label)} is not one of the model's labels (${shown}) in ${source}.`,
        'Fix the label in the data, or the label names of the model.',
      );
    }
    return index(label, String(label), where);
  };
  const index = (v: number, shownLabel: string, where: string): number => {
    if (!Number.isInteger(v)) {
      throw new UserError(
        `${where}: label ${shownLabel} is not a class: labels are class names (${shown}) or integer class indices.`,
        'Fix the label in the data.',
      );
    }
    if (v < 0 || v >= names.length) {
      throw new UserError(
        `${where}: label ${shownLabel} is out of range: the model has ${names.length} labels (${shown}) in ${source}.`,
        `Numeric labels are class indices from 0 to ${names.length - 1}.`,
      );
    }
    return v;
  };
  return { names, source, resolve };
}

/**
 * Number of classes of the model's sequence-classification head, 0 when it has none (same rule as
 * modelShape: Hugging Face writes a default two-label id2label into every config, so only the
 * architecture name tells).
 */
export function classifierLabels(cfg: Json): number {
  const archs = Array.isArray(cfg.architectures) ? (cfg.architectures as unknown[]).map(String) : [];
  if (!archs.some((a) => a.endsWith('ForSequenceClassification'))) return 0;
  if (typeof cfg.num_labels === 'number') return cfg.num_labels;
  if (cfg.id2label && typeof cfg.id2label === 'object') return Object.keys(cfg.id2label as object).length;
  return 2;
}
