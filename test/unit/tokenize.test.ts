import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { UserError } from '../../src/core/errors';
import { LmBlocker, loadTokenizer, truncatePair } from '../../src/core/tokenize';

const TOK = path.resolve(__dirname, '../fixtures/tokenizers');
const bert = loadTokenizer(path.join(TOK, 'bert'));
const gpt2 = loadTokenizer(path.join(TOK, 'gpt2'));
const roberta = loadTokenizer(path.join(TOK, 'roberta'));
const llama = loadTokenizer(path.join(TOK, 'llama'));

const ids = (t: typeof bert, tokens: string[]) =>
  tokens.map((s) => {
    const id = t.tokenizer.token_to_id(s);
    assert.ok(id !== undefined, `fixture vocabulary has ${s}`);
    return id;
  });
const tokens = (t: typeof bert, list: number[]) => list.map((i) => t.tokenizer.id_to_token(i));

describe('special-token templates found by probing', () => {
  it('BERT: [CLS] A [SEP] and [CLS] A [SEP] B [SEP] with token types 0/1', () => {
    const e = bert.encode('The cats sat on the mat!');
    assert.deepEqual(tokens(bert, e.ids), ['[CLS]', 'the', 'cat', '##s', 'sat', 'on', 'the', 'mat', '!', '[SEP]']);
    assert.deepEqual(e.types, new Array(10).fill(0));
    assert.equal(e.truncated, false);
    const p = bert.encode('hello world', 'good morning');
    assert.deepEqual(tokens(bert, p.ids), ['[CLS]', 'hello', 'world', '[SEP]', 'good', 'morning', '[SEP]']);
    assert.deepEqual(p.types, [0, 0, 0, 0, 1, 1, 1]);
    assert.equal(bert.specialsCount(false), 2);
    assert.equal(bert.specialsCount(true), 3);
    assert.equal(bert.usesTokenTypes, true);
  });

  it('matches the library framing when nothing is cut', () => {
    for (const t of [bert, roberta, llama]) {
      const lib = t.tokenizer.encode('the dog sat, hello!', { text_pair: 'win a free prize' });
      assert.deepEqual(t.encode('the dog sat, hello!', 'win a free prize').ids, lib.ids);
      assert.deepEqual(t.encode('the dog sat, hello!').ids, t.tokenizer.encode('the dog sat, hello!').ids);
    }
  });

  it('RoBERTa: <s> A </s></s> B </s>, all token types 0 (the model has one segment)', () => {
    const a = roberta.encodeText('the cat');
    const b = roberta.encodeText('the dog');
    const [s, pad, eos] = ids(roberta, ['<s>', '<pad>', '</s>']);
    assert.deepEqual(roberta.encode('the cat').ids, [s, ...a, eos]);
    const p = roberta.encode('the cat', 'the dog');
    assert.deepEqual(p.ids, [s, ...a, eos, eos, ...b, eos]);
    assert.deepEqual(p.types, new Array(p.ids.length).fill(0));
    assert.equal(roberta.padId, pad);
    assert.equal(roberta.eosId, eos);
  });

  it('GPT-2: no special tokens; a pair is the two texts back to back', () => {
    const a = gpt2.encodeText('hello world');
    assert.deepEqual(gpt2.encode('hello world').ids, a);
    assert.deepEqual(gpt2.encode('hello world', ' the cat').ids, [...a, ...gpt2.encodeText(' the cat')]);
    assert.equal(gpt2.specialsCount(false), 0);
    assert.equal(gpt2.tokenizer.decode(a), 'hello world');
  });

  it('LLaMA: <s> A (BOS only)', () => {
    const [bos] = ids(llama, ['<s>']);
    assert.deepEqual(llama.encode('the cat').ids, [bos, ...llama.encodeText('the cat')]);
  });

  it('pad and EOS ids, in the documented order of sources', () => {
    assert.equal(bert.padId, 0);
    assert.match(bert.padSource, /^tokenizer_config\.json pad_token/);
    assert.equal(roberta.padSource, 'tokenizer_config.json pad_token "<pad>"');
    assert.equal(llama.padId, llama.tokenizer.token_to_id('<unk>'));
    assert.equal(llama.padSource, 'config.json pad_token_id');
    assert.equal(gpt2.padId, 0);
    assert.match(gpt2.padSource, /^default 0/);
    assert.equal(gpt2.eosId, gpt2.tokenizer.token_to_id('<|endoftext|>'));
    assert.equal(llama.eosId, llama.tokenizer.token_to_id('</s>'));
  });
});

describe('truncation keeps the special tokens', () => {
  const long = 'the cat sat on the mat and the dog sat on the log';

  it('BERT single: content cut, final [SEP] kept, length = maxLen', () => {
    const full = bert.encode(long);
    assert.ok(full.ids.length > 8);
    const e = bert.encode(long, undefined, 8);
    assert.equal(e.ids.length, 8);
    assert.equal(e.truncated, true);
    assert.deepEqual(e.ids, [...full.ids.slice(0, 7), full.ids[full.ids.length - 1]]);
    assert.equal(tokens(bert, e.ids).at(-1), '[SEP]');
    assert.deepEqual(bert.encode('hi', undefined, 8).ids.length, bert.encode('hi').ids.length, 'short texts are not padded');
  });

  it('BERT pair: longest-first, the shorter text kept whole when it fits', () => {
    const a = bert.encodeText(long); // 17 content tokens ("and", "log" are spelled with ## pieces)
    assert.equal(a.length, 17);
    const b = bert.encodeText('hello world'); // 2
    assert.equal(b.length, 2);
    const e = bert.encode(long, 'hello world', 10);
    // budget 10 - 3 specials = 7: b keeps 2, a keeps 5
    assert.deepEqual(e.ids, ids(bert, ['[CLS]']).concat(a.slice(0, 5), ids(bert, ['[SEP]']), b, ids(bert, ['[SEP]'])));
    assert.deepEqual(e.types, [0, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
    // both long: halves, the odd token to the longer text (here the second one: equal lengths → B)
    const both = bert.encode(long, long, 12);
    assert.equal(both.ids.length, 12);
    const sep = ids(bert, ['[SEP]'])[0];
    assert.deepEqual(
      both.ids.map((x, i) => (x === sep ? i : -1)).filter((i) => i >= 0),
      [5, 11],
    );
  });

  it('truncatePair follows Hugging Face longest_first', () => {
    // [lenA, lenB, budget] -> [keepA, keepB], values from tokenizers' truncate_encodings
    const cases: [number, number, number, [number, number]][] = [
      [3, 4, 10, [3, 4]],
      [3, 20, 10, [3, 7]],
      [20, 3, 10, [7, 3]],
      [10, 10, 15, [7, 8]],
      [12, 10, 15, [8, 7]],
      [20, 3, 4, [2, 2]],
      [10, 12, 5, [2, 3]],
      [0, 30, 6, [0, 6]],
    ];
    for (const [a, b, m, want] of cases) assert.deepEqual(truncatePair(a, b, m), want, `${a}+${b} into ${m}`);
  });

  it('GPT-2: the first maxLen tokens; LLaMA keeps the BOS', () => {
    const full = gpt2.encode(long);
    assert.deepEqual(gpt2.encode(long, undefined, 5).ids, full.ids.slice(0, 5));
    const l = llama.encode(long, undefined, 5);
    assert.deepEqual(l.ids, llama.encode(long).ids.slice(0, 5));
    assert.equal(l.ids[0], llama.tokenizer.token_to_id('<s>'));
    const r = roberta.encode(long, undefined, 5);
    assert.deepEqual(tokens(roberta, [r.ids[0], r.ids[4]]), ['<s>', '</s>']);
  });

  it('a maxLen that leaves no room for text is a UserError', () => {
    assert.throws(
      () => bert.encode('hi', undefined, 2),
      (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.equal(
          e.message,
          'maxLen 2 leaves no room for text: the tokenizer adds 2 special tokens to each text. Use a larger maximum sequence length.',
        );
        return true;
      },
    );
  });
});

describe('language-modelling blocks', () => {
  it('documents joined with EOS, cut into blocks of maxLen, the final partial block dropped', () => {
    const b = new LmBlocker(4, 99);
    assert.deepEqual(b.push([1, 2, 3]), []);
    assert.deepEqual(b.push([4, 5, 6, 7, 8, 9, 10]), [
      [1, 2, 3, 99],
      [4, 5, 6, 7],
    ]);
    assert.deepEqual(b.push([11]), [[8, 9, 10, 99]]);
    assert.deepEqual(b.finish(), []);
    assert.equal(b.dropped, 1);
  });

  it('the partial block is kept when it is the only one; no EOS when the tokenizer has none', () => {
    const b = new LmBlocker(10, undefined);
    b.push([1, 2]);
    b.push([3]);
    assert.deepEqual(b.finish(), [[1, 2, 3]]);
    assert.equal(b.dropped, 0);
  });

  it('with the GPT-2 tokenizer: <|endoftext|> between documents', () => {
    const b = new LmBlocker(1000, gpt2.eosId);
    b.push(gpt2.encodeText('hello world'));
    b.push(gpt2.encodeText('the cat'));
    assert.equal(gpt2.tokenizer.decode(b.finish()[0]), 'hello world<|endoftext|>the cat');
  });
});

describe('tokenizer files', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vtrans-tok-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('missing tokenizer.json names the expected path and what the model folder needs', () => {
    assert.throws(
      () => loadTokenizer(tmp),
      (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.equal(
          e.message,
          `${path.join(tmp, 'tokenizer.json')}: missing. The model directory needs its tokenizer files (tokenizer.json, and tokenizer_config.json if the model has one); copy them from the original checkpoint or save them with tokenizer.save_pretrained().`,
        );
        return true;
      },
    );
  });

  it('works without tokenizer_config.json; hashes the tokenizer file', () => {
    fs.copyFileSync(path.join(TOK, 'gpt2', 'tokenizer.json'), path.join(tmp, 'tokenizer.json'));
    const t = loadTokenizer(tmp);
    assert.equal(t.configSha256, null);
    assert.equal(t.sha256, gpt2.sha256);
    assert.equal(t.eosId, gpt2.eosId, 'EOS found by its well-known name');
    assert.deepEqual(t.encode('the cat').ids, gpt2.encode('the cat').ids);
  });

  it('invalid JSON is a UserError naming the file', () => {
    const d = path.join(tmp, 'bad');
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'tokenizer.json'), '{"model": ');
    assert.throws(
      () => loadTokenizer(d),
      (e: unknown) => e instanceof UserError && e.message.startsWith(`${path.join(d, 'tokenizer.json')}: not valid JSON (`),
    );
  });
});
