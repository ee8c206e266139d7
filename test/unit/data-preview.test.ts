/** Choosing data in the editor: which files are data by their content, the preview's columns, rows and label counts. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { describePreview, guessFields, maybeDataFile, previewData, sniffDataFile } from '../../src/core/dataPreview';
import { appendRunLog, ignoreInGit, modelName, readRunNote, runMetric, runTitle, writeRunNote, RUN_LOG } from '../../src/core/runs';
import type { RunReport } from '../../src/core/report';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vtrans-preview-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function write(rel: string, text: string): string {
  const f = path.join(tmp, rel);
  fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.writeFileSync(f, text);
  return f;
}

const prose = Array.from({ length: 30 }, (_, i) => `This is sentence number ${i} of a long and winding story about the sea.`).join('\n');

describe('data files by content', () => {
  it('offers tables and prose, not package lists, licences, tokenizer files or other text', async () => {
    const files = {
      csv: write('data/train.csv', 'sentence,label\n"great, really",positive\nbad,negative\n'),
      jsonl: write('data/dev.jsonl', '{"text": "hi", "label": "ham"}\n'),
      tsv: write('data/test.tsv', 'text\tlabel\nhello\tham\n'),
      story: write('data/story.txt', prose),
      requirements: write('requirements.txt', 'torch>=2.1\nnumpy\nsafetensors==0.4.0\n-r base.txt\n'),
      requirementsDev: write('requirements-dev.txt', 'pytest\n'),
      license: write('LICENSE.txt', `Permission is hereby granted, free of charge, to any person obtaining a copy ${prose}`),
      vocab: write('model/vocab.txt', '[PAD]\n[UNK]\nhello\n'),
      notes: write('notes.txt', 'todo: buy milk\n'),
      badJson: write('data/broken.jsonl', 'not json\n'),
      headerOnly: write('data/empty.csv', 'text,label\n'),
    };
    write('model/config.json', '{"model_type": "bert"}');
    const sniff = async (f: string) => (await sniffDataFile(f)).ok;
    assert.equal(await sniff(files.csv), true);
    assert.equal(await sniff(files.jsonl), true);
    assert.equal(await sniff(files.tsv), true);
    assert.deepEqual((await sniffDataFile(files.story)).tasks, ['lm'], '.txt only for language modelling');
    assert.deepEqual((await sniffDataFile(files.csv)).tasks, ['classification', 'lm']);
    for (const f of [files.requirements, files.requirementsDev, files.license, files.vocab, files.notes, files.badJson, files.headerOnly])
      assert.equal(await sniff(f), false, path.relative(tmp, f));
    assert.equal(maybeDataFile(files.requirements), false);
    assert.equal(maybeDataFile(path.join(tmp, 'data', 'x.json')), false, '.json is not a data format');
  });
});

describe('preview', () => {
  it('guesses sentence,label, counts the rows and the labels', async () => {
    const rows = ['sentence,label'];
    for (let i = 0; i < 30; i++) rows.push(`"review ${i}, with a comma",${i % 3 === 0 ? 'negative' : 'positive'}`);
    const f = write('reviews.csv', rows.join('\n') + '\n');
    const p = await previewData(f);
    assert.deepEqual(p.columns, ['sentence', 'label']);
    assert.deepEqual(p.fields, { text: 'sentence', label: 'label', textPair: undefined });
    assert.equal(p.rowCount, 30);
    assert.equal(p.complete, true);
    assert.deepEqual(p.labels, [
      { label: 'positive', count: 20 },
      { label: 'negative', count: 10 },
    ]);
    assert.equal(p.rows.length, 5);
    assert.equal(p.rows[0].sentence, 'review 0, with a comma');
    assert.equal(describePreview(p), '30 rows · text: sentence · label: label (positive 20, negative 10)');
  });

  it('follows a column mapping it is given, and names pair columns', async () => {
    const f = write(
      'nli.jsonl',
      [
        '{"premise": "a man sleeps", "hypothesis": "a person rests", "gold": "entail", "id": 1}',
        '{"premise": "x", "hypothesis": "y", "gold": "contra", "id": 2}',
      ].join('\n') + '\n',
    );
    const guessed = await previewData(f);
    assert.equal(guessed.fields.text, 'premise');
    assert.equal(guessed.fields.textPair, 'hypothesis');
    const mapped = await previewData(f, { fields: { label: 'gold' } });
    assert.deepEqual(
      mapped.labels.map((l) => l.label),
      ['contra', 'entail'],
    );
  });

  it('guesses by the values when the names say nothing', () => {
    const rows = Array.from({ length: 10 }, (_, i) => ({ a: `a long piece of text number ${i} to classify`, b: i % 2 ? 'x' : 'y' }));
    assert.deepEqual(guessFields(['b', 'a'], rows), { text: 'a', label: 'b', textPair: undefined });
  });

  it('estimates the row count beyond the bytes it reads', async () => {
    const f = write('big.jsonl', Array.from({ length: 2000 }, (_, i) => JSON.stringify({ text: `t${i}`, label: i % 2 })).join('\n') + '\n');
    const p = await previewData(f, { maxBytes: 8 * 1024 });
    assert.equal(p.complete, false);
    assert.ok(p.rowCount > 1500 && p.rowCount < 2500, String(p.rowCount));
  });

  it('reads .txt documents for language modelling', async () => {
    const f = write('corpus.txt', 'first document\nline two\n\nsecond document\n');
    const p = await previewData(f, { task: 'lm' });
    assert.equal(p.rowCount, 2);
    assert.deepEqual(p.tasks, ['lm']);
    assert.equal(p.rows[0].text, 'first document\nline two');
  });
});

describe('run directory files of the client', () => {
  it('keeps runs out of git, logs with a time stamp, stores notes, names runs by model, method and budget', () => {
    const run = path.join(tmp, 'ws', '.vtrans', 'runs', '20250101-000000-fast-abcd');
    ignoreInGit(run);
    assert.match(fs.readFileSync(path.join(run, '.gitignore'), 'utf8'), /^\*$/m);
    appendRunLog(run, ['one', 'two'], new Date('2025-01-02T03:04:05Z'));
    assert.equal(fs.readFileSync(path.join(run, RUN_LOG), 'utf8'), '2025-01-02 03:04:05 one\n2025-01-02 03:04:05 two\n');
    assert.equal(readRunNote(run), '');
    writeRunNote(run, '  lr 1e-4, longer warm-up \n');
    assert.equal(readRunNote(run), 'lr 1e-4, longer warm-up');
    writeRunNote(run, '');
    assert.equal(fs.existsSync(path.join(run, 'note.txt')), false);
    assert.equal(modelName('/p/spam-classifier'), 'spam-classifier');
    assert.equal(modelName('/p/vtrans-sample/model'), 'vtrans-sample');
    const report = {
      model: { dir: '/p/spam-classifier' },
      student: { metric: { name: 'accuracy', value: 0.97244 } },
    } as unknown as RunReport;
    assert.equal(
      runTitle({ info: { modelDir: '/p/spam-classifier', method: 'faster', budget: { kind: 'params', keep: 0.5 } }, report }),
      'spam-classifier · Faster-VTrans 50% params',
    );
    assert.equal(
      runTitle({ info: { modelDir: '/p/m', method: 'rethreshold', budget: { kind: 'flops', keep: 0.25 } } }),
      'm · cut 25% FLOPs',
    );
    assert.equal(runMetric(report), '97.24%');
  });
});
