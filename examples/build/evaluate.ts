// Checks a built tokenizer the way the extension will use it: loaded by `@huggingface/tokenizers`.
import type { TokenizerBundle } from './tokenizerJson';

/**
 * The part of `@huggingface/tokenizers`' Tokenizer used here. Its own declarations do not resolve
 * when imported from CommonJS code (they come out as `any`), so the shape is spelled out.
 */
export interface HfTokenizer {
  encode(
    text: string,
    options?: { text_pair?: string | null; add_special_tokens?: boolean; return_token_type_ids?: boolean | null },
  ): { ids: number[]; tokens: string[]; attention_mask: number[]; token_type_ids?: number[] };
  decode(ids: number[], options?: { skip_special_tokens?: boolean; clean_up_tokenization_spaces?: boolean | null }): string;
  tokenize(text: string, options?: { text_pair?: string | null; add_special_tokens?: boolean }): string[];
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  normalizer: ((text: string) => string) | null;
  pre_tokenizer: ((text: string) => string[]) | null;
}

/** `@huggingface/tokenizers` is an ES module; this CommonJS code loads it with a dynamic import. */
export async function loadTokenizer(bundle: Pick<TokenizerBundle, 'tokenizer' | 'config'>): Promise<HfTokenizer> {
  const { Tokenizer } = await import('@huggingface/tokenizers');
  return new Tokenizer(bundle.tokenizer, bundle.config) as HfTokenizer;
}

export interface TokenizerEval {
  texts: number;
  /** Whitespace-separated words. */
  words: number;
  /** Tokens without the special tokens the post-processor adds. */
  tokens: number;
  unknown: number;
  unknownRate: number;
  tokensPerWord: number;
  /** Fraction of texts for which decode(encode(text)) gives the text back exactly. */
  exactRoundTrip: number;
}

export async function evaluateTokenizer(
  bundle: Pick<TokenizerBundle, 'tokenizer' | 'config'>,
  texts: readonly string[],
): Promise<TokenizerEval> {
  const tok = await loadTokenizer(bundle);
  const model = bundle.tokenizer.model;
  const modelUnk = typeof model.unk_token === 'string' ? model.unk_token : null;
  const unkId = modelUnk !== null ? tok.token_to_id(modelUnk) : undefined;
  let words = 0;
  let tokens = 0;
  let unknown = 0;
  let exact = 0;
  for (const text of texts) {
    words += text.split(/\s+/).filter((w) => w !== '').length;
    const enc = tok.encode(text, { add_special_tokens: false });
    tokens += enc.ids.length;
    if (unkId !== undefined) for (const id of enc.ids) if (id === unkId) unknown++;
    if (enc.ids.length > 0 && tok.decode(enc.ids) === text) exact++;
  }
  return {
    texts: texts.length,
    words,
    tokens,
    unknown,
    unknownRate: tokens ? unknown / tokens : 0,
    tokensPerWord: words ? tokens / words : 0,
    exactRoundTrip: texts.length ? exact / texts.length : 0,
  };
}
