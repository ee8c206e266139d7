/** Restricted mode: nothing is spawned, commands say why, finished runs can still be listed and opened. */
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { backendProcesses, getApi, log, nextEvent, quickArgs, setKeep, sleep, testMode, waitFor, waitForNotification } from './helpers';

describe('untrusted workspace', () => {
  it('runs in restricted mode', () => {
    assert.equal(vscode.workspace.isTrusted, false);
  });

  it('does not spawn the backend for vtrans.compress and shows the trust message', async () => {
    const api = await getApi();
    const t0 = Date.now();
    const outcome = await vscode.commands.executeCommand('vtrans.compress', quickArgs());
    assert.equal(outcome, undefined);
    await sleep(1000);
    assert.equal(api.backend(), undefined, 'api.backend() stays undefined');
    assert.deepEqual(backendProcesses(), [], 'no backend process');
    const text = await waitForNotification(/trusted workspace/i, t0);
    if (text !== undefined) log(text);
  });

  it('refuses Restart Backend and Export at Current Budget the same way', async () => {
    const api = await getApi();
    const t0 = Date.now();
    await vscode.commands.executeCommand('vtrans.restartBackend');
    await vscode.commands.executeCommand('vtrans.exportAtBudget');
    await sleep(1000);
    assert.equal(api.backend(), undefined);
    assert.deepEqual(backendProcesses(), []);
    await waitForNotification(/trusted workspace/i, t0);
  });

  it('lists the finished runs', async () => {
    const api = await getApi();
    const seeded = testMode().seededRun;
    assert.ok(seeded, 'the runner made a run with the CLI');
    const run = api.runs().find((r) => r.dir === seeded);
    assert.ok(run, `api.runs() lists ${seeded}`);
    assert.equal(run.info.status, 'done');
    assert.ok(run.report, 'with its report');
  });

  it('predicts budgets from the sweep without a backend', async () => {
    const api = await getApi();
    const p = nextEvent(api.onDidPredict, 'a prediction at keep 0.7', (x) => Math.abs(x.keep - 0.7) < 1e-9, 30_000);
    await setKeep(0.7);
    try {
      const pred = await p;
      assert.equal(pred.seconds, 0, 'interpolated, not computed by a backend');
      await api.whenPredictionsSettled();
      assert.match(api.statusBar().text, /70%/);
      assert.equal(api.backend(), undefined);
    } finally {
      await setKeep(0.5);
    }
  });

  it('opens the report of a finished run', async () => {
    const seeded = testMode().seededRun!;
    await vscode.commands.executeCommand('vtrans.showReport', seeded);
    const tab = await waitFor(
      'a VTrans Report tab',
      () =>
        vscode.window.tabGroups.all
          .flatMap((g) => g.tabs)
          .find((t) => t.input instanceof vscode.TabInputWebview && /vtrans\.report/.test(t.input.viewType)),
      20_000,
    );
    log(`tab: ${tab.label}`);
    assert.match(tab.label, /VTrans Report/);
    assert.equal((await getApi()).backend(), undefined);
  });
});
