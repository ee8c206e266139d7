import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { macroF1 } from '../../src/core/onnxEval';
import { formatEta, progressBar } from '../../src/core/progressText';
import type { RunInfo } from '../../src/core/contracts';
import {
  deleteRun,
  hasCheckpoint,
  latestFinishedRun,
  listRuns,
  markStopped,
  newRunId,
  readRunInfo,
  runsDir,
  workspaceOfRun,
  writeTextAtomic,
} from '../../src/core/runs';
import { python } from './helpers/python';

const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'vtrans-runs-'));
after(() => fs.rmSync(ws, { recursive: true, force: true }));

/** A run.json as the backend writes it (the contract's required fields), with `info` on top. */
function makeRun(id: string, info: Partial<RunInfo>, files: Record<string, string> = {}): string {
  const dir = path.join(runsDir(ws), id);
  fs.mkdirSync(path.join(dir, 'checkpoints'), { recursive: true });
  const full: RunInfo = {
    id,
    status: 'done',
    createdAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
    settings: { modelDir: '/m', trainShards: '/t', evalShards: '/e', runDir: dir },
    versions: { vtrans: '0.1.0', torch: '2.13.0', python: '3.11', platform: 'linux' },
    method: 'fast',
    budget: { kind: 'params', keep: 0.3 },
    modelDir: '/m',
    ...info,
  };
  writeTextAtomic(path.join(dir, 'run.json'), JSON.stringify(full));
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content);
  return dir;
}

describe('run store', () => {
  it('lists runs newest first and finds the latest finished run with masks', () => {
    makeRun('a', { createdAt: '2026-01-01T00:00:00Z' }, { 'report.json': '{}', 'masks.safetensors': 'x' });
    makeRun('b', { createdAt: '2026-01-03T00:00:00Z' }, { 'report.json': '{}' });
    makeRun('c', { status: 'failed', createdAt: '2026-01-04T00:00:00Z' });
    fs.mkdirSync(path.join(runsDir(ws), 'not-a-run'));
    assert.deepEqual(
      listRuns(ws).map((r) => path.basename(r.dir)),
      ['c', 'b', 'a'],
    );
    assert.equal(path.basename(latestFinishedRun(ws)!.dir), 'a', 'b has no masks, c is not done');
  });

  it('marks a running run whose backend died as failed, through the backend’s run module, and keeps its checkpoints', async () => {
    const dir = makeRun('d', { status: 'running', createdAt: '2026-01-05T00:00:00Z', pid: 999999 }, {});
    fs.writeFileSync(path.join(dir, 'checkpoints', 'state-1-00000050.json'), '{}');
    assert.equal(await markStopped(python(), dir, 'failed', 'The backend stopped unexpectedly (signal SIGKILL).'), true);
    const info = readRunInfo(dir)!;
    assert.equal(info.status, 'failed');
    assert.match(info.error!, /SIGKILL.*resume/);
    assert.equal(info.pid, undefined);
    assert.ok(hasCheckpoint(dir));
    const done = makeRun('e', { status: 'done', createdAt: 'x' });
    assert.equal(await markStopped(python(), done, 'cancelled', 'ignored'), false);
    assert.equal(readRunInfo(done)!.status, 'done', 'only running runs are touched');
  });

  it('knows the workspace a run belongs to: recorded in run.json, else the folder above .vtrans/runs', () => {
    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'vtrans-out-'));
    fs.writeFileSync(path.join(elsewhere, 'run.json'), JSON.stringify({ workspace: ws }));
    assert.equal(workspaceOfRun(elsewhere), ws, 'a run made with --out elsewhere exports into its workspace');
    assert.equal(workspaceOfRun(makeRun('old', {})), ws);
    fs.rmSync(elsewhere, { recursive: true, force: true });
  });

  it('deletes only run directories', () => {
    const dir = makeRun('f', { createdAt: 'x' });
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
