import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import {
  iterateExamples,
  labelResolver,
  parseDelimited,
  readExamples,
  type Example,
  type LabelOptions,
  type ReadOptions,
} from '../../src/core/data';
import { UserError } from '../../src/core/errors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vtrans-data-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const FIXTURES = path.resolve(__dirname, '../fixtures/data');

let n = 0;
function file(name: string, content: string): string {
  const dir = path.join(tmp, String(n++));
  fs.mkdirSync(dir);
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}

async function rejects(promise: Promise<unknown>, message: string): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
    assert.equal(e.message, message);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

const texts = async (f: string, opts?: ReadOptions) => (await readExamples(f, opts)).examples;

describe('data readers: happy paths', () => {
  it('jsonl: text + label, blank lines skipped, CRLF and BOM handled, line numbers kept', async () => {
    const f = file(
      'train.jsonl',
      '\ufeff{"text": "free money", "label": "spam"}\r\n\r\n{"text": "see you at 3", "label": "ham", "id": 7}\r\n',
    );
    const d = await readExamples(f);
    assert.equal(d.format, 'jsonl');
    assert.equal(d.pairs, false);
    assert.deepEqual(d.examples, [
      { text: 'free money', label: 'spam', line: 1 },
      { text: 'see you at 3', label: 'ham', line: 3 },
    ]);
  });

  it('jsonl: text pairs are detected from the first example; numeric labels stay numbers', async () => {
    const f = file(
      'pairs.jsonl',
      '{"text": "a cat", "text_pair": "an animal", "label": 1}\n{"text": "a car", "text_pair": "an animal", "label": 0}',
    );
    const d = await readExamples(f);
    assert.equal(d.pairs, true);
    assert.deepEqual(d.examples[1], { text: 'a car', textPair: 'an animal', label: 0, line: 2 });
  });

  it('jsonl: custom field names; lm ignores labels and pairs', async () => {
    const f = file('custom.jsonl', '{"sentence1": "x", "sentence2": "y", "gold": "yes"}\n');
    const d = await readExamples(f, { fields: { text: 'sentence1', textPair: 'sentence2', label: 'gold' } });
    assert.deepEqual(d.examples, [{ text: 'x', textPair: 'y', label: 'yes', line: 1 }]);
    const lm = await readExamples(f, { task: 'lm', fields: { text: 'sentence2' } });
    assert.equal(lm.pairs, false);
    assert.deepEqual(lm.examples, [{ text: 'y', line: 1 }]);
  });

  it('csv: RFC 4180 quoting — commas, doubled quotes, newlines inside quotes, CRLF, empty fields', async () => {
    const f = path.join(FIXTURES, 'quoting.csv');
    const d = await readExamples(f, { task: 'classification' });
    assert.equal(d.format, 'csv');
    assert.deepEqual(d.examples, [
      { text: 'plain text', label: 'ham', line: 2 },
      { text: 'hello, world', label: 'spam', line: 3 },
      { text: 'she said "hi"', label: 'ham', line: 4 },
      { text: 'line one\nline two\r\nline three', label: 'spam', line: 5 },
      { text: '', label: 'ham', line: 8 },
      { text: 'after a quoted newline', label: 'ham', line: 9 },
      { text: 'no newline at the end', label: 'spam', line: 10 },
    ]);
  });

  it('csv: columns in any order, extra columns ignored, text_pair column makes pairs', async () => {
    const f = file('p.csv', 'id,label,text_pair,text\n1,entailment,"b, c",a\n');
    const d = await readExamples(f);
    assert.equal(d.pairs, true);
    assert.deepEqual(d.examples, [{ text: 'a', textPair: 'b, c', label: 'entailment', line: 2 }]);
  });

  it('tsv: tab-separated with quoting, a literal quote inside an unquoted field', async () => {
    const f = file('train.tsv', 'sentence\tgold\nit\'s 5" tall\t1\n"tab\tinside"\t0\n');
    const d = await readExamples(f, { fields: { text: 'sentence', label: 'gold' } });
    assert.equal(d.format, 'tsv');
    assert.deepEqual(d.examples, [
      { text: 'it\'s 5" tall', label: '1', line: 2 },
      { text: 'tab\tinside', label: '0', line: 3 },
    ]);
  });

  it('csv parser: the same records whatever the chunk boundaries are', async () => {
    const text = 'a,b\r\n"x,""y""\r\nz",2\n\n"",""\nlast,"q"';
    const parse = async (chunks: string[]) => {
      async function* gen() {
        for (const c of chunks) yield { text: c, bytes: c.length };
      }
      const out: unknown[] = [];
      for await (const r of parseDelimited(gen(), ',', 'x.csv')) out.push([r.line, r.fields]);
      return out;
    };
    const whole = await parse([text]);
    assert.deepEqual(whole, [
      [1, ['a', 'b']],
      [2, ['x,"y"\r\nz', '2']],
      [4, ['']],
      [5, ['', '']],
      [6, ['last', 'q']],
    ]);
    for (let i = 1; i < text.length; i++) assert.deepEqual(await parse([text.slice(0, i), text.slice(i)]), whole, `split at ${i}`);
    assert.deepEqual(await parse([...text]), whole, 'one character per chunk');
  });

  it('txt: the text as it is, one example per line with its line break, blank lines kept (language modelling)', async () => {
    const content = '\n\nFirst doc line one.\r\nline two.\n\n\n  \nSecond doc.\n\nThird.';
    const f = file('corpus.txt', '\ufeff' + content);
    const got = await texts(f, { task: 'lm' });
    assert.deepEqual(got, [
      { text: '\n', line: 1 },
      { text: '\n', line: 2 },
      { text: 'First doc line one.\n', line: 3 },
      { text: 'line two.\n', line: 4 },
      { text: '\n', line: 5 },
      { text: '\n', line: 6 },
      { text: '  \n', line: 7 },
      { text: 'Second doc.\n', line: 8 },
      { text: '\n', line: 9 },
      { text: 'Third.', line: 10 },
    ]);
    assert.equal(got.map((e) => e.text).join(''), content.replace(/\r\n/g, '\n'), 'the lines give the text back');
    const ending = file('ending.txt', 'one\ntwo\n\n');
    assert.deepEqual(
      (await texts(ending, { task: 'lm' })).map((e) => e.text),
      ['one\n', 'two\n', '\n'],
    );
  });

  it('streams: progress every 1000 examples while the file is still being read', async () => {
    const line = JSON.stringify({ text: 'x'.repeat(1000), label: 'ham' }) + '\n';
    const f = file('big.jsonl', line.repeat(2500));
    const seen: { examples: number; bytes: number; totalBytes: number }[] = [];
    let count = 0;
    for await (const _ of iterateExamples(f, {}, { onProgress: (p) => seen.push(p) })) count++;
    assert.equal(count, 2500);
    assert.deepEqual(
      seen.map((p) => p.examples),
      [1000, 2000],
    );
    assert.ok(seen[0].bytes < seen[0].totalBytes, 'the first report comes before the whole file is read');
    assert.equal(seen[0].totalBytes, line.length * 2500);
  });
});

describe('data readers: errors name the file and line', () => {
  it('file missing, folder, empty, only blank lines, header only', async () => {
    const missing = path.join(tmp, 'nope.jsonl');
    await rejects(readExamples(missing), `${missing}: file not found. Check the path of the data file.`);
    const dir = path.join(tmp, 'folder.jsonl');
    fs.mkdirSync(dir);
    await rejects(readExamples(dir), `${dir}: is a folder, not a data file. Pick a .jsonl, .csv, .tsv or .txt file.`);
    const empty = file('empty.jsonl', '');
    await rejects(readExamples(empty), `${empty}: the file is empty. Add examples, one per line.`);
    const blank = file('blank.jsonl', '\n  \n\n');
    await rejects(readExamples(blank), `${blank}: no examples found (only blank lines). Add examples to the file.`);
    const blankTxt = file('blank.txt', '\n  \n\n');
    await rejects(readExamples(blankTxt, { task: 'lm' }), `${blankTxt}: no examples found (only blank lines). Add examples to the file.`);
    const header = file('header.csv', 'text,label\n');
    await rejects(readExamples(header), `${header}: no examples found (no rows after the header). Add examples to the file.`);
  });

  it('unknown extension lists the supported ones', async () => {
    const f = file('data.json', '[]');
    await rejects(
      readExamples(f),
      `${f}: unsupported data file type ".json". Use .jsonl (one JSON object per line, {"text": ..., "label": ...}), .csv or .tsv with a header row, or .txt (language modelling).`,
    );
  });

  it('jsonl: invalid JSON on line N, not an object', async () => {
    const f = file('bad.jsonl', '{"text": "ok", "label": "ham"}\n\n{"text": "oops", "label": }\n');
    await assert.rejects(readExamples(f), (e: Error) => {
      assert.ok(e instanceof UserError);
      assert.match(
        e.message,
        new RegExp(
          `^${escape(f)} line 3: invalid JSON \\(.+\\)\\. Each line must be one JSON object such as \\{"text": "\\.\\.\\.", "label": "\\.\\.\\."\\}\\.$`,
        ),
      );
      return true;
    });
    const arr = file('arr.jsonl', '["text", "label"]\n');
    await rejects(
      readExamples(arr),
      `${arr} line 1: expected a JSON object, got an array. Each line must be one JSON object such as {"text": "...", "label": "..."}.`,
    );
  });

  it('jsonl: missing text field says which fields exist; non-string text', async () => {
    const f = file('t.jsonl', '{"text": "ok", "label": 0}\n{"sentence": "hi", "label": 1}\n');
    await rejects(
      readExamples(f),
      `${f} line 2: no "text" field (fields: "sentence", "label"). Name the text field "text" or set the text field name to one of these.`,
    );
    const g = file('num.jsonl', '{"text": 42, "label": 0}\n');
    await rejects(readExamples(g), `${g} line 1: "text" must be a string, got number 42. Put the text in quotes.`);
  });

  it('missing label for classification (not for lm)', async () => {
    const f = file('nolabel.jsonl', '{"text": "a", "label": "x"}\n{"text": "b"}\n');
    await rejects(
      readExamples(f, { task: 'classification' }),
      `${f} line 2: no "label" field (fields: "text"). Classification data needs a label on every example: add "label", set the label field name, or set the task to lm.`,
    );
    assert.equal((await texts(f, { task: 'lm' })).length, 2);
    const c = file('nolabel.csv', 'text,label\na,x\nb,\n');
    await rejects(readExamples(c), `${c} line 3: the "label" column is empty. Classification data needs a label on every example.`);
  });

  it('text_pair requested but absent; absent on a later line after the first example had it', async () => {
    const f = file('single.jsonl', '{"text": "a", "label": 0}\n');
    await rejects(
      readExamples(f, { fields: { textPair: 'text_pair' } }),
      `${f} line 1: no "text_pair" field for the second text (fields: "text", "label"). Text-pair data needs the second text on every example; leave the pair field unset for single texts.`,
    );
    const g = file('mixed.jsonl', '{"text": "a", "text_pair": "b", "label": 0}\n{"text": "c", "label": 1}\n');
    await rejects(
      readExamples(g),
      `${g} line 2: no "text_pair" field for the second text (fields: "text", "label"). Text-pair data needs the second text on every example; leave the pair field unset for single texts.`,
    );
    const c = file('single.csv', 'text,label\na,0\n');
    await rejects(
      readExamples(c, { pairs: true }),
      `${c} line 1: the header has no "text_pair" column for the second text (columns: "text", "label"). Add the column, or leave the pair column unset for single texts.`,
    );
  });

  it('csv: header without the text column, without the label column, wrong field count, unclosed quote', async () => {
    const f = file('h.csv', 'sentence,label\nhi,0\n');
    await rejects(
      readExamples(f),
      `${f} line 1: the header has no "text" column (columns: "sentence", "label"). The first row must name the columns; name the text column "text" or set the text column name.`,
    );
    const g = file('l.csv', 'text,gold\nhi,0\n');
    await rejects(
      readExamples(g),
      `${g} line 1: the header has no "label" column (columns: "text", "gold"). Classification data needs a label column: name it "label", set the label column name, or set the task to lm.`,
    );
    assert.equal((await texts(g, { task: 'lm' }))[0].text, 'hi');
    const h = file('count.csv', 'text,label\nhello, world,spam\n');
    await rejects(
      readExamples(h),
      `${h} line 2: 3 fields, but the header has 2. Quote fields that contain commas or line breaks ("a, b"), and double quotes inside them ("").`,
    );
    const q = file('q.csv', 'text,label\nok,0\n"never closed,1\nmore,0\n');
    await rejects(
      readExamples(q),
      `${q} line 3: a quoted field starting here is never closed. Close the quote, and write a quote inside a quoted field as two quotes ("").`,
    );
  });

  it('txt for classification is refused', async () => {
    const f = file('c.txt', 'hello\n');
    await rejects(
      readExamples(f, { task: 'classification' }),
      `${f}: a .txt file has no labels, so it can only be used for language modelling. For classification use .jsonl, .csv or .tsv with a label on every example, or set the task to lm.`,
    );
  });
});

/** Every example's label index, through the resolver the shards use. */
function resolveLabels(
  data: { file: string; examples: readonly Example[] },
  cfg: Record<string, unknown>,
  opts: Omit<LabelOptions, 'file'> = {},
) {
  const r = labelResolver(cfg, { ...opts, file: data.file });
  return { indices: Int32Array.from(data.examples, (ex) => r.resolve(ex.label, ex.line)), names: r.names };
}

describe('labels', () => {
  const cfg = { architectures: ['BertForSequenceClassification'], id2label: { 0: 'ham', 1: 'spam' }, num_labels: 2 };
  const data = (labels: (string | number)[]) => ({
    file: '/data/train.jsonl',
    examples: labels.map((label, i) => ({ text: 't', label, line: i + 1 })),
  });

  it('string labels match id2label names, case-sensitive first then case-insensitive', () => {
    assert.deepEqual(Array.from(resolveLabels(data(['spam', 'ham', 'SPAM', 'Ham']), cfg).indices), [1, 0, 1, 0]);
    const mixed = { architectures: ['XForSequenceClassification'], id2label: { 0: 'Pos', 1: 'pos' } };
    assert.deepEqual(Array.from(resolveLabels(data(['pos', 'Pos', 'POS']), mixed).indices), [1, 0, 0]);
  });

  it('integer labels and numeric strings are class indices', () => {
    const r = resolveLabels(data([0, 1, '1', ' 0 ']), cfg);
    assert.deepEqual(Array.from(r.indices), [0, 1, 1, 0]);
    assert.deepEqual(r.names, ['ham', 'spam']);
  });

  it('mismatch names the file, line, label and the model labels', () => {
    throwsUser(
      () => resolveLabels(data(['ham', 'maybe']), cfg, { configFile: '/models/m/config.json' }),
      '/data/train.jsonl line 2: label "maybe" is not one of the model\'s labels (ham, spam) in /models/m/config.json id2label. Fix the label in the data, or the label names of the model.',
    );
    throwsUser(
      () => resolveLabels(data([2]), cfg),
      '/data/train.jsonl line 1: label 2 is out of range: the model has 2 labels (ham, spam) in config.json id2label. Numeric labels are class indices from 0 to 1.',
    );
    assert.throws(() => resolveLabels(data(['-1']), cfg), /line 1: label -1 is out of range/);
    throwsUser(
      () => resolveLabels(data([0.5]), cfg),
      '/data/train.jsonl line 1: label 0.5 is not a class: labels are class names (ham, spam) or integer class indices. Fix the label in the data.',
    );
  });

  it('a model without a classification head is refused unless label names are given', () => {
    const lm = { architectures: ['BertModel'], id2label: { 0: 'LABEL_0', 1: 'LABEL_1' } };
    throwsUser(
      () => resolveLabels(data(['ham']), lm, { configFile: '/m/config.json' }),
      '/m/config.json: the model has no sequence-classification head (architectures: BertModel), so it cannot be trained on the labels in /data/train.jsonl. Use a checkpoint saved from a …ForSequenceClassification model, give the label names, or set the task to lm.',
    );
    assert.deepEqual(Array.from(resolveLabels(data(['b', 'a']), lm, { labelNames: ['a', 'b'] }).indices), [1, 0]);
  });

  it('no id2label: LABEL_i names from num_labels', () => {
    const r = resolveLabels(data([2, 'label_1']), { architectures: ['GPT2ForSequenceClassification'], num_labels: 3 });
    assert.deepEqual(r.names, ['LABEL_0', 'LABEL_1', 'LABEL_2']);
    assert.deepEqual(Array.from(r.indices), [2, 1]);
  });
});

function throwsUser(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
    assert.equal(e.message, message);
    return true;
  });
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
