// BERT-style uncased WordPiece tokenizer builder. Words come from the same normalization and
// pre-tokenization the tokenizer applies at encode time (BertNormalizer + BertPreTokenizer); pieces are
// learned with BPE merges over word counts, where a word starts as [c0, ##c1, ##c2, ...] (the way the
// Rust `tokenizers` WordPieceTrainer does it) and every merge result becomes a vocabulary entry.
import { learnMerges, type WordTable } from './bpe';
import { addedTokensDecoder, specialToken, vocabObject, type JsonValue, type TokenizerBundle, type TokenizerJson } from './tokenizerJson';

export const BERT_SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;
const PREFIX = '##';

export interface WordPieceOptions {
  /** Total vocabulary size including the 5 special tokens (default 8000). */
  vocabSize?: number;
  /** A pair must occur at least this often (weighted by word count) to be merged (default 2). */
  minFrequency?: number;
  /** Keep only this many most frequent characters in the alphabet (default 1000); rarer ones become [UNK]. */
  limitAlphabet?: number;
  /** Words longer than this (in characters) are [UNK] at encode time and ignored in training (default 100). */
  maxInputCharsPerWord?: number;
  /** `model_max_length` of tokenizer_config.json (default 512). */
  modelMaxLength?: number;
  /** Called with short progress lines. */
  log?: (line: string) => void;
}

export interface WordPieceResult extends TokenizerBundle {
  stats: { words: number; distinctWords: number; alphabet: number; merges: number; vocabSize: number };
}

/** CJK ideographs that BertNormalizer surrounds with spaces (BMP blocks; the JS runtime checks UTF-16 units). */
export function isPaddedCjk(cp: number): boolean {
  return (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0xf900 && cp <= 0xfaff);
}

const CONTROL = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}]/u;
const PUNCT = '\\p{P}\\u0021-\\u002F\\u003A-\\u0040\\u005B-\\u0060\\u007B-\\u007E';
const BERT_WORD = new RegExp(`[^\\s${PUNCT}]+|[${PUNCT}]`, 'gu');

/**
 * BertNormalizer with clean_text, handle_chinese_chars, lowercase and strip_accents on, as applied by
 * `@huggingface/tokenizers` (and, up to unassigned code points, the Rust library).
 */
export function bertNormalize(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (cp > 0x20 && cp < 0x7f) {
      out += ch; // printable ASCII: nothing to clean (fast path)
      continue;
    }
    if (cp === 0 || cp === 0xfffd || (ch !== '\t' && ch !== '\n' && ch !== '\r' && CONTROL.test(ch))) continue;
    if (/\s/.test(ch)) out += ' ';
    else if (cp <= 0xffff && isPaddedCjk(cp)) out += ` ${ch} `;
    else out += ch;
  }
  return out
    .toLowerCase()
    .normalize('NFD')
    .replace(/\p{Mn}/gu, '');
}

/** BertPreTokenizer: split on whitespace, and every punctuation character is a word of its own. */
export function bertPreTokenize(normalized: string): string[] {
  return normalized.trim().match(BERT_WORD) ?? [];
}

export function countBertWords(texts: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const text of texts) {
    for (const w of bertPreTokenize(bertNormalize(text))) counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  return counts;
}

function byCountThenString(a: [string, number], b: [string, number]): number {
  if (a[1] !== b[1]) return b[1] - a[1];
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

export function trainWordPiece(texts: Iterable<string>, opts: WordPieceOptions = {}): WordPieceResult {
  const vocabSize = opts.vocabSize ?? 8000;
  const minFrequency = opts.minFrequency ?? 2;
  const limitAlphabet = opts.limitAlphabet ?? 1000;
  const maxChars = opts.maxInputCharsPerWord ?? 100;
  const log = opts.log ?? (() => {});
  if (!Number.isInteger(vocabSize) || vocabSize < BERT_SPECIAL_TOKENS.length + 1) {
    throw new Error(`vocabSize must be an integer > ${BERT_SPECIAL_TOKENS.length}, got ${vocabSize}`);
  }

  const wordCounts = countBertWords(texts);
  let total = 0;
  const charCounts = new Map<string, number>();
  for (const [w, c] of wordCounts) {
    total += c;
    for (const ch of w) charCounts.set(ch, (charCounts.get(ch) ?? 0) + c);
  }
  // Alphabet: the most frequent characters, each as a word-initial piece and (unless it is a CJK
  // ideograph, which the normalizer always isolates) as a `##` continuation piece.
  const alphabet = [...charCounts]
    .sort(byCountThenString)
    .slice(0, limitAlphabet)
    .map(([ch]) => ch);
  alphabet.sort((a, b) => (a.codePointAt(0) ?? 0) - (b.codePointAt(0) ?? 0));
  const inAlphabet = new Set(alphabet);
  const vocab: string[] = [...BERT_SPECIAL_TOKENS];
  const seen = new Set<string>(vocab);
  const add = (t: string): void => {
    if (!seen.has(t)) {
      seen.add(t);
      vocab.push(t);
    }
  };
  for (const ch of alphabet) add(ch);
  for (const ch of alphabet) if (!isPaddedCjk(ch.codePointAt(0) ?? 0)) add(PREFIX + ch);
  if (vocab.length > vocabSize) {
    throw new Error(
      `vocabSize ${vocabSize} is smaller than the special tokens plus the alphabet (${vocab.length}); raise vocabSize or lower limitAlphabet`,
    );
  }

  // Word table: words made only of alphabet characters and short enough to be encoded.
  const table: WordTable = { words: [], counts: [] };
  const entries = [...wordCounts].sort(byCountThenString);
  for (const [w, c] of entries) {
    const chars = [...w];
    if (chars.length > maxChars || chars.some((ch) => !inAlphabet.has(ch))) continue;
    table.words.push(chars.map((ch, i) => (i === 0 ? ch : PREFIX + ch)));
    table.counts.push(c);
  }
  log(`wordpiece: ${total} words, ${wordCounts.size} distinct, alphabet ${alphabet.length} characters`);

  let merges = 0;
  if (vocab.length < vocabSize) {
    const join = (l: string, r: string): string => l + r.slice(PREFIX.length);
    for (const m of learnMerges(table, { minPairCount: minFrequency, join })) {
      merges++;
      add(m.merged);
      if (vocab.length >= vocabSize) break;
    }
  }
  log(`wordpiece: ${merges} merges, vocabulary ${vocab.length}`);

  const added = BERT_SPECIAL_TOKENS.map((t, i) => specialToken(i, t));
  const tok = (name: string, typeId: number): { [key: string]: JsonValue } => ({ SpecialToken: { id: name, type_id: typeId } });
  const seq = (name: string, typeId: number): { [key: string]: JsonValue } => ({ Sequence: { id: name, type_id: typeId } });
  const tokenizer: TokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: true, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [tok('[CLS]', 0), seq('A', 0), tok('[SEP]', 0)],
      pair: [tok('[CLS]', 0), seq('A', 0), tok('[SEP]', 0), seq('B', 1), tok('[SEP]', 1)],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: PREFIX, cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: PREFIX,
      max_input_chars_per_word: maxChars,
      vocab: vocabObject(vocab),
    },
  };
  const config = {
    tokenizer_class: 'BertTokenizerFast',
    model_max_length: opts.modelMaxLength ?? 512,
    do_lower_case: true,
    strip_accents: true,
    tokenize_chinese_chars: true,
    clean_up_tokenization_spaces: true,
    pad_token: '[PAD]',
    unk_token: '[UNK]',
    cls_token: '[CLS]',
    sep_token: '[SEP]',
    mask_token: '[MASK]',
    model_input_names: ['input_ids', 'token_type_ids', 'attention_mask'],
    added_tokens_decoder: addedTokensDecoder(added),
  };
  const specialTokensMap = { pad_token: '[PAD]', unk_token: '[UNK]', cls_token: '[CLS]', sep_token: '[SEP]', mask_token: '[MASK]' };
  return {
    tokenizer,
    config,
    specialTokensMap,
    stats: { words: total, distinctWords: wordCounts.size, alphabet: alphabet.length, merges, vocabSize: vocab.length },
  };
}
