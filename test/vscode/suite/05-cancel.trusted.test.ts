/** Cancel: a long compression stops within seconds, the run is marked cancelled, no backend process is left over. */
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { backendProcesses, ensureFinishedRun, getApi, log, nextEvent, pidAlive, quickArgs, runInfo, setKeep, waitFor } from './helpers';

describe('cancel', () => {
  it('stops a running compression within seconds and marks the run cancelled', async () => {
    const api = await getApi();
    await ensureFinishedRun(api);
    const pending = Promise.resolve(vscode.commands.executeCommand('vtrans.compress', quickArgs({ minPruneSteps: 100_000 })));
    const active = await waitFor(
      'the prune phase of the long compression',
      () => api.activeRun()?.progress?.phase === 'prune' && api.activeRun(),
      120_000,
    );
    const runDir = active.runDir!;
    const pid = api.backend()?.pid;
    assert.ok(pid, 'a backend is training');
    assert.equal(runInfo(runDir)?.status, 'running');

    const t0 = Date.now();
    await vscode.commands.executeCommand('vtrans.cancel');
    const outcome = await pending;
    const seconds = (Date.now() - t0) / 1000;
    log(`cancelled after ${seconds.toFixed(1)} s`);
    assert.equal(outcome, undefined, 'a cancelled compression has no outcome');
    await waitFor('run.json status "cancelled"', () => runInfo(runDir)?.status === 'cancelled', 15_000);
    assert.ok(seconds < 15, `stopped within seconds (${seconds.toFixed(1)} s)`);
    assert.equal(api.activeRun(), undefined);

    const b = api.backend();
    if (b?.running) {
      assert.equal(b.pid, pid, 'the same backend keeps serving');
      assert.ok(pidAlive(b.pid));
      // It still answers: a budget prediction goes through the backend (seconds > 0: re-thresholded there).
      const p = nextEvent(api.onDidPredict, 'a prediction after the cancel', (x) => Math.abs(x.keep - 0.45) < 1e-9, 30_000);
      await setKeep(0.45);
      assert.ok((await p).seconds >= 0);
      await setKeep(0.5);
    } else {
      await waitFor(`the stopped backend (pid ${pid}) to be gone`, () => !pidAlive(pid), 10_000);
    }
    const left = backendProcesses().map((p) => p.pid);
    assert.deepEqual(left, b?.running ? [b.pid] : [], `backend processes left: ${left.join(', ') || 'none'}`);
  });
});
