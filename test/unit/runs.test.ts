import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { macroF1 } from '../../src/core/onnxEval';
import { formatEta, progressBar } from '../../src/core/progressText';
import {
  deleteRun,
  hasCheckpoint,
  latestFinishedRun,
  listRuns,
  markInterrupted,
  newRunId,
  readRunInfo,
  runsDir,
  writeJsonAtomic,
} from '../../src/core/runs';

const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'vtrans-runs-'));
after(() => fs.rmSync(ws, { recursive: true, force: true }));

function makeRun(id: string, info: Record<string, unknown>, files: Record<string, string> = {}): string {
  const dir = path.join(runsDir(ws), id);
  fs.mkdirSync(path.join(dir, 'checkpoints'), { recursive: true });
  writeJsonAtomic(path.join(dir, 'run.json'), { id, ...info });
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content);
  return dir;
}

describe('run store', () => {
  it('lists runs newest first and finds the latest finished run with masks', () => {
    makeRun('a', { status: 'done', createdAt: '2026-01-01T00:00:00Z' }, { 'report.json': '{}', 'masks.safetensors': 'x' });
    makeRun('b', { status: 'done', createdAt: '2026-01-03T00:00:00Z' }, { 'report.json': '{}' });
    makeRun('c', { status: 'failed', createdAt: '2026-01-04T00:00:00Z' });
    fs.mkdirSync(path.join(runsDir(ws), 'not-a-run'));
    assert.deepEqual(
      listRuns(ws).map((r) => path.basename(r.dir)),
      ['c', 'b', 'a'],
    );
    assert.equal(path.basename(latestFinishedRun(ws)!.dir), 'a', 'b has no masks, c is not done');
  });

  it('marks a running run whose backend died as failed and keeps its checkpoints', () => {
    const dir = makeRun('d', { status: 'running', createdAt: '2026-01-05T00:00:00Z' }, {});
    fs.writeFileSync(path.join(dir, 'checkpoints', 'state-1-00000050.json'), '{}');
    markInterrupted(dir, 'The backend stopped unexpectedly (signal SIGKILL).');
    const info = readRunInfo(dir)!;
    assert.equal(info.status, 'failed');
    assert.match(info.error!, /SIGKILL.*resume/);
    assert.ok(hasCheckpoint(dir));
    markInterrupted(makeRun('e', { status: 'done', createdAt: 'x' }), 'ignored');
    assert.equal(readRunInfo(path.join(runsDir(ws), 'e'))!.status, 'done', 'only running runs are touched');
  });

  it('deletes only run directories', () => {
    const dir = makeRun('f', { status: 'done', createdAt: 'x' });
    deleteRun(dir);
    assert.ok(!fs.existsSync(dir));
    assert.throws(() => deleteRun(path.join(runsDir(ws), 'not-a-run')), /not a run directory/);
  });

  it('makes sortable, unique run ids', () => {
    const id = newRunId('fast', new Date(2026, 10, 25, 13, 5, 9));
    assert.match(id, /^20261125-130509-fast-[0-9a-f]{4}$/);
    assert.notEqual(newRunId('fast'), newRunId('fast'));
  });
});

describe('metrics and progress text', () => {
  it('macro F1 averages the per-class F1 of the classes present', () => {
    // class 0: tp 2, fp 1, fn 0 -> 0.8; class 1: tp 1, fp 0, fn 1 -> 0.667
    assert.ok(Math.abs(macroF1([0, 0, 0, 1], [0, 0, 1, 1], 2) - (0.8 + 2 / 3) / 2) < 1e-12);
    assert.equal(macroF1([1, 1], [1, 1], 3), 1);
  });

  it('formats ETAs and the progress bar', () => {
    assert.equal(formatEta(5.4), '5s');
    assert.equal(formatEta(125), '2m05s');
    assert.equal(formatEta(3725), '1h02m');
    assert.equal(formatEta(null), '');
    const bar = progressBar(
      { id: 1, runDir: '/r', phase: 'prune', step: 30, total: 60, eta: 90, loss: 0.5, sparsity: 0.4, target: 0.7, lambda: [1.5, 0.1] },
      10,
    );
    assert.match(bar, /^training masks\s+\[#####\.\.\.\.\.\] 30\/60 {2}loss 0\.500 · pruned 40% \(target 30%\) · λ 1\.50 · eta 1m30s$/);
  });
});
