/**
 * What a data file holds, for choosing it in the editor: which files of a workspace are data at all (by content,
 * not only by extension), their columns and first rows, how many rows, the label counts, and a guess of which
 * column is the text, the label and the second text of a pair. Reads with the same parsers as training
 * (src/core/data.ts), so what the preview shows is what compress reads. No `vscode` here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dataFormat, parseDelimited, readChunks, SUPPORTED_EXTENSIONS, type DataFormat, type Fields } from './data';
import type { Task } from './modelShape';

export interface DataPreview {
  file: string;
  format: DataFormat;
  /** Header (CSV/TSV) or the keys of the first JSONL objects, in order; empty for .txt. */
  columns: string[];
  /** The first rows, values as strings (long ones cut). */
  rows: Array<Record<string, string>>;
  /** Rows (documents for .txt) in the part that was read; the whole file when `complete`. */
  rowCount: number;
  /** True when the whole file was read (counts are exact); else `rowCount` is an estimate from the bytes. */
  complete: boolean;
  bytes: number;
  /** The column mapping the preview suggests (or the one it was asked to use). */
  fields: { text?: string; label?: string; textPair?: string };
  /** Label counts over the rows read, most frequent first (classification data). */
  labels: Array<{ label: string; count: number }>;
  /** Rows whose label column is empty or missing. */
  unlabelled: number;
  /** The tasks this file can serve: .txt only language modelling; tables with a label also classification. */
  tasks: Task[];
}

const TEXT_NAMES = [
  'text',
  'sentence',
  'sentence1',
  'content',
  'review',
  'document',
  'body',
  'message',
  'question',
  'premise',
  'input',
  'prompt',
  'tweet',
  'comment',
];
const LABEL_NAMES = ['label', 'labels', 'class', 'category', 'target', 'sentiment', 'gold_label', 'intent', 'y'];
const PAIR_NAMES = ['text_pair', 'sentence2', 'hypothesis', 'text_b', 'question2', 'second_text'];

/** Files that carry an allowed extension but are not data: package lists, licences, tokenizer vocabularies… */
const NOT_DATA =
  /^((dev-|test-)?requirements[\w.-]*|constraints[\w.-]*|license|licence|copying|notice|authors|contributors|readme|changelog|changes|history|security|code_of_conduct|contributing|robots|vocab|merges|cmakelists|top_level|dependency_links|sources|entry_points|installed-files)(\.[\w-]+)?$/i;

/** By name and place only: a supported extension, not a well-known non-data file, not inside a model folder. */
export function maybeDataFile(file: string): boolean {
  const base = path.basename(file);
  const ext = path.extname(base).toLowerCase();
  if (!SUPPORTED_EXTENSIONS.includes(ext)) return false;
  if (NOT_DATA.test(base)) return false;
  // A model folder's own .txt/.json files (vocab.txt, merges.txt…) are the tokenizer's, not data.
  if (fs.existsSync(path.join(path.dirname(file), 'config.json'))) return false;
  return true;
}

/** Lines that look like a pip requirement ("torch>=2.1", "-r base.txt", "numpy"). */
const REQUIREMENT = /^\s*(-[rcei]\s|--|[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?\s*([<>=!~]=?|@|;|$))/;

/**
 * Whether a file is data by its content (the first 64 KiB): JSONL whose first record is an object; CSV/TSV with a
 * header and at least one row; .txt with prose (not a package list or a licence). Returns the tasks it can serve.
 */
export async function sniffDataFile(file: string): Promise<{ ok: boolean; tasks: Task[]; reason?: string }> {
  if (!maybeDataFile(file)) return { ok: false, tasks: [], reason: 'not a data file by its name' };
  let head: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(64 * 1024);
      const n = fs.readSync(fd, buf, 0, buf.length, 0);
      head = buf
        .subarray(0, n)
        .toString('utf8')
        .replace(/^\uFEFF/, '');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return { ok: false, tasks: [], reason: 'unreadable' };
  }
  if (!head.trim()) return { ok: false, tasks: [], reason: 'empty' };
  if (head.includes('\u0000')) return { ok: false, tasks: [], reason: 'binary' };
  const format = dataFormat(file);
  const lines = head.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (format === 'jsonl') {
    try {
      const first = JSON.parse(lines[0]);
      if (!first || typeof first !== 'object' || Array.isArray(first)) return { ok: false, tasks: [], reason: 'not JSON objects' };
      const keys = Object.keys(first);
      return {
        ok: true,
        tasks:
          keys.some((k) => typeof (first as Record<string, unknown>)[k] !== 'string') || keys.length > 1
            ? ['classification', 'lm']
            : ['lm'],
      };
    } catch {
      return { ok: false, tasks: [], reason: 'the first line is not JSON' };
    }
  }
  if (format === 'csv' || format === 'tsv') {
    if (lines.length < 2) return { ok: false, tasks: [], reason: 'no rows after the header' };
    const delim = format === 'csv' ? ',' : '\t';
    const cols = lines[0].split(delim).length;
    return { ok: true, tasks: cols > 1 ? ['classification', 'lm'] : ['lm'] };
  }
  // .txt: language modelling only, and only prose: not a package list, a licence or a word list.
  if (lines.length >= 3 && lines.filter((l) => REQUIREMENT.test(l)).length / lines.length > 0.6)
    return { ok: false, tasks: [], reason: 'looks like a package list' };
  if (/permission is hereby granted|licensed under the|gnu general public license|all rights reserved/i.test(head.slice(0, 4000)))
    return { ok: false, tasks: [], reason: 'looks like a licence' };
  const words = head.split(/\s+/).filter(Boolean).length;
  if (words < 50 || words / Math.max(1, lines.length) < 4)
    return { ok: false, tasks: [], reason: 'too little prose for language modelling' };
  return { ok: true, tasks: ['lm'] };
}

/** Which column is the text, the label and the pair text: by their usual names, else by what the values look like. */
export function guessFields(columns: string[], rows: Array<Record<string, string>>, task: Task = 'classification'): DataPreview['fields'] {
  const lower = new Map(columns.map((c) => [c.toLowerCase(), c]));
  const byName = (names: string[], except: (string | undefined)[] = []) =>
    names.map((n) => lower.get(n)).find((c) => c !== undefined && !except.includes(c));
  const meanLength = (c: string) => rows.reduce((n, r) => n + (r[c]?.length ?? 0), 0) / Math.max(1, rows.length);
  const distinct = (c: string) => new Set(rows.map((r) => r[c] ?? '')).size;
  let text = byName(TEXT_NAMES);
  if (!text) text = [...columns].sort((a, b) => meanLength(b) - meanLength(a))[0];
  const textPair = byName(PAIR_NAMES, [text]);
  let label: string | undefined;
  if (task === 'classification') {
    label = byName(LABEL_NAMES, [text, textPair]);
    if (!label) {
      // A short column with few distinct values.
      label = columns
        .filter((c) => c !== text && c !== textPair && meanLength(c) < 24 && distinct(c) <= Math.max(2, Math.min(50, rows.length / 2)))
        .sort((a, b) => distinct(a) - distinct(b))[0];
    }
  }
  return { text, label, textPair };
}

const CELL = 240;
const cell = (v: unknown): string => {
  const s = v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > CELL ? `${s.slice(0, CELL - 1)}…` : s;
};

export interface PreviewOptions {
  /** Use these columns instead of guessing (the label counts follow the label column). */
  fields?: Fields;
  task?: Task;
  /** Rows kept for display (default 5). */
  rows?: number;
  /** Stop reading after this many bytes (default 64 MiB); counts are then estimated. */
  maxBytes?: number;
}

interface Scan {
  columns: string[];
  bytes: number;
  complete: boolean;
}

/** The file's records as string maps (the same parsers as training; unparsable JSONL lines are skipped here). */
async function* records(file: string, format: DataFormat, maxBytes: number, scan: Scan): AsyncGenerator<Record<string, string>> {
  const seen = new Set<string>();
  const addColumns = (keys: string[]) => {
    for (const k of keys) {
      if (seen.has(k)) continue;
      seen.add(k);
      scan.columns.push(k);
    }
  };
  const chunks = async function* () {
    for await (const c of readChunks(file)) {
      scan.bytes += c.bytes;
      yield c;
      if (scan.bytes >= maxBytes) {
        scan.complete = false;
        return;
      }
    }
  };
  if (format === 'jsonl') {
    const parse = (line: string): Record<string, string> | undefined => {
      if (!line.trim()) return undefined;
      try {
        const o = JSON.parse(line) as unknown;
        if (!o || typeof o !== 'object' || Array.isArray(o)) return undefined;
        addColumns(Object.keys(o));
        return Object.fromEntries(Object.entries(o as Record<string, unknown>).map(([k, v]) => [k, cell(v)]));
      } catch {
        return undefined; // compress names the line; the preview shows what it can
      }
    };
    let rest = '';
    for await (const chunk of chunks()) {
      const parts = (rest + chunk.text).split('\n');
      rest = parts.pop() ?? '';
      for (const line of parts) {
        const r = parse(line);
        if (r) yield r;
      }
    }
    const r = scan.complete ? parse(rest) : undefined;
    if (r) yield r;
    return;
  }
  if (format === 'csv' || format === 'tsv') {
    let header: string[] | undefined;
    for await (const rec of parseDelimited(chunks(), format === 'csv' ? ',' : '\t', path.basename(file))) {
      if (rec.fields.length === 1 && rec.fields[0].trim() === '') continue;
      if (!header) {
        header = rec.fields.map((h) => h.trim());
        addColumns(header);
        continue;
      }
      const r: Record<string, string> = {};
      header.forEach((h, i) => (r[h] = cell(rec.fields[i] ?? '')));
      yield r;
    }
    return;
  }
  let doc = '';
  for await (const c of chunks()) {
    for (const line of c.text.split(/\r?\n/)) {
      if (line.trim() === '') {
        if (doc) yield { text: cell(doc) };
        doc = '';
      } else doc = doc ? `${doc}\n${line}` : line;
    }
  }
  if (doc) yield { text: cell(doc) };
}

/** Columns, first rows, row count and label counts of a data file (two passes: a sample to guess the columns, then the counts). */
export async function previewData(file: string, opts: PreviewOptions = {}): Promise<DataPreview> {
  const format = dataFormat(file);
  const maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;
  const bytes = fs.statSync(file).size;
  const task = opts.task ?? 'classification';
  const first: Scan = { columns: [], bytes: 0, complete: true };
  const sample: Array<Record<string, string>> = [];
  for await (const r of records(file, format, maxBytes, first)) {
    sample.push(r);
    if (sample.length >= 200) break;
  }
  const guessed = format === 'txt' ? { text: 'text' } : guessFields(first.columns, sample, task);
  const fields = {
    text: opts.fields?.text ?? guessed.text,
    label: format === 'txt' || task === 'lm' ? undefined : (opts.fields?.label ?? guessed.label),
    textPair: format === 'txt' ? undefined : (opts.fields?.textPair ?? guessed.textPair),
  };
  const scan: Scan = { columns: [], bytes: 0, complete: true };
  const counts = new Map<string, number>();
  let unlabelled = 0;
  let count = 0;
  for await (const r of records(file, format, maxBytes, scan)) {
    count++;
    if (!fields.label) continue;
    const label = (r[fields.label] ?? '').trim();
    if (label === '') unlabelled++;
    else counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  if (!scan.complete && count > 0) count = Math.round((count * bytes) / Math.max(scan.bytes, 1));
  const labels = [...counts].map(([label, n]) => ({ label, count: n })).sort((a, b) => b.count - a.count || a.label.localeCompare(b.label));
  const labelled = fields.label !== undefined && scan.columns.includes(fields.label) && labels.length >= 2;
  const tasks: Task[] = format === 'txt' ? ['lm'] : labelled ? ['classification', 'lm'] : ['lm'];
  return {
    file,
    format,
    columns: scan.columns,
    rows: sample.slice(0, opts.rows ?? 5),
    rowCount: count,
    complete: scan.complete,
    bytes,
    fields,
    labels,
    unlabelled,
    tasks,
  };
}

/** "1,200 rows · text: sentence · label: label (positive 612, negative 588)". */
export function describePreview(p: DataPreview): string {
  const n = p.rowCount.toLocaleString('en-US');
  const rows = `${p.complete ? '' : '~'}${n} ${p.format === 'txt' ? 'documents' : 'rows'}`;
  if (p.format === 'txt') return rows;
  const parts = [rows, `text: ${p.fields.text ?? '—'}`];
  if (p.fields.textPair) parts.push(`pair: ${p.fields.textPair}`);
  if (p.fields.label) {
    const shown = p.labels.slice(0, 4).map((l) => `${l.label} ${l.count.toLocaleString('en-US')}`);
    const more = p.labels.length > 4 ? `, +${p.labels.length - 4} more` : '';
    parts.push(`label: ${p.fields.label} (${shown.join(', ')}${more})`);
  }
  return parts.join(' · ');
}
