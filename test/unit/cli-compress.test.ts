/**
 * `vtrans compress` / `export` from the command line against the real backend: the --json contract, and bad input
 * as one line naming the file or flag with exit code 2.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backendEnv } from '../../src/core/python';
import { python } from './helpers/python';

const CLI = path.resolve(__dirname, '../../dist/cli.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vtrans-cli-'));
const model = path.join(tmp, 'model');
const train = path.join(tmp, 'train.jsonl');
const dev = path.join(tmp, 'dev.jsonl');
const WORDS = 'the spam free money offer click now meeting report project schedule team lunch'.split(' ');

function examples(n: number, seed: number): string {
  let x = seed;
  const rnd = () => (x = (x * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const label = i % 3;
    const words = Array.from({ length: 6 + Math.floor(rnd() * 8) }, () => WORDS[Math.floor(rnd() * WORDS.length)]);
    words.splice(Math.floor(rnd() * words.length), 0, ['free', 'meeting', 'lunch'][label]);
    lines.push(JSON.stringify({ text: words.join(' '), label: `label_${label}` }));
  }
  return lines.join('\n') + '\n';
}

function cli(args: string[], cwd = tmp) {
  return spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env: { ...process.env, VTRANS_PYTHON: python() } });
}

function oneLineError(r: ReturnType<typeof cli>, pattern: RegExp): void {
  assert.equal(r.status, 2, `exit code 2 expected, got ${r.status}: ${r.stderr}`);
  const lines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('vtrans:') && !/^vtrans: (tokenize|train|measure|report) /.test(l));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at |Traceback/);
}

before(() => {
  execFileSync(python(), ['-m', 'vtrans.testing', 'tiny', 'bert', 'classification', model, '--overrides', '{"vocab_size": 140}'], {
    env: backendEnv(),
    stdio: 'ignore',
  });
  const tok = path.resolve(__dirname, '../fixtures/tokenizers/bert');
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(tok, f), path.join(model, f));
  fs.writeFileSync(train, examples(120, 1));
  fs.writeFileSync(dev, examples(30, 2));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('vtrans compress', () => {
  it('compresses, exports and prints the --json contract', () => {
    const r = cli([
      'compress',
      model,
      '--data',
      train,
      '--eval-data',
      dev,
      '--keep',
      '0.5',
      '--method',
      'faster',
      '--steps',
      '20',
      '--sweep',
      '0.8,0.6',
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    for (const k of ['status', 'runDir', 'method', 'budget', 'keep', 'teacher', 'student', 'units', 'wallSeconds', 'modelDir', 'onnxPath'])
      assert.ok(k in out, k);
    assert.equal(out.status, 'done');
    assert.equal(out.method, 'faster');
    for (const who of ['teacher', 'student']) {
      for (const k of ['params', 'encoderParams', 'flopsPerToken']) assert.equal(typeof out[who][k], 'number');
      assert.equal(out[who].metric.name, 'accuracy');
    }
    assert.ok(out.student.params <= 0.5 * out.teacher.params && out.student.params >= 0.49 * out.teacher.params);
    for (const k of ['hidden', 'heads', 'ffn', 'attentionLayers', 'ffnLayers']) assert.ok(out.units[k].kept <= out.units[k].total);
    assert.ok(out.runDir.startsWith(path.join(tmp, '.vtrans', 'runs')));
    for (const f of [
      'run.json',
      'metrics.jsonl',
      'masks.safetensors',
      'model/config.json',
      'model/model.safetensors',
      'model/tokenizer.json',
      'model.onnx',
      'report.json',
      'report.html',
    ]) {
      assert.ok(fs.existsSync(path.join(out.runDir, f)), f);
    }
    const report = JSON.parse(fs.readFileSync(path.join(out.runDir, 'report.json'), 'utf8'));
    // onnxruntime-node recomputes the metric from the same shards: it agrees with the backend's within 0.5 points.
    assert.ok(Math.abs(report.student.onnx.metric.value - report.student.metric.value) <= 0.005);
    assert.ok(report.teacher.onnx.latencyMs['1'] > 0 && report.student.onnx.latencyMs['32'] > 0);
    assert.ok(report.tradeoff.filter((p: { source: string }) => p.source === 'sweep').length >= 3);
    // The source model directory is never written to.
    assert.deepEqual(fs.readdirSync(model).sort(), ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    // Nothing of a run is tracked by git; the run keeps its own log (the client's steps and the backend's lines).
    assert.equal(
      fs
        .readFileSync(path.join(out.runDir, '.gitignore'), 'utf8')
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .join(),
      '*',
    );
    assert.ok(fs.existsSync(path.join(tmp, '.vtrans', 'cache', '.gitignore')), 'the token cache is ignored too');
    const runLog = fs.readFileSync(path.join(out.runDir, 'log.txt'), 'utf8');
    assert.match(runLog, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d compress /m);
    assert.ok(runLog.split('\n').length > 5, `log.txt has the backend's lines:\n${runLog}`);
    assert.match(runLog, /wrote report\.json/);

    const e = cli(['export', out.runDir, '--keep', '0.3', '--json']);
    assert.equal(e.status, 0, e.stderr);
    const ex = JSON.parse(e.stdout.trim().split('\n').pop()!);
    assert.ok(ex.achieved <= 0.3 && ex.achieved > 0.28, String(ex.achieved));
    assert.ok(fs.existsSync(path.join(ex.runDir, 'model.onnx')) && fs.existsSync(path.join(ex.runDir, 'report.html')));

    // Both output shapes load with transformers in a fresh Python that never imports VTrans, as the report says.
    const u = cli(['export', out.runDir, '--keep', '0.4', '--shape', 'uniform', '--json']);
    assert.equal(u.status, 0, u.stderr);
    const uniform = JSON.parse(u.stdout.trim().split('\n').pop()!);
    assert.equal(uniform.shape, 'uniform');
    assert.ok(uniform.achieved <= 0.4 && uniform.achieved > 0.38, String(uniform.achieved));
    assert.equal(out.shape, 'heterogeneous');
    assert.ok(fs.existsSync(path.join(out.runDir, 'model', 'modeling_vtrans_bert.py')));
    for (const run of [out.runDir, uniform.runDir]) {
      const load = JSON.parse(fs.readFileSync(path.join(run, 'report.json'), 'utf8')).load;
      assert.equal(load.modelDir, path.join(run, 'model'));
      assert.match(fs.readFileSync(path.join(run, 'report.md'), 'utf8'), /## How to load[\s\S]*from_pretrained/);
      const code = `${load.python}\nimport sys\nassert not [m for m in sys.modules if m.startswith("vtrans")]\n`;
      const env: NodeJS.ProcessEnv = { ...process.env, HF_HUB_OFFLINE: '1' };
      delete env.PYTHONPATH;
      const r = spawnSync(python(), ['-c', code], { cwd: os.tmpdir(), encoding: 'utf8', env });
      assert.equal(r.status, 0, r.stderr.slice(-3000));
      assert.match(r.stdout, /'label': 'label_\d'/);
    }
  });

  it('--keep outside (0, 1]', () => {
    oneLineError(cli(['compress', model, '--data', train, '--keep', '1.5']), /--keep must be a fraction in \(0, 1\], got "1\.5"/);
    oneLineError(cli(['compress', model, '--data', train, '--keep', '0']), /--keep must be a fraction in \(0, 1\]/);
  });

  it('--gpus and --parallel outside their ranges', () => {
    oneLineError(cli(['compress', model, '--data', train, '--keep', '0.5', '--gpus', '0']), /--gpus must be an integer ≥ 1 ≤ 64, got "0"/);
    oneLineError(
      cli(['compress', model, '--data', train, '--keep', '0.5', '--gpus', '2', '--parallel', 'zero3']),
      /--parallel must be one of auto, ddp, fsdp, got "zero3"/,
    );
  });

  it('an empty data file', () => {
    const empty = path.join(tmp, 'empty.jsonl');
    fs.writeFileSync(empty, '');
    oneLineError(cli(['compress', model, '--data', empty, '--keep', '0.5']), /empty\.jsonl.*(empty|no examples)/i);
  });

  it('labels that the model head does not have', () => {
    const bad = path.join(tmp, 'bad-labels.jsonl');
    fs.writeFileSync(bad, '{"text": "free money", "label": "label_0"}\n{"text": "hello", "label": "maybe"}\n');
    oneLineError(cli(['compress', model, '--data', bad, '--keep', '0.5']), /bad-labels\.jsonl.*line 2.*"maybe".*label_0, label_1, label_2/);
  });

  it('labels missing', () => {
    const bad = path.join(tmp, 'no-labels.jsonl');
    fs.writeFileSync(bad, '{"text": "free money"}\n');
    oneLineError(cli(['compress', model, '--data', bad, '--keep', '0.5']), /no-labels\.jsonl.*line 1.*label/);
  });

  it('text pair columns absent', () => {
    oneLineError(cli(['compress', model, '--data', train, '--keep', '0.5', '--pair-field', 'question']), /train\.jsonl.*line 1.*question/);
  });

  it('a tokenizer missing from the model directory', () => {
    const noTok = path.join(tmp, 'model-no-tokenizer');
    fs.mkdirSync(noTok);
    for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(path.join(model, f), path.join(noTok, f));
    oneLineError(cli(['compress', noTok, '--data', train, '--keep', '0.5']), /model-no-tokenizer.*tokenizer\.json/);
  });

  it('a diverging loss stops with the step and a hint', () => {
    const r = cli([
      'compress',
      model,
      '--data',
      train,
      '--eval-data',
      dev,
      '--keep',
      '0.5',
      '--method',
      'vtrans',
      '--steps',
      '20',
      '--lr',
      '1e12',
      '--out',
      path.join(tmp, 'nan-run'),
    ]);
    oneLineError(r, /training diverged: the loss is (nan|inf) at step \d+ of phase 1 \(prune\)\. Lower the learning rate/);
    assert.equal(JSON.parse(fs.readFileSync(path.join(tmp, 'nan-run', 'run.json'), 'utf8')).status, 'failed');
  });
});
