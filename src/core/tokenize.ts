/**
 * Tokenization with the model's own `tokenizer.json` (pure-JS `@huggingface/tokenizers`), with the
 * truncation the library lacks: the text is encoded without special tokens, cut to fit, and framed with
 * the model's special-token template, which is found by encoding probe texts with and without specials
 * (BERT `[CLS] A [SEP]` / `[CLS] A [SEP] B [SEP]`, RoBERTa `<s> A </s></s> B </s>`, GPT-2 nothing,
 * LLaMA `<s> A`). The result equals what Hugging Face's `tokenizer(a, b, truncation=True,
 * max_length=maxLen)` gives (longest-first for pairs). See docs/data-format.md.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Tokenizer } from '@huggingface/tokenizers' with { 'resolution-mode': 'import' };
import { UserError } from './errors';

// The package is ESM with a CommonJS build for Node; `require` picks that one (and esbuild bundles it).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const tokenizersLib = require('@huggingface/tokenizers') as { Tokenizer: typeof Tokenizer };

type Json = Record<string, unknown>;

/** Special tokens around one sequence, or around a pair (`prefix A middle B suffix`), with their token types. */
export interface Template {
  prefix: number[];
  prefixTypes: number[];
  middle: number[];
  middleTypes: number[];
  suffix: number[];
  suffixTypes: number[];
  /** Token type of the first text's tokens. */
  typeA: number;
  /** Token type of the second text's tokens (pairs). */
  typeB: number;
}

export interface Encoded {
  ids: number[];
  /** Token type per token (all 0 unless the model uses token types). */
  types: number[];
  /** True when tokens were cut to fit maxLen. */
  truncated: boolean;
}

export interface ModelTokenizer {
  modelDir: string;
  /** Absolute path of tokenizer.json. */
  file: string;
  /** SHA-256 of tokenizer.json's bytes. */
  sha256: string;
  /** SHA-256 of tokenizer_config.json's bytes, or null when there is none. */
  configSha256: string | null;
  tokenizer: Tokenizer;
  single: Template;
  pair: Template;
  padId: number;
  /** Where padId came from: tokenizer_config.json pad_token, tokenizer.json padding, config.json pad_token_id, or default 0. */
  padSource: string;
  /** End-of-sequence token joining language-modelling documents, when the tokenizer has one. */
  eosId: number | undefined;
  /** Whether the model takes token type ids (segment embeddings); when false every type id is 0. */
  usesTokenTypes: boolean;
  /** Content tokens of one text, without special tokens and without truncation. */
  encodeText(text: string): number[];
  /** Framed with the special-token template and truncated so that the result has at most maxLen tokens. */
  encode(text: string, textPair?: string, maxLen?: number): Encoded;
  /** How many special tokens frame a single text or a pair. */
  specialsCount(pair: boolean): number;
}

const PROBE_A = 'hello world';
const PROBE_B = 'good morning';

/** Loads tokenizer.json (+ tokenizer_config.json, + config.json for pad/EOS ids) from a model directory. */
export function loadTokenizer(modelDir: string): ModelTokenizer {
  const file = path.resolve(modelDir, 'tokenizer.json');
  if (!fs.existsSync(file)) {
    throw new UserError(
      `${file}: missing.`,
      'The model directory needs its tokenizer files (tokenizer.json, and tokenizer_config.json if the model has one); copy them from the original checkpoint or save them with tokenizer.save_pretrained().',
    );
  }
  const raw = fs.readFileSync(file);
  const tokJson = parseJson(raw.toString('utf8'), file);
  const cfgFile = path.resolve(modelDir, 'tokenizer_config.json');
  const cfgRaw = fs.existsSync(cfgFile) ? fs.readFileSync(cfgFile) : undefined;
  const tokCfg = cfgRaw ? parseJson(cfgRaw.toString('utf8'), cfgFile) : {};
  const modelCfgFile = path.resolve(modelDir, 'config.json');
  const modelCfg = fs.existsSync(modelCfgFile) ? parseJsonLenient(modelCfgFile) : {};

  let tokenizer: Tokenizer;
  try {
    tokenizer = new tokenizersLib.Tokenizer(tokJson, tokCfg);
  } catch (e) {
    throw new UserError(
      `${file}: cannot be loaded (${firstLine(e)}).`,
      'Re-save it with a current `tokenizers`/`transformers` (tokenizer.save_pretrained()).',
    );
  }
  const encodeText = (text: string): number[] => tokenizer.encode(text, { add_special_tokens: false }).ids;

  const usesTokenTypes = Array.isArray(tokCfg.model_input_names)
    ? (tokCfg.model_input_names as unknown[]).includes('token_type_ids')
    : typeof modelCfg.type_vocab_size === 'number' && modelCfg.type_vocab_size > 1;
  const { single, pair } = findTemplates(tokenizer, encodeText, file, usesTokenTypes);
  const { padId, padSource } = findPadId(tokenizer, tokCfg, tokJson, modelCfg);
  const eosId = findEosId(tokenizer, tokCfg, modelCfg);

  const encode = (text: string, textPair?: string, maxLen?: number): Encoded => {
    const isPair = textPair !== undefined;
    const t = isPair ? pair : single;
    let a = encodeText(text);
    let b = isPair ? encodeText(textPair) : [];
    let truncated = false;
    if (maxLen !== undefined) {
      const budget = maxLen - t.prefix.length - t.middle.length - t.suffix.length;
      if (budget < (isPair ? 2 : 1)) {
        throw new UserError(
          `maxLen ${maxLen} leaves no room for text: the tokenizer adds ${maxLen - budget} special tokens to ${isPair ? 'a text pair' : 'each text'}.`,
          'Use a larger maximum sequence length.',
        );
      }
      if (isPair) {
        const [na, nb] = truncatePair(a.length, b.length, budget);
        truncated = na < a.length || nb < b.length;
        a = a.length > na ? a.slice(0, na) : a;
        b = b.length > nb ? b.slice(0, nb) : b;
      } else if (a.length > budget) {
        a = a.slice(0, budget);
        truncated = true;
      }
    }
    const ids = isPair ? [...t.prefix, ...a, ...t.middle, ...b, ...t.suffix] : [...t.prefix, ...a, ...t.suffix];
    const types = isPair
      ? [...t.prefixTypes, ...fill(a.length, t.typeA), ...t.middleTypes, ...fill(b.length, t.typeB), ...t.suffixTypes]
      : [...t.prefixTypes, ...fill(a.length, t.typeA), ...t.suffixTypes];
    return { ids, types, truncated };
  };

  return {
    modelDir,
    file,
    sha256: sha256(raw),
    configSha256: cfgRaw ? sha256(cfgRaw) : null,
    tokenizer,
    single,
    pair,
    padId,
    padSource,
    eosId,
    usesTokenTypes,
    encodeText,
    encode,
    specialsCount: (isPair) => {
      const t = isPair ? pair : single;
      return t.prefix.length + t.middle.length + t.suffix.length;
    },
  };
}

/**
 * Hugging Face's `longest_first` truncation of a pair to `budget` content tokens (the special tokens are
 * already subtracted): the shorter text is kept whole when the longer one can absorb the cut, else both are
 * cut to half the budget (the longer one gets the odd token). Returns the kept lengths.
 */
export function truncatePair(lenA: number, lenB: number, budget: number): [number, number] {
  if (lenA + lenB <= budget) return [lenA, lenB];
  const swap = lenA > lenB;
  let n1 = swap ? lenB : lenA; // shorter
  let n2: number;
  if (n1 > budget) n2 = n1;
  else n2 = Math.max(n1, budget - n1);
  if (n1 + n2 > budget) {
    n1 = Math.floor(budget / 2);
    n2 = n1 + (budget % 2);
  }
  const [na, nb] = swap ? [n2, n1] : [n1, n2];
  return [Math.min(na, lenA), Math.min(nb, lenB)];
}

/**
 * Cuts a stream of language-modelling pieces into consecutive blocks of exactly `blockLen` tokens: pieces are
 * joined with `eosId` between them (documents), or with nothing when it is undefined (the lines of a text,
 * or documents of a tokenizer without EOS); the final partial block is dropped unless it is the only one.
 */
export class LmBlocker {
  private buf: number[] = [];
  private docs = 0;
  private emitted = 0;
  /** Tokens left over at the end (the dropped partial block). */
  dropped = 0;

  constructor(
    readonly blockLen: number,
    readonly eosId: number | undefined,
  ) {
    if (!Number.isInteger(blockLen) || blockLen < 1) throw new UserError(`maxLen must be a positive integer, got ${blockLen}.`);
  }

  /** Adds one piece's tokens (a document, or a line of text); returns the blocks it completed. */
  push(ids: readonly number[]): number[][] {
    if (this.docs > 0 && this.eosId !== undefined) this.buf.push(this.eosId);
    this.docs++;
    for (const id of ids) this.buf.push(id);
    const out: number[][] = [];
    let at = 0;
    while (this.buf.length - at >= this.blockLen) {
      out.push(this.buf.slice(at, at + this.blockLen));
      at += this.blockLen;
    }
    if (at > 0) this.buf = this.buf.slice(at);
    this.emitted += out.length;
    return out;
  }

  /** The last blocks: the partial block when no full block was made, else nothing (its tokens are dropped). */
  finish(): number[][] {
    const rest = this.buf;
    this.buf = [];
    if (this.emitted === 0 && rest.length > 0) {
      this.emitted = 1;
      return [rest];
    }
    this.dropped = rest.length;
    return [];
  }
}

// ------------------------------------------------------------------------------------------- internals

function findTemplates(
  tokenizer: Tokenizer,
  encodeText: (t: string) => number[],
  file: string,
  usesTokenTypes: boolean,
): { single: Template; pair: Template } {
  const a = encodeText(PROBE_A);
  const b = encodeText(PROBE_B);
  const fail = (what: string): never => {
    throw new UserError(
      `${file}: cannot work out where the tokenizer puts its special tokens around ${what}.`,
      'Check the post_processor in tokenizer.json (TemplateProcessing, BertProcessing, RobertaProcessing or ByteLevel are supported).',
    );
  };
  if (a.length === 0 || b.length === 0) fail('a text (the probe text gives no tokens)');
  const types = (e: { token_type_ids?: number[] }, n: number): number[] => {
    const t = e.token_type_ids ?? [];
    return Array.from({ length: n }, (_, i) => (usesTokenTypes ? (t[i] ?? 0) : 0));
  };

  const s = tokenizer.encode(PROBE_A, { return_token_type_ids: true });
  const st = types(s, s.ids.length);
  const i = indexOf(s.ids, a, 0);
  if (i < 0) fail('a single text');
  const single: Template = {
    prefix: s.ids.slice(0, i),
    prefixTypes: st.slice(0, i),
    middle: [],
    middleTypes: [],
    suffix: s.ids.slice(i + a.length),
    suffixTypes: st.slice(i + a.length),
    typeA: st[i] ?? 0,
    typeB: 0,
  };

  const p = tokenizer.encode(PROBE_A, { text_pair: PROBE_B, return_token_type_ids: true });
  const pt = types(p, p.ids.length);
  const ia = indexOf(p.ids, a, 0);
  if (ia < 0) fail('a text pair');
  const ib = indexOf(p.ids, b, ia + a.length);
  let pair: Template;
  if (ib < 0) {
    // The post-processor drops the second text (byte-level BPE such as GPT-2 has no pair template):
    // like Hugging Face, the two texts are concatenated inside the single-text frame.
    pair = { ...single, middle: [], middleTypes: [], typeB: single.typeA };
  } else {
    pair = {
      prefix: p.ids.slice(0, ia),
      prefixTypes: pt.slice(0, ia),
      middle: p.ids.slice(ia + a.length, ib),
      middleTypes: pt.slice(ia + a.length, ib),
      suffix: p.ids.slice(ib + b.length),
      suffixTypes: pt.slice(ib + b.length),
      typeA: pt[ia] ?? 0,
      typeB: pt[ib] ?? 0,
    };
  }
  return { single, pair };
}

function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return undefined;
}

function configId(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  if (Array.isArray(v) && typeof v[0] === 'number' && Number.isInteger(v[0]) && v[0] >= 0) return v[0];
  return undefined;
}

/** Pad id, in this order: tokenizer_config.json `pad_token`, tokenizer.json `padding.pad_id`, config.json `pad_token_id`, else 0. */
function findPadId(tokenizer: Tokenizer, tokCfg: Json, tokJson: Json, modelCfg: Json): { padId: number; padSource: string } {
  const padTok = tokenContent(tokCfg.pad_token);
  const fromTok = padTok === undefined ? undefined : tokenizer.token_to_id(padTok);
  if (fromTok !== undefined) return { padId: fromTok, padSource: `tokenizer_config.json pad_token ${JSON.stringify(padTok)}` };
  const padding = tokJson.padding as Json | null | undefined;
  if (padding && typeof padding === 'object') {
    const id = configId(padding.pad_id);
    if (id !== undefined) return { padId: id, padSource: 'tokenizer.json padding.pad_id' };
  }
  const fromCfg = configId(modelCfg.pad_token_id);
  if (fromCfg !== undefined) return { padId: fromCfg, padSource: 'config.json pad_token_id' };
  return { padId: 0, padSource: 'default 0 (the model has no pad token; padded positions are masked out)' };
}

const EOS_NAMES = ['<|endoftext|>', '</s>', '<|end_of_text|>', '<eos>', '<|eot_id|>'];

/** EOS id, in this order: tokenizer_config.json `eos_token`, config.json `eos_token_id`, a well-known EOS token in the vocabulary. */
function findEosId(tokenizer: Tokenizer, tokCfg: Json, modelCfg: Json): number | undefined {
  const eosTok = tokenContent(tokCfg.eos_token);
  const fromTok = eosTok === undefined ? undefined : tokenizer.token_to_id(eosTok);
  if (fromTok !== undefined) return fromTok;
  const fromCfg = configId(modelCfg.eos_token_id);
  if (fromCfg !== undefined) return fromCfg;
  for (const name of EOS_NAMES) {
    const id = tokenizer.token_to_id(name);
    if (id !== undefined) return id;
  }
  return undefined;
}

function indexOf(hay: readonly number[], needle: readonly number[], from: number): number {
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function fill(n: number, v: number): number[] {
  return n === 0 ? [] : new Array<number>(n).fill(v);
}

function parseJson(text: string, file: string): Json {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${firstLine(e)}).`, 'Re-save the tokenizer files from the original checkpoint.');
  }
  if (!v || typeof v !== 'object' || Array.isArray(v))
    throw new UserError(`${file}: must be a JSON object.`, 'Re-save the tokenizer files from the original checkpoint.');
  return v as Json;
}

/** config.json only supplies optional ids here; a broken one is reported by the model loader, not here. */
function parseJsonLenient(file: string): Json {
  try {
    const v: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {};
  } catch {
    return {};
  }
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
