/**
 * The CLI as a careless or hostile user drives it: every mistake one line naming the file or flag, nothing of
 * the user's written to, memory bounded before the work, and a true status on every exit (a killed backend,
 * a second Ctrl-C). The source model folder is hashed before and after every command here.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backendEnv } from '../../src/core/python';
import { python } from './helpers/python';

const CLI = path.resolve(__dirname, '../../dist/cli.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vtrans-rel-'));
const model = path.join(tmp, 'model');
const train = path.join(tmp, 'train.jsonl');
const WORDS = 'the spam free money offer click now meeting report project schedule team lunch'.split(' ');

function examples(n: number, label = (i: number) => `label_${i % 3}`): string {
  return (
    Array.from({ length: n }, (_, i) =>
      JSON.stringify({ text: `${WORDS[i % WORDS.length]} ${WORDS[(i * 7) % WORDS.length]} now`, label: label(i) }),
    ).join('\n') + '\n'
  );
}

function treeHash(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      h.update(path.relative(dir, p));
      if (fs.statSync(p).isDirectory()) walk(p);
      else h.update(fs.readFileSync(p));
    }
  };
  walk(dir);
  return h.digest('hex');
}

let sourceHash = '';
function cli(args: string[], cwd = tmp) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env: { ...process.env, VTRANS_PYTHON: python() } });
  assert.equal(treeHash(model), sourceHash, `vtrans ${args.join(' ')} wrote into the source model`);
  return r;
}

function oneLine(r: ReturnType<typeof cli>, pattern: RegExp, code = 2): void {
  assert.equal(r.status, code, `exit code ${code} expected, got ${r.status}: ${r.stderr}`);
  const lines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('vtrans:') && !/^vtrans: (tokenize|train|measure|report) |^vtrans: warning: /.test(l));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at |Traceback/, 'no stack trace reaches the user');
}

before(() => {
  execFileSync(python(), ['-m', 'vtrans.testing', 'tiny', 'bert', 'classification', model, '--overrides', '{"vocab_size": 140}'], {
    env: backendEnv(),
    stdio: 'ignore',
  });
  const tok = path.resolve(__dirname, '../fixtures/tokenizers/bert');
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(tok, f), path.join(model, f));
  fs.writeFileSync(train, examples(90));
  sourceHash = treeHash(model);
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('flags said plainly', () => {
  it('a negative, hexadecimal or empty --keep is a range error, not "ambiguous" or 1', () => {
    for (const v of ['-1', '0x1', '', ' 0.3', '1e0x'])
      oneLine(cli(['compress', model, '--data', train, '--keep', v]), /--keep must be a fraction in \(0, 1\], got "/);
  });

  it('an unknown flag names itself and the nearest one', () => {
    oneLine(
      cli(['compress', model, '--data', train, '--kep', '0.3']),
      /^vtrans: compress: unknown option --kep \(did you mean --keep\?\)\. Run 'vtrans compress --help' for the options\.$/,
    );
  });

  it('--data on a folder says it is a folder', () => {
    oneLine(cli(['compress', model, '--data', tmp, '--keep', '0.3']), /is a folder, not a data file \(--data\)/);
  });
});

describe('the source and the user’s folders are never written to', () => {
  it('refuses --out at, inside or around the model, and into a folder of the user’s', () => {
    const mine = path.join(tmp, 'mine');
    fs.mkdirSync(mine);
    fs.writeFileSync(path.join(mine, 'notes.txt'), 'mine');
    const args = (out: string) => ['compress', model, '--data', train, '--keep', '0.5', '--method', 'faster', '--steps', '5', '--out', out];
    oneLine(cli(args(model)), /is inside the source model/);
    oneLine(cli(args(path.join(model, 'sub', 'run'))), /is inside the source model/);
    oneLine(cli(args(tmp)), /contains the source model/);
    oneLine(cli(args(mine)), /holds files that are not a VTrans run \(notes\.txt\)/);
    assert.deepEqual(fs.readdirSync(mine), ['notes.txt']);
    assert.ok(!fs.existsSync(path.join(model, 'sub')));
  });

  it('run from inside the model folder, runs and caches go next to it, not into it', () => {
    const r = cli(['compress', '.', '--data', train, '--keep', '0.5', '--method', 'faster', '--steps', '5', '--json'], model);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { runDir: string };
    assert.ok(out.runDir.startsWith(path.join(tmp, '.vtrans', 'runs')), out.runDir);
  });
});

describe('data that would take memory, or say nothing', () => {
  it('a record longer than 16 MiB is refused at its line, before it is held whole', () => {
    const big = path.join(tmp, 'big.jsonl');
    const fd = fs.openSync(big, 'w');
    fs.writeSync(fd, examples(2));
    fs.writeSync(fd, '{"text": "');
    const chunk = 'x'.repeat(1 << 20);
    for (let i = 0; i < 40; i++) fs.writeSync(fd, chunk);
    fs.writeSync(fd, '", "label": "label_0"}\n');
    fs.closeSync(fd);
    oneLine(cli(['compress', model, '--data', big, '--keep', '0.5']), /big\.jsonl line 3: a line longer than 16 MiB/);
  });

  it('inspect refuses absurd sizes before allocating for them', () => {
    const cfg = JSON.parse(fs.readFileSync(path.join(model, 'config.json'), 'utf8'));
    for (const [change, pattern] of [
      [{ num_hidden_layers: 1e9 }, /layers = 1000000000 is beyond any model VTrans can hold/],
      [{ vocab_size: 1e15 }, /vocab = 1000000000000000 is beyond any model VTrans can hold/],
      [{ num_attention_heads: 0 }, /"num_attention_heads" is 0/],
    ] as const) {
      const dir = fs.mkdtempSync(path.join(tmp, 'cfg-'));
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, ...change }));
      oneLine(cli(['inspect', dir]), pattern);
    }
  });

  it('single-class training data is refused; empty texts and bytes that are not UTF-8 are warned about, with the line', () => {
    const one = path.join(tmp, 'one.jsonl');
    fs.writeFileSync(
      one,
      examples(20, () => 'label_1'),
    );
    oneLine(
      cli(['compress', model, '--data', one, '--keep', '0.5']),
      /one\.jsonl: every training example has the same label \("label_1"\)/,
    );
    const odd = path.join(tmp, 'odd.jsonl');
    const rows = examples(40).split('\n').filter(Boolean);
    rows[3] = JSON.stringify({ text: '', label: 'label_0' });
    rows[5] = JSON.stringify({ text: '   ', label: 'label_2' });
    fs.writeFileSync(
      odd,
      Buffer.concat([
        Buffer.from(rows.slice(0, 8).join('\n') + '\n'),
        Buffer.from('{"text": "caf\xe9", "label": "label_1"}\n', 'latin1'),
        Buffer.from(rows.slice(8).join('\n') + '\n'),
      ]),
    );
    const r = cli(['compress', model, '--data', odd, '--keep', '0.5', '--method', 'faster', '--steps', '5']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /vtrans: warning: odd\.jsonl: 2 of 41 texts are empty \(the first at line 4\)\./);
    assert.match(r.stderr, /vtrans: warning: odd\.jsonl line 9: bytes that are not UTF-8, read as U\+FFFD/);
  });

  it('"text": null is null, not missing', () => {
    const nul = path.join(tmp, 'null.jsonl');
    fs.writeFileSync(nul, '{"text": null, "label": "label_0"}\n');
    oneLine(cli(['compress', model, '--data', nul, '--keep', '0.5']), /null\.jsonl line 1: "text" is null\./);
  });

  it('a corrupt run.json is called corrupt', () => {
    const run = path.join(tmp, 'corrupt-run');
    fs.mkdirSync(run);
    fs.writeFileSync(path.join(run, 'run.json'), '{"status": "runn');
    oneLine(cli(['resume', run]), /corrupt-run\/run\.json: is corrupt/);
  });
});

describe('every exit leaves a true status', () => {
  function startCompress(out: string) {
    const args = [CLI, 'compress', model, '--data', train, '--keep', '0.5', '--method', 'vtrans', '--steps', '100000', '--out', out];
    const child = spawn(process.execPath, args, { cwd: tmp, env: { ...process.env, VTRANS_PYTHON: python() } });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    return { child, exited, stderr: () => stderr };
  }

  async function waitFor(pred: () => boolean, ms = 240_000): Promise<void> {
    const t0 = Date.now();
    while (!pred()) {
      if (Date.now() - t0 > ms) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const status = (run: string) =>
    JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8')) as { status: string; error?: string; pid?: number };

  it('kill -9 of the backend: the run is failed with why, the user gets one line and no stack', async () => {
    const run = path.join(tmp, 'killed');
    const c = startCompress(run);
    await waitFor(() => fs.existsSync(path.join(run, 'metrics.jsonl')) && status(run).status === 'running');
    process.kill(status(run).pid!, 'SIGKILL');
    assert.equal(await c.exited, 1);
    assert.equal(status(run).status, 'failed');
    assert.match(status(run).error!, /stopped unexpectedly \(signal SIGKILL\)/);
    assert.match(
      c.stderr(),
      /vtrans: The VTrans backend stopped unexpectedly \(signal SIGKILL\)\. The run .* is marked failed; resume it with: vtrans resume/,
    );
    assert.doesNotMatch(c.stderr(), /\n\s+at |Traceback/);
  });

  it('a second Ctrl-C kills the backend and the run is recorded as cancelled', async () => {
    const run = path.join(tmp, 'interrupted');
    const c = startCompress(run);
    await waitFor(() => fs.existsSync(path.join(run, 'metrics.jsonl')));
    c.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 50));
    c.child.kill('SIGINT');
    assert.equal(await c.exited, 130);
    await waitFor(() => status(run).status !== 'running', 30_000);
    assert.equal(status(run).status, 'cancelled');
  });
});
