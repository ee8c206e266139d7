/** vtrans.compress with CompressArgs on the tiny model: progress, the result, the run directory, the Runs list. */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { CompressOutcome } from '../../../src/core/compress';
import { modelName } from '../../../src/core/runs';
import { getApi, log, nextEvent, quickArgs, runInfo, testMode, waitFor, waitForNotification, workspaceRoot } from './helpers';

describe('compress', () => {
  it('compresses the tiny model to the budget, with progress, and writes the run directory', async () => {
    const api = await getApi();
    const t0 = Date.now();
    const finished = nextEvent(api.onDidFinishCompression, 'onDidFinishCompression', () => true, 300_000);
    const phases = new Set<string>();
    const statusTexts = new Set<string>();
    const statusTips = new Set<boolean>();
    const poll = setInterval(() => {
      const p = api.activeRun()?.progress;
      if (p) phases.add(p.phase);
      if (api.activeRun()) {
        statusTexts.add(api.statusBar().text);
        statusTips.add(/VTrans is compressing/.test(api.statusBar().tooltip));
      }
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
      [...statusTexts].some((t) => /Training masks \d+%/.test(t)),
      `the status bar showed the phase and its progress (saw: ${[...statusTexts].join(' | ')})`,
    );
    assert.ok(statusTips.has(true), 'its tooltip says VTrans is compressing');

    const info = runInfo(outcome.runDir);
    assert.equal(info?.status, 'done');
    // The run's name carries the model's; its folder is kept out of git and has its own log.
    // (a folder named "model" is called by its parent's name: the workspace folder here)
    assert.match(path.basename(outcome.runDir), new RegExp(`^\\d{8}-\\d{6}-${modelName(quickArgs().modelDir)}-faster-[0-9a-f]{4}$`));
    assert.equal(modelName(quickArgs().modelDir), path.basename(workspaceRoot()));
    assert.match(fs.readFileSync(path.join(outcome.runDir, '.gitignore'), 'utf8'), /^\*$/m);
    const runLog = fs.readFileSync(path.join(outcome.runDir, 'log.txt'), 'utf8');
    assert.match(runLog, / compress /);
    assert.match(runLog, /wrote report\.json/);
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
