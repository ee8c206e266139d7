/** Crash-restart: kill -9 of the backend mid-compression marks the run failed (checkpoints kept); the next command starts a new backend. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { BackendState } from '../../../src/extension/api';
import {
  backendProcesses,
  ensureFinishedRun,
  getApi,
  log,
  pidAlive,
  quickArgs,
  runInfo,
  sleep,
  waitFor,
  waitForNotification,
} from './helpers';

const checkpoints = (runDir: string) => {
  const dir = path.join(runDir, 'checkpoints');
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.startsWith('state-') && f.endsWith('.json')) : [];
};

describe('crash and restart', () => {
  let runDir = '';
  let before: BackendState | undefined;
  let killedAt = 0;
  let pending: Promise<unknown> | undefined;
  let settled = false;

  it('marks the run failed with its checkpoints kept when the backend is killed (kill -9)', async () => {
    const api = await getApi();
    await ensureFinishedRun(api);
    pending = Promise.resolve(
      vscode.commands.executeCommand('vtrans.compress', quickArgs({ minPruneSteps: 100_000, checkpointEvery: 10 })),
    ).finally(() => (settled = true));
    const active = await waitFor('the prune phase', () => api.activeRun()?.progress?.phase === 'prune' && api.activeRun(), 120_000);
    runDir = active.runDir!;
    await waitFor('a checkpoint of the running compression', () => checkpoints(runDir).length > 0, 120_000);
    before = api.backend();
    assert.ok(before?.pid, 'a backend is training');

    killedAt = Date.now();
    process.kill(before.pid, 'SIGKILL');
    log(`killed backend pid ${before.pid}`);
    const info = await waitFor('run.json status "failed"', () => runInfo(runDir)?.status === 'failed' && runInfo(runDir), 15_000);
    log(`run.json error: ${info.error}`);
    assert.match(String(info.error), /checkpoint/i, 'the failure says the checkpoints are kept');
    assert.ok(checkpoints(runDir).length > 0, 'checkpoints kept');
    await waitFor(`the killed backend (pid ${before.pid}) to be gone`, () => !pidAlive(before!.pid), 10_000);
  });

  it('tells the user the backend stopped unexpectedly and that the checkpoints are kept', async function () {
    assert.ok(killedAt, 'the backend was killed');
    const text = await waitForNotification(/stopped unexpectedly|failed/i, killedAt);
    if (text === undefined) return this.skip();
    log(text);
    assert.match(text, /stopped unexpectedly/i, 'says the backend stopped, not a generic failure');
    assert.match(text, /checkpoint/i);
  });

  it('ends the command and starts a new backend on the next command', async () => {
    const api = await getApi();
    assert.ok(pending && before, 'a compression was crashed');
    // The compression's error notification waits for a choice (Show Log / Resume); close it so the command returns.
    await waitFor(
      'vtrans.compress to return after the crash',
      async () => {
        if (settled) return true;
        await vscode.commands.executeCommand('notifications.clearAll');
        await sleep(300);
        return settled;
      },
      30_000,
      0,
    );
    assert.equal(await pending, undefined, 'a crashed compression has no outcome');
    await waitFor('no active run', () => api.activeRun() === undefined, 10_000);

    await vscode.commands.executeCommand('vtrans.restartBackend');
    const after = await waitFor('a new backend', () => api.backend()?.running && api.backend(), 60_000);
    log(`new backend pid ${after.pid}, start #${after.starts}`);
    assert.notEqual(after.pid, before.pid);
    assert.ok(after.starts > before.starts, `api.backend().starts went from ${before.starts} to ${after.starts}`);
    assert.ok(pidAlive(after.pid));
    assert.deepEqual(
      backendProcesses().map((p) => p.pid),
      [after.pid],
    );
    assert.ok(
      api.runs().some((r) => r.dir === runDir && r.info.status === 'failed'),
      'the Runs view lists the failed run',
    );
  });
});
