/** vtrans.compress with CompressArgs on the tiny model: progress, the result, the run directory, the Runs list. */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { CompressOutcome } from '../../../src/core/compress';
import { getApi, log, nextEvent, quickArgs, runInfo, testMode, waitFor, waitForNotification, workspaceRoot } from './helpers';

describe('compress', () => {
  it('compresses the tiny model to the budget, with progress, and writes the run directory', async () => {
    const api = await getApi();
    const t0 = Date.now();
    const finished = nextEvent(api.onDidFinishCompression, 'onDidFinishCompression', () => true, 300_000);
    const phases = new Set<string>();
    const statusTexts = new Set<string>();
    const poll = setInterval(() => {
      const p = api.activeRun()?.progress;
      if (p) phases.add(p.phase);
      if (api.activeRun()) statusTexts.add(api.statusBar().text);
    }, 50);
    let outcome: CompressOutcome | undefined;
    try {
      outcome = (await vscode.commands.executeCommand('vtrans.compress', quickArgs())) as CompressOutcome | undefined;
    } finally {
      clearInterval(poll);
    }
    log(`compressed in ${((Date.now() - t0) / 1000).toFixed(1)} s; phases seen: ${[...phases].join(', ')}`);
    assert.ok(outcome, 'vtrans.compress returned the outcome');
    assert.equal(outcome.status, 'done');
    assert.ok(Math.abs(outcome.achieved - 0.5) < 0.05, `achieved ${outcome.achieved} of the params for keep 0.5`);
    assert.ok(outcome.student.params < outcome.teacher.params);
    assert.ok(outcome.runDir.startsWith(path.join(workspaceRoot(), '.vtrans', 'runs')), `run directory ${outcome.runDir} in the workspace`);
    const fin = await finished;
    assert.ok('status' in fin && fin.status === 'done', 'onDidFinishCompression fired with the outcome');

    assert.ok(phases.has('prune'), `progress reported the prune phase (saw: ${[...phases].join(', ')})`);
    assert.ok(
      [...statusTexts].some((t) => /VTrans/.test(t)),
      `the status bar showed progress (saw: ${[...statusTexts].join(' | ')})`,
    );

    const info = runInfo(outcome.runDir);
    assert.equal(info?.status, 'done');
    for (const f of [
      'report.json',
      'report.html',
      'masks.safetensors',
      'model.onnx',
      'model/config.json',
      'model/model.safetensors',
      'model/tokenizer.json',
    ]) {
      assert.ok(fs.existsSync(path.join(outcome.runDir, f)), `${f} in the run directory`);
    }
    const report = JSON.parse(fs.readFileSync(path.join(outcome.runDir, 'report.json'), 'utf8'));
    assert.equal(report.student.params, outcome.student.params);
    assert.ok(report.student.onnx?.latencyMs, 'report.json has the onnxruntime-node measurement');
    // model/ loads with transformers in a fresh Python that never imports VTrans, by the report's own lines.
    const env: NodeJS.ProcessEnv = { ...process.env, HF_HUB_OFFLINE: '1' };
    delete env.PYTHONPATH;
    const code = `${report.load.python}\nimport sys\nassert not [m for m in sys.modules if m.startswith("vtrans")]\n`;
    const py = spawnSync(testMode().python, ['-c', code], { cwd: os.tmpdir(), env, encoding: 'utf8', timeout: 300_000 });
    assert.equal(py.status, 0, `the report's load lines failed: ${py.stderr.slice(-2000)}`);
    assert.match(py.stdout, /'label': '(ham|spam)'/);

    await waitFor('the run in api.runs()', () => api.runs().find((r) => r.dir === outcome!.runDir && r.info.status === 'done'), 10_000);
    assert.equal(api.activeRun(), undefined, 'no active run afterwards');
    const text = await waitForNotification(/compressed to .* parameters/, t0);
    if (text !== undefined) log(text);
  });

  it('never writes into the source model directory', () => {
    const files = fs.readdirSync(quickArgs().modelDir).sort();
    assert.deepEqual(files, ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  });
});
