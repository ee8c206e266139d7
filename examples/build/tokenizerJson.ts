// Shapes of the Hugging Face `tokenizer.json` format (as written by the Rust `tokenizers` library,
// format version "1.0") and the companion `tokenizer_config.json` / `special_tokens_map.json`, plus
// writing the three files to a folder.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface TokenizerJson {
  version: '1.0';
  truncation: null;
  padding: null;
  added_tokens: AddedTokenJson[];
  normalizer: { [key: string]: JsonValue } | null;
  pre_tokenizer: { [key: string]: JsonValue } | null;
  post_processor: { [key: string]: JsonValue } | null;
  decoder: { [key: string]: JsonValue } | null;
  model: { type: string; vocab: Record<string, number>; [key: string]: JsonValue };
}

export interface TokenizerBundle {
  /** `tokenizer.json` */
  tokenizer: TokenizerJson;
  /** `tokenizer_config.json` */
  config: { [key: string]: JsonValue };
  /** `special_tokens_map.json` */
  specialTokensMap: { [key: string]: JsonValue };
}

export function specialToken(id: number, content: string): AddedTokenJson {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/** `added_tokens_decoder` of tokenizer_config.json (as written by recent `transformers`). */
export function addedTokensDecoder(tokens: AddedTokenJson[]): { [key: string]: JsonValue } {
  return Object.fromEntries(
    tokens.map((t) => [
      String(t.id),
      { content: t.content, lstrip: t.lstrip, normalized: t.normalized, rstrip: t.rstrip, single_word: t.single_word, special: t.special },
    ]),
  );
}

/** Vocabulary object in id order (built with fromEntries, so any token string is a plain own key). */
export function vocabObject(tokens: readonly string[]): Record<string, number> {
  return Object.fromEntries(tokens.map((t, i) => [t, i]));
}

/** Number of entries in the model vocabulary plus added tokens that are not in it. */
export function vocabSize(tok: TokenizerJson): number {
  const vocab = tok.model.vocab;
  let n = Object.keys(vocab).length;
  for (const t of tok.added_tokens) if (!Object.prototype.hasOwnProperty.call(vocab, t.content)) n++;
  return n;
}

export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'] as const;

/** Writes the three files (atomically each: temp file + rename). */
export function writeTokenizerFiles(dir: string, bundle: TokenizerBundle): void {
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, 'tokenizer.json'), JSON.stringify(bundle.tokenizer, null, 2) + '\n');
  writeFileAtomic(path.join(dir, 'tokenizer_config.json'), JSON.stringify(bundle.config, null, 2) + '\n');
  writeFileAtomic(path.join(dir, 'special_tokens_map.json'), JSON.stringify(bundle.specialTokensMap, null, 2) + '\n');
}

export function writeFileAtomic(file: string, content: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content);
  fs.renameSync(tmp, file);
}
