// GPT-2-style byte-level BPE tokenizer builder. Text is split with the GPT-2 regex (the ByteLevel
// pre-tokenizer with use_regex), each piece's UTF-8 bytes are mapped to the 256 printable stand-in
// characters GPT-2 uses, and BPE merges are learned over the piece counts. Every byte is in the
// vocabulary, so any text encodes without an unknown token and decodes back exactly.
import { learnMerges, type WordTable } from './bpe';
import { addedTokensDecoder, specialToken, vocabObject, type TokenizerBundle, type TokenizerJson } from './tokenizerJson';

export const EOS_TOKEN = '<|endoftext|>';

/** GPT-2's pre-tokenization regex (identical to the one of `@huggingface/tokenizers` and Rust's ByteLevel). */
export const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's bytes_to_unicode table: byte value -> the character that stands for it. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table: string[] = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = printable.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + n++);
  }
  return table;
})();

const encoder = new TextEncoder();

export function byteLevelPiece(piece: string): string {
  let out = '';
  for (const b of encoder.encode(piece)) out += BYTE_TO_CHAR[b];
  return out;
}

/** The byte-level pre-tokens of a text, as the tokenizer will see them. */
export function byteLevelPreTokenize(text: string): string[] {
  return (text.match(GPT2_PATTERN) ?? []).map(byteLevelPiece);
}

export interface ByteLevelBpeOptions {
  /** Total vocabulary size: 256 bytes + merges + `<|endoftext|>` (default 8192). */
  vocabSize?: number;
  /** A pair must occur at least this often to be merged (default 2). */
  minFrequency?: number;
  /** `model_max_length` of tokenizer_config.json (default 1024). */
  modelMaxLength?: number;
  log?: (line: string) => void;
}

export interface ByteLevelBpeResult extends TokenizerBundle {
  stats: { pieces: number; distinctPieces: number; merges: number; vocabSize: number };
}

export function trainByteLevelBpe(texts: Iterable<string>, opts: ByteLevelBpeOptions = {}): ByteLevelBpeResult {
  const vocabSize = opts.vocabSize ?? 8192;
  const minFrequency = opts.minFrequency ?? 2;
  const log = opts.log ?? (() => {});
  if (!Number.isInteger(vocabSize) || vocabSize < 257)
    throw new Error(`vocabSize must be an integer >= 257 (256 bytes + ${EOS_TOKEN}), got ${vocabSize}`);

  const pieceCounts = new Map<string, number>();
  let total = 0;
  for (const text of texts) {
    for (const m of text.matchAll(GPT2_PATTERN)) {
      pieceCounts.set(m[0], (pieceCounts.get(m[0]) ?? 0) + 1);
      total++;
    }
  }
  const table: WordTable = { words: [], counts: [] };
  const entries = [...pieceCounts].map(([p, c]) => [byteLevelPiece(p), c] as [string, number]);
  entries.sort((a, b) => (a[1] !== b[1] ? b[1] - a[1] : a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (const [p, c] of entries) {
    table.words.push([...p]);
    table.counts.push(c);
  }
  log(`byte-level bpe: ${total} pre-tokens, ${pieceCounts.size} distinct`);

  const vocab: string[] = [...BYTE_TO_CHAR];
  const seen = new Set(vocab);
  const merges: string[] = [];
  const target = vocabSize - 1; // the last id is <|endoftext|>, as in GPT-2
  if (vocab.length < target) {
    for (const m of learnMerges(table, { minPairCount: minFrequency })) {
      merges.push(`${m.left} ${m.right}`);
      if (!seen.has(m.merged)) {
        seen.add(m.merged);
        vocab.push(m.merged);
      }
      if (vocab.length >= target) break;
    }
  }
  const eosId = vocab.length;
  log(`byte-level bpe: ${merges.length} merges, vocabulary ${eosId + 1}`);

  const added = [specialToken(eosId, EOS_TOKEN)];
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const tokenizer: TokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { ...byteLevel },
    post_processor: { ...byteLevel },
    decoder: { ...byteLevel },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: vocabObject([...vocab, EOS_TOKEN]),
      merges,
    },
  };
  const config = {
    tokenizer_class: 'GPT2TokenizerFast',
    model_max_length: opts.modelMaxLength ?? 1024,
    add_prefix_space: false,
    add_bos_token: false,
    clean_up_tokenization_spaces: false,
    bos_token: EOS_TOKEN,
    eos_token: EOS_TOKEN,
    unk_token: EOS_TOKEN,
    pad_token: EOS_TOKEN,
    model_input_names: ['input_ids', 'attention_mask'],
    added_tokens_decoder: addedTokensDecoder(added),
  };
  const specialTokensMap = { bos_token: EOS_TOKEN, eos_token: EOS_TOKEN, unk_token: EOS_TOKEN, pad_token: EOS_TOKEN };
  return {
    tokenizer,
    config,
    specialTokensMap,
    stats: { pieces: total, distinctPieces: pieceCounts.size, merges: merges.length, vocabSize: eosId + 1 },
  };
}
