import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { learnMerges, type Merge, type WordTable } from '../../examples/build/bpe';
import { BYTE_TO_CHAR, EOS_TOKEN, GPT2_PATTERN, trainByteLevelBpe, type ByteLevelBpeResult } from '../../examples/build/bytelevel';
import { evaluateTokenizer, loadTokenizer, type HfTokenizer } from '../../examples/build/evaluate';
import { cleanSotuText, loadSotu, splitSotu } from '../../examples/build/sotu';
import { buildSpamRecords, loadSpamAssassin, splitSpamRecords } from '../../examples/build/spam';
import { vocabSize } from '../../examples/build/tokenizerJson';
import { bertNormalize, bertPreTokenize, trainWordPiece, type WordPieceResult } from '../../examples/build/wordpiece';

/** Small fixed corpus for determinism checks. */
const SMALL = [
  'The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs!',
  "Über naïve café owners don't re-tokenize 12,345 numbers — or do they?",
  'FREE!!! Click here: http://example.com/offer?id=42 to claim your prize.',
  'the the the there their then them these those thesis',
  '日本語のテキスト and 中文 text, with emoji 😀 and tabs\tand\nnewlines.',
];

function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Reference BPE: recounts every pair after every merge (slow, obviously right). Same tie-break. */
function naiveMerges(table: WordTable, minPairCount: number, limit: number): Merge[] {
  const words = table.words.map((w) => [...w]);
  const out: Merge[] = [];
  while (out.length < limit) {
    const counts = new Map<string, { l: string; r: string; c: number }>();
    words.forEach((w, i) => {
      for (let k = 0; k + 1 < w.length; k++) {
        const key = `${w[k]}\u0000${w[k + 1]}`;
        const e = counts.get(key) ?? { l: w[k], r: w[k + 1], c: 0 };
        e.c += table.counts[i];
        counts.set(key, e);
      }
    });
    let best: { l: string; r: string; c: number } | undefined;
    for (const e of counts.values()) {
      if (!best || e.c > best.c || (e.c === best.c && (e.l < best.l || (e.l === best.l && e.r < best.r)))) best = e;
    }
    if (!best || best.c < minPairCount) break;
    out.push({ left: best.l, right: best.r, merged: best.l + best.r, count: best.c });
    for (let i = 0; i < words.length; i++) {
      const w = words[i];
      const next: string[] = [];
      for (let k = 0; k < w.length; k++) {
        if (k + 1 < w.length && w[k] === best.l && w[k + 1] === best.r) {
          next.push(best.l + best.r);
          k++;
        } else next.push(w[k]);
      }
      words[i] = next;
    }
  }
  return out;
}

describe('BPE merge learner', () => {
  it('matches a from-scratch recount on random words (incremental pair counts are exact)', () => {
    const rand = mulberry32(1234);
    const letters = 'aabbbcde';
    const table: WordTable = { words: [], counts: [] };
    for (let i = 0; i < 300; i++) {
      const len = 1 + Math.floor(rand() * 9);
      table.words.push(Array.from({ length: len }, () => letters[Math.floor(rand() * letters.length)]));
      table.counts.push(1 + Math.floor(rand() * 5));
    }
    table.words.push(['a', 'a', 'a', 'a', 'a']); // overlapping pairs
    table.counts.push(50);
    const fast = [...learnMerges({ words: table.words.map((w) => [...w]), counts: table.counts }, { minPairCount: 2 })].slice(0, 120);
    const slow = naiveMerges(table, 2, 120);
    assert.ok(slow.length > 40);
    assert.deepEqual(fast, slow);
  });
});

describe('WordPiece tokenizer (spam)', () => {
  let wp: WordPieceResult;
  let tok: HfTokenizer;
  let dev: string[];

  before(async () => {
    const { records } = buildSpamRecords(loadSpamAssassin());
    const splits = splitSpamRecords(records);
    dev = splits.dev.map((r) => r.text);
    wp = trainWordPiece(
      splits.train.map((r) => r.text),
      { vocabSize: 4000 },
    );
    tok = await loadTokenizer(wp);
  });

  it('has the Hugging Face tokenizer.json layout and the BERT special ids', () => {
    const t = wp.tokenizer;
    assert.equal(t.version, '1.0');
    assert.equal(t.truncation, null);
    assert.equal(t.padding, null);
    assert.deepEqual(
      t.added_tokens.map((a) => [a.id, a.content]),
      [
        [0, '[PAD]'],
        [1, '[UNK]'],
        [2, '[CLS]'],
        [3, '[SEP]'],
        [4, '[MASK]'],
      ],
    );
    for (const a of t.added_tokens)
      assert.deepEqual(Object.keys(a), ['id', 'content', 'single_word', 'lstrip', 'rstrip', 'normalized', 'special']);
    assert.deepEqual(t.normalizer, {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: true,
      lowercase: true,
    });
    assert.deepEqual(t.pre_tokenizer, { type: 'BertPreTokenizer' });
    assert.equal(t.model.type, 'WordPiece');
    assert.equal(t.model.continuing_subword_prefix, '##');
    assert.equal(t.model.unk_token, '[UNK]');
    assert.equal(t.post_processor?.type, 'TemplateProcessing');
    assert.deepEqual(t.decoder, { type: 'WordPiece', prefix: '##', cleanup: true });
    assert.equal(vocabSize(t), 4000);
    const ids = Object.values(t.model.vocab).sort((a, b) => a - b);
    assert.deepEqual(
      ids,
      Array.from({ length: 4000 }, (_, i) => i),
      'ids are 0..n-1 without gaps',
    );
    assert.equal(wp.config.tokenizer_class, 'BertTokenizerFast');
    assert.equal(wp.config.do_lower_case, true);
    assert.equal(typeof wp.config.model_max_length, 'number');
    for (const ch of 'abcdefghijklmnopqrstuvwxyz0123456789') {
      assert.ok(ch in t.model.vocab && `##${ch}` in t.model.vocab, ch);
    }
  });

  it('frames a sequence as [CLS] ... [SEP] and a pair with token_type_ids', () => {
    const one = tok.encode('Free Money');
    assert.deepEqual(one.tokens, ['[CLS]', 'free', 'money', '[SEP]']);
    const long = tok.encode('Hello, World of unsubscribing!');
    assert.deepEqual(long.tokens, ['[CLS]', ...tok.tokenize('Hello, World of unsubscribing!'), '[SEP]']);
    assert.equal(one.ids[0], 2);
    assert.equal(one.ids[one.ids.length - 1], 3);
    assert.deepEqual(one.attention_mask, [1, 1, 1, 1]);
    assert.equal(tok.encode('Free Money', { add_special_tokens: false }).ids.length, 2);
    const pair = tok.encode('free money', { text_pair: 'click here', return_token_type_ids: true });
    assert.deepEqual(pair.tokens, ['[CLS]', 'free', 'money', '[SEP]', 'click', 'here', '[SEP]']);
    assert.deepEqual(pair.token_type_ids, [0, 0, 0, 0, 1, 1, 1]);
  });

  it('lowercases and strips accents; rare words split into ## pieces', () => {
    assert.deepEqual(tok.encode('CAFÉ Résumé').ids, tok.encode('cafe resume').ids);
    const pieces = tok.tokenize('unsubscribing');
    assert.ok(pieces.length >= 1 && pieces.slice(1).every((p) => p.startsWith('##')), pieces.join(' '));
    assert.ok(!tok.tokenize('Zyxwvutsrq').includes('[UNK]'));
  });

  it('uses the same normalization and pre-tokenization as @huggingface/tokenizers', () => {
    assert.ok(tok.normalizer && tok.pre_tokenizer);
    for (const text of [...SMALL, ...dev.slice(0, 40)]) {
      const lib = tok.pre_tokenizer(tok.normalizer(text));
      assert.deepEqual(bertPreTokenize(bertNormalize(text)), lib);
    }
  });

  it('maps less than 1 % of dev tokens to [UNK]', async () => {
    const ev = await evaluateTokenizer(wp, dev);
    assert.ok(ev.tokens > 50_000);
    assert.ok(ev.unknownRate < 0.01, `unknown rate ${ev.unknownRate}`);
    assert.ok(ev.tokensPerWord < 2.5, `tokens/word ${ev.tokensPerWord}`);
  });

  it('is deterministic: same corpus (in any order) gives the same JSON', () => {
    const a = trainWordPiece(SMALL, { vocabSize: 200, minFrequency: 1 });
    const b = trainWordPiece([...SMALL].reverse(), { vocabSize: 200, minFrequency: 1 });
    assert.equal(JSON.stringify(a.tokenizer), JSON.stringify(b.tokenizer));
    assert.equal(JSON.stringify(a.config), JSON.stringify(b.config));
    assert.equal(vocabSize(a.tokenizer), 200);
  });

  it('rejects a vocabulary too small for its alphabet', () => {
    assert.throws(() => trainWordPiece(SMALL, { vocabSize: 20 }), /smaller than the special tokens plus the alphabet/);
  });
});

describe('Byte-level BPE tokenizer (SOTU)', () => {
  let bpe: ByteLevelBpeResult;
  let tok: HfTokenizer;
  let dev: string[];

  before(async () => {
    const splits = splitSotu(loadSotu());
    dev = splits.dev.map((a) => cleanSotuText(a.text));
    bpe = trainByteLevelBpe(splits.train.map((a) => cleanSotuText(a.text)));
    tok = await loadTokenizer(bpe);
  });

  it('has the GPT-2 layout: 256 bytes first, merges, <|endoftext|> last', () => {
    const t = bpe.tokenizer;
    assert.equal(t.version, '1.0');
    assert.deepEqual(t.pre_tokenizer, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true });
    assert.equal(t.decoder?.type, 'ByteLevel');
    assert.equal(t.post_processor?.type, 'ByteLevel');
    assert.equal(t.post_processor?.trim_offsets, true);
    assert.equal(t.model.type, 'BPE');
    const vocab = t.model.vocab;
    for (let b = 0; b < 256; b++) assert.equal(vocab[BYTE_TO_CHAR[b]], b);
    assert.equal(vocabSize(t), 8192);
    assert.equal(vocab[EOS_TOKEN], 8191);
    assert.deepEqual(
      t.added_tokens.map((a) => [a.id, a.content, a.special]),
      [[8191, EOS_TOKEN, true]],
    );
    const merges = t.model.merges as string[];
    assert.ok(merges.length >= 8192 - 257);
    for (const m of merges) {
      const parts = m.split(' ');
      assert.equal(parts.length, 2, m);
      assert.ok(parts[0] in vocab && parts[1] in vocab && parts[0] + parts[1] in vocab, m); // required by the Rust BPE builder
    }
    for (const k of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) assert.equal(bpe.config[k], EOS_TOKEN);
    assert.equal(bpe.config.tokenizer_class, 'GPT2TokenizerFast');
  });

  it('round-trips arbitrary text: decode(encode(x)) === x', () => {
    const fixed = [
      '',
      ' ',
      '   leading and trailing   ',
      'multiple\n\n\nnewlines\r\nand\ttabs\t\t',
      'naïve café — “quotes” ‘and’ 1,234.56 $',
      '日本語 中文 한국어 עברית العربية',
      'emoji 😀👍🏽 and flags 🇺🇸 and zwj 👩‍👩‍👧',
      'e\u0301 combining, \u0000 nul, \u0007 bell, \ufffd replacement',
      "don't can't I'm we've they'll he'd it's",
      EOS_TOKEN,
    ];
    const rand = mulberry32(99);
    const pool = [' ', '  ', '\n', '\t', 'a', 'Z', 'é', '—', '中', '😀', "'", '.', '0', 'the', ' the', '\u00a0', '\u200b'];
    const random = Array.from({ length: 200 }, () =>
      Array.from({ length: 1 + Math.floor(rand() * 40) }, () => pool[Math.floor(rand() * pool.length)]).join(''),
    );
    const cps = Array.from({ length: 100 }, () => {
      let s = '';
      for (let i = 0; i < 30; i++) {
        let cp = Math.floor(rand() * 0x10ffff);
        if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41; // no lone surrogates: they are not text
        s += String.fromCodePoint(cp);
      }
      return s;
    });
    for (const x of [...fixed, ...random, ...cps, ...dev.slice(0, 3)]) {
      if (x === '') {
        assert.deepEqual(tok.encode(x).ids, []);
        continue;
      }
      const ids = tok.encode(x).ids;
      assert.equal(tok.decode(ids), x, JSON.stringify(x.slice(0, 80)));
    }
  });

  it('pre-tokenizes with the GPT-2 regex: " the" is one token', () => {
    assert.deepEqual(tok.tokenize(' the'), ['Ġthe']);
    assert.deepEqual(tok.tokenize('of the people'), ['of', 'Ġthe', 'Ġpeople']);
    assert.deepEqual("don't stop".match(GPT2_PATTERN), ['don', "'t", ' stop']);
    assert.deepEqual('a  b'.match(GPT2_PATTERN), ['a', ' ', ' b']);
    assert.deepEqual(
      tok.encode(`Peace.${EOS_TOKEN}War`).ids.filter((id) => id === 8191),
      [8191],
    );
  });

  it('compresses dev text to fewer than 1.6 tokens per word', async () => {
    const ev = await evaluateTokenizer(bpe, dev);
    assert.ok(ev.words > 50_000);
    assert.ok(ev.tokensPerWord < 1.6, `tokens/word ${ev.tokensPerWord}`);
    assert.equal(ev.unknown, 0);
    assert.equal(ev.exactRoundTrip, 1);
  });

  it('is deterministic: same corpus (in any order) gives the same JSON', () => {
    const a = trainByteLevelBpe(SMALL, { vocabSize: 300, minFrequency: 1 });
    const b = trainByteLevelBpe([...SMALL].reverse(), { vocabSize: 300, minFrequency: 1 });
    assert.equal(JSON.stringify(a.tokenizer), JSON.stringify(b.tokenizer));
    assert.equal(vocabSize(a.tokenizer), 300);
    assert.throws(() => trainByteLevelBpe(SMALL, { vocabSize: 100 }), /vocabSize must be/);
  });
});
