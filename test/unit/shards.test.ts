import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { displayPath } from '../../src/core/data';
import { UserError } from '../../src/core/errors';
import { batchFromShards, prepareShards, readShards, type ShardProgress } from '../../src/core/shards';
import { loadTokenizer } from '../../src/core/tokenize';
import { python } from './helpers/python';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vtrans-shards-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const TOK = path.resolve(__dirname, '../fixtures/tokenizers');
const BERT = path.join(TOK, 'bert');
const GPT2 = path.join(TOK, 'gpt2');
const bert = loadTokenizer(BERT);
const gpt2 = loadTokenizer(GPT2);

let n = 0;
function dataFile(name: string, content: string): string {
  const dir = path.join(tmp, `d${n++}`);
  fs.mkdirSync(dir);
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}
const jsonl = (rows: object[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
const cacheDirs = (cache: string) => fs.readdirSync(cache).sort();

const ROWS = [
  { text: 'Win a FREE prize now!', label: 'spam' },
  { text: 'the meeting is tomorrow morning', label: 'ham' },
  { text: 'the cat sat on the mat and the dog sat on the log, hello world', label: 1 },
  { text: 'hi', label: 'HAM' },
];

describe('token shards: write → read', () => {
  it('classification: ids, lengths and labels equal the tokenizer output; meta fields', async () => {
    const f = dataFile('train.jsonl', jsonl(ROWS));
    const cache = path.join(tmp, 'cache-cls');
    const { dir, meta, cached } = await prepareShards({ modelDir: BERT, dataFile: f, task: 'classification', maxLen: 12, cacheDir: cache });
    assert.equal(cached, false);
    assert.equal(path.dirname(dir), cache);
    const want = ROWS.map((r) => bert.encode(r.text, undefined, 12).ids);
    const s = readShards(dir);
    assert.deepEqual(
      Array.from(s.lengths),
      want.map((w) => w.length),
    );
    assert.deepEqual(Array.from(s.ids), want.flat());
    assert.deepEqual(Array.from(s.labels!), [1, 0, 1, 0]);
    assert.equal(s.types, undefined);
    assert.ok(!fs.existsSync(path.join(dir, 'types.u8')));
    const stat = fs.statSync(f);
    const tokens = want.flat().length;
    assert.deepEqual(
      { ...meta, createdAt: 'x' },
      {
        format: 'vtrans-tokens',
        version: 1,
        task: 'classification',
        examples: 4,
        tokens,
        maxLen: 12,
        padId: 0,
        labels: ['ham', 'spam'],
        pairs: false,
        meanLength: tokens / 4,
        source: f,
        sourceBytes: stat.size,
        sourceMtimeMs: stat.mtimeMs,
        tokenizerSha256: createHash('sha256')
          .update(fs.readFileSync(path.join(BERT, 'tokenizer.json')))
          .digest('hex'),
        createdAt: 'x',
        truncated: 1,
        labelCounts: [2, 2],
        warnings: [],
      },
    );
    assert.ok(!Number.isNaN(Date.parse(meta.createdAt)));
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')), meta);
    assert.equal(fs.statSync(path.join(dir, 'ids.i32')).size, 4 * tokens);
    assert.equal(s.ids[s.offsets[2] + 11], bert.tokenizer.token_to_id('[SEP]'), 'the truncated example still ends with [SEP]');
  });

  it('text pairs: types.u8 holds the token types', async () => {
    const f = dataFile('pairs.csv', 'text,text_pair,label\nhello world,good morning,spam\nthe cat,"the dog, the mat",ham\n');
    const { dir, meta } = await prepareShards({
      modelDir: BERT,
      dataFile: f,
      task: 'classification',
      maxLen: 32,
      cacheDir: path.join(tmp, 'cache-pairs'),
    });
    assert.equal(meta.pairs, true);
    const s = readShards(dir);
    const e = [bert.encode('hello world', 'good morning', 32), bert.encode('the cat', 'the dog, the mat', 32)];
    assert.deepEqual(
      Array.from(s.ids),
      e.flatMap((x) => x.ids),
    );
    assert.deepEqual(
      Array.from(s.types!),
      e.flatMap((x) => x.types),
    );
    assert.deepEqual(Array.from(s.types!.subarray(0, 7)), [0, 0, 0, 0, 1, 1, 1]);
  });

  it('language modelling, .txt: the text as it is, lines with their line breaks, cut into windows of maxLen', async () => {
    const lines = [
      'hello world, hello there.\n',
      '\n',
      'the cat sat\n',
      'on the mat.\n',
      '\n',
      '\n',
      'the dog sat on the log and the cat sat.',
    ];
    const f = dataFile('corpus.txt', lines.join(''));
    const { dir, meta } = await prepareShards({ modelDir: GPT2, dataFile: f, task: 'lm', maxLen: 8, cacheDir: path.join(tmp, 'cache-lm') });
    // each line tokenized on its own, nothing inserted between lines or paragraphs
    const stream = lines.flatMap((l) => gpt2.encodeText(l));
    assert.ok(!stream.includes(gpt2.eosId!));
    assert.ok(stream.includes(gpt2.encodeText('\n')[0]));
    const blocks = Math.floor(stream.length / 8);
    const s = readShards(dir);
    assert.equal(meta.task, 'lm');
    assert.equal(meta.lmInput, 'text');
    assert.equal(meta.eosId, undefined, 'no EOS between the lines of a .txt');
    assert.equal(meta.labels, null);
    assert.equal(meta.examples, blocks);
    assert.equal(meta.droppedTokens, stream.length - blocks * 8);
    assert.deepEqual(Array.from(s.lengths), new Array(blocks).fill(8));
    assert.deepEqual(Array.from(s.ids), stream.slice(0, blocks * 8));
    assert.equal(s.labels, undefined);
    assert.ok(!fs.existsSync(path.join(dir, 'labels.i32')));
  });

  it('language modelling, .jsonl: documents joined with EOS, cut into windows of maxLen', async () => {
    const docs = ['hello world, hello there.', 'the cat sat on the mat.', 'the dog sat\non the log and the cat sat.'];
    const f = dataFile('corpus.jsonl', docs.map((text) => JSON.stringify({ text })).join('\n') + '\n');
    const { dir, meta } = await prepareShards({ modelDir: GPT2, dataFile: f, task: 'lm', maxLen: 8, cacheDir: path.join(tmp, 'cache-lm') });
    const stream = docs.flatMap((d, i) => (i > 0 ? [gpt2.eosId!, ...gpt2.encodeText(d)] : gpt2.encodeText(d)));
    const blocks = Math.floor(stream.length / 8);
    assert.equal(meta.lmInput, 'documents');
    assert.equal(meta.eosId, gpt2.eosId);
    assert.equal(meta.examples, blocks);
    assert.deepEqual(Array.from(readShards(dir).ids), stream.slice(0, blocks * 8));
  });

  it('batchFromShards: right-padded with padId to the longest example, mask, labels, cap', async () => {
    const f = dataFile('b.jsonl', jsonl(ROWS));
    const { dir } = await prepareShards({
      modelDir: BERT,
      dataFile: f,
      task: 'classification',
      maxLen: 64,
      cacheDir: path.join(tmp, 'cache-batch'),
    });
    const s = readShards(dir);
    const b = batchFromShards(s, 1, 2);
    const l1 = s.lengths[1];
    const l2 = s.lengths[2];
    assert.equal(b.batch, 2);
    assert.equal(b.seq, Math.max(l1, l2));
    assert.ok(l1 < l2);
    assert.deepEqual(Array.from(b.ids.subarray(0, b.seq)), [
      ...s.ids.subarray(s.offsets[1], s.offsets[2]),
      ...new Array(b.seq - l1).fill(0),
    ]);
    assert.deepEqual(Array.from(b.mask.subarray(0, b.seq)), [...new Array(l1).fill(1), ...new Array(b.seq - l1).fill(0)]);
    assert.deepEqual(Array.from(b.mask.subarray(b.seq)), new Array(b.seq).fill(1));
    assert.deepEqual(Array.from(b.labels!), [0, 1]);
    assert.equal(batchFromShards(s, 3, 10).batch, 1, 'the last batch is short');
    assert.equal(batchFromShards(s, 0, 4, 5).seq, 5);
  });
});

describe('token shards: cache and atomic writes', () => {
  it('a cache hit returns the same folder without rewriting it; a changed data file gives a new folder', async () => {
    const f = dataFile('c.jsonl', jsonl(ROWS));
    const cache = path.join(tmp, 'cache-hit');
    const opts = { modelDir: BERT, dataFile: f, task: 'classification' as const, maxLen: 16, cacheDir: cache };
    const first = await prepareShards(opts);
    const mtimes = () => ['meta.json', 'ids.i32', 'lengths.i32', 'labels.i32'].map((x) => fs.statSync(path.join(first.dir, x)).mtimeMs);
    const before = mtimes();
    await new Promise((r) => setTimeout(r, 20));
    const second = await prepareShards(opts);
    assert.equal(second.cached, true);
    assert.equal(second.dir, first.dir);
    assert.deepEqual(second.meta, first.meta);
    assert.deepEqual(mtimes(), before);
    // A different maxLen is a different entry.
    const other = await prepareShards({ ...opts, maxLen: 17 });
    assert.notEqual(other.dir, first.dir);
    // The data file changes: new folder with the new example.
    fs.appendFileSync(f, JSON.stringify({ text: 'one more', label: 'ham' }) + '\n');
    const third = await prepareShards(opts);
    assert.equal(third.cached, false);
    assert.notEqual(third.dir, first.dir);
    assert.equal(third.meta.examples, 5);
    assert.equal(cacheDirs(cache).length, 3);
  });

  it('an incomplete folder is not taken from the cache; it is rebuilt', async () => {
    const f = dataFile('i.jsonl', jsonl(ROWS));
    const opts = { modelDir: BERT, dataFile: f, task: 'classification' as const, maxLen: 16, cacheDir: path.join(tmp, 'cache-incomplete') };
    const first = await prepareShards(opts);
    fs.truncateSync(path.join(first.dir, 'ids.i32'), 8);
    const again = await prepareShards(opts);
    assert.equal(again.cached, false);
    assert.equal(again.dir, first.dir);
    assert.deepEqual(
      Array.from(readShards(again.dir).ids),
      ROWS.flatMap((r) => bert.encode(r.text, undefined, 16).ids),
    );
  });

  it('the final folder appears only complete: while writing there is only a temporary folder', async () => {
    const rows = Array.from({ length: 2100 }, (_, i) => ({ text: `hello world ${i}`, label: i % 2 }));
    const f = dataFile('many.jsonl', jsonl(rows));
    const cache = path.join(tmp, 'cache-atomic');
    const during: string[][] = [];
    const seen: ShardProgress[] = [];
    const r = await prepareShards({
      modelDir: BERT,
      dataFile: f,
      task: 'classification',
      maxLen: 16,
      cacheDir: cache,
      onProgress: (p) => {
        seen.push(p);
        during.push(cacheDirs(cache));
      },
    });
    assert.deepEqual(
      seen.map((p) => p.examples),
      [1000, 2000, 2100],
    );
    assert.equal(seen.at(-1)!.bytes, fs.statSync(f).size);
    for (const entries of during.slice(0, -1)) {
      assert.equal(entries.length, 1);
      assert.match(entries[0], /^\.tmp-/);
    }
    assert.deepEqual(cacheDirs(cache), [path.basename(r.dir)]);
    assert.equal(r.meta.examples, 2100);
  });

  it('cancelling through the AbortSignal stops at the next progress report and leaves nothing behind', async () => {
    const f = dataFile('cancel.jsonl', jsonl(Array.from({ length: 1500 }, () => ({ text: 'hello', label: 0 }))));
    const cache = path.join(tmp, 'cache-cancel');
    const ac = new AbortController();
    const reports: number[] = [];
    await assert.rejects(
      prepareShards({
        modelDir: BERT,
        dataFile: f,
        task: 'classification',
        maxLen: 8,
        cacheDir: cache,
        signal: ac.signal,
        onProgress: (p) => (reports.push(p.examples), ac.abort()),
      }),
      (e: unknown) => e instanceof UserError && e.message === 'Tokenization cancelled.',
    );
    assert.deepEqual(reports, [1000]);
    assert.deepEqual(cacheDirs(cache), []);
  });

  it('a bad label after many examples leaves neither a shard folder nor a temporary one', async () => {
    const rows = Array.from({ length: 1500 }, (_, i) => ({ text: 'hello', label: i === 1200 ? 'maybe' : 'ham' }));
    const f = dataFile('bad.jsonl', jsonl(rows));
    const cache = path.join(tmp, 'cache-bad');
    await assert.rejects(
      prepareShards({ modelDir: BERT, dataFile: f, task: 'classification', maxLen: 16, cacheDir: cache }),
      (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.equal(
          e.message,
          `${f} line 1201: label "maybe" is not one of the model's labels (ham, spam) in ${displayPath(path.join(BERT, 'config.json'))} id2label. Fix the label in the data, or the label names of the model.`,
        );
        return true;
      },
    );
    assert.deepEqual(cacheDirs(cache), []);
  });

  it('maxLen beyond the model positions, and txt data for classification, are UserErrors', async () => {
    const f = dataFile('x.jsonl', jsonl(ROWS));
    await assert.rejects(
      prepareShards({ modelDir: BERT, dataFile: f, task: 'classification', maxLen: 65, cacheDir: path.join(tmp, 'c') }),
      (e: unknown) =>
        e instanceof UserError &&
        e.message ===
          `Maximum sequence length 65 is more than the model's 64 positions (${displayPath(path.join(BERT, 'config.json'))} max_position_embeddings). Use at most 64.`,
    );
    const t = dataFile('x.txt', 'hello\n');
    await assert.rejects(
      prepareShards({ modelDir: BERT, dataFile: t, task: 'classification', maxLen: 8, cacheDir: path.join(tmp, 'c') }),
      (e: unknown) => e instanceof UserError && e.message.startsWith(`${t}: a .txt file has no labels`),
    );
  });
});

describe('token shards: the Python reader sees the same arrays', () => {
  it('numpy reads ids.i32 / lengths.i32 / labels.i32 / types.u8 as written', async () => {
    const py = python();
    const f = dataFile('py.jsonl', jsonl(ROWS.map((r, i) => ({ ...r, text_pair: `the dog ${i}` }))));
    const { dir } = await prepareShards({
      modelDir: BERT,
      dataFile: f,
      task: 'classification',
      maxLen: 10,
      cacheDir: path.join(tmp, 'cache-py'),
    });
    const code = [
      'import json, os, sys',
      'import numpy as np',
      'd = sys.argv[1]',
      'meta = json.load(open(os.path.join(d, "meta.json")))',
      'rd = lambda n, t: np.fromfile(os.path.join(d, n), dtype=np.dtype(t).newbyteorder("<"))',
      'ids, lengths, labels, types = rd("ids.i32", np.int32), rd("lengths.i32", np.int32), rd("labels.i32", np.int32), rd("types.u8", np.uint8)',
      'off = np.concatenate([[0], np.cumsum(lengths)])',
      'assert off[-1] == len(ids) == meta["tokens"] and len(lengths) == meta["examples"]',
      'print(json.dumps({"ids": ids.tolist(), "lengths": lengths.tolist(), "labels": labels.tolist(), "types": types.tolist(),',
      '  "first": ids[off[0]:off[1]].tolist(), "last": ids[off[-2]:off[-1]].tolist()}))',
    ].join('\n');
    const r = spawnSync(py, ['-c', code, dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout) as Record<string, number[]>;
    const s = readShards(dir);
    assert.deepEqual(got.ids, Array.from(s.ids));
    assert.deepEqual(got.lengths, Array.from(s.lengths));
    assert.deepEqual(got.labels, Array.from(s.labels!));
    assert.deepEqual(got.types, Array.from(s.types!));
    assert.deepEqual(got.first, bert.encode(ROWS[0].text, 'the dog 0', 10).ids);
    assert.deepEqual(got.last, bert.encode(ROWS[3].text, 'the dog 3', 10).ids);
  });
});
