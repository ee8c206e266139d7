/** The Runs view's actions and Export at Current Budget, in a trusted workspace. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ensureFinishedRun, getApi, log, quickArgs, runInfo, setKeep, waitFor } from './helpers';

const checkpoints = (runDir: string) => {
  const dir = path.join(runDir, 'checkpoints');
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.startsWith('state-') && f.endsWith('.json')) : [];
};

describe('runs and export', () => {
  it('Export at Current Budget writes the re-thresholded model as a new run', async () => {
    const api = await getApi();
    const parent = await ensureFinishedRun(api);
    await setKeep(0.3);
    await vscode.commands.executeCommand('vtrans.exportAtBudget', parent, 'uniform'); // the shape the quick pick offers
    const exported = await waitFor(
      'the exported run',
      () => api.runs().find((r) => r.info.parent === parent && r.info.status === 'done'),
      120_000,
    );
    log(`exported ${path.basename(exported.dir)}`);
    for (const f of ['model/config.json', 'model/model.safetensors', 'model.onnx', 'report.json', 'report.html']) {
      assert.ok(fs.existsSync(path.join(exported.dir, f)), f);
    }
    const report = exported.report!;
    assert.ok(report.budget.achieved <= 0.3 && report.budget.achieved > 0.25, `achieved ${report.budget.achieved}`);
    assert.equal(report.load?.shape, 'uniform');
    assert.ok(!('auto_map' in JSON.parse(fs.readFileSync(path.join(exported.dir, 'model', 'config.json'), 'utf8'))));
    assert.ok(report.student!.onnx!.latencyMs['1'] > 0, 'onnxruntime-node measured the exported model');
    await setKeep(0.5);
  });

  it('Resume continues a cancelled run from its checkpoint to the end', async () => {
    const api = await getApi();
    await ensureFinishedRun(api);
    const pending = Promise.resolve(
      vscode.commands.executeCommand('vtrans.compress', quickArgs({ minPruneSteps: 60, checkpointEvery: 10 })),
    );
    const active = await waitFor('the prune phase', () => api.activeRun()?.progress?.phase === 'prune' && api.activeRun(), 120_000);
    const runDir = active.runDir!;
    await waitFor('a checkpoint', () => checkpoints(runDir).length > 0, 120_000);
    await vscode.commands.executeCommand('vtrans.cancel');
    await pending;
    await waitFor('run.json status "cancelled"', () => runInfo(runDir)?.status === 'cancelled', 15_000);
    // The Runs view passes its tree item; the command reads the run from it.
    const outcome = (await vscode.commands.executeCommand('vtrans.runs.resume', { run: { dir: runDir } })) as
      { runDir: string } | undefined;
    assert.equal(outcome?.runDir, runDir);
    assert.equal(runInfo(runDir)?.status, 'done');
    assert.ok(fs.existsSync(path.join(runDir, 'report.html')));
  });
});
