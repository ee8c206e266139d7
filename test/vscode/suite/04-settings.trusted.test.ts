/** Inline budget tuning: changing vtrans.budget.keep re-predicts from the last run's masks and updates the status bar. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunReport } from '../../../src/core/report';
import { ensureFinishedRun, getApi, log, nextEvent, setKeep } from './helpers';

const near = (a: number, b: number) => Math.abs(a - b) < 1e-9;

describe('settings reaction', () => {
  after(() => setKeep(0.5));

  it('predicts at the new budget when vtrans.budget.keep changes, and shows it in the status bar', async () => {
    const api = await getApi();
    await ensureFinishedRun(api);
    await api.whenPredictionsSettled();

    let t0 = Date.now();
    const at60 = nextEvent(api.onDidPredict, 'a prediction at keep 0.6', (p) => near(p.keep, 0.6), 30_000);
    await setKeep(0.6);
    const p60 = await at60;
    log(`keep 0.6: ${p60.params} params, metric ${p60.metric}, ${Date.now() - t0} ms (backend ${p60.seconds.toFixed(2)} s)`);
    await api.whenPredictionsSettled();
    assert.equal(p60.kind, 'params');
    assert.ok(p60.params > 0);
    assert.deepEqual(api.lastPrediction(), p60);
    const s60 = api.statusBar();
    assert.equal(s60.visible, true);
    assert.match(s60.text, /60%/, `status bar: ${s60.text}`);

    t0 = Date.now();
    const at30 = nextEvent(api.onDidPredict, 'a prediction at keep 0.3', (p) => near(p.keep, 0.3), 30_000);
    await setKeep(0.3);
    const p30 = await at30;
    log(`keep 0.3: ${p30.params} params, metric ${p30.metric}, ${Date.now() - t0} ms`);
    await api.whenPredictionsSettled();
    assert.ok(p30.params < p60.params, `fewer parameters at 30% (${p30.params}) than at 60% (${p60.params})`);
    assert.match(api.statusBar().text, /30%/, `status bar: ${api.statusBar().text}`);
    assert.notEqual(api.statusBar().text, s60.text);
  });

  it('follows vtrans.budget.kind too', async () => {
    const api = await getApi();
    const { workspace, ConfigurationTarget } = await import('vscode');
    const cfg = workspace.getConfiguration('vtrans');
    const flops = nextEvent(api.onDidPredict, 'a prediction in FLOPs', (p) => p.kind === 'flops', 30_000);
    await cfg.update('budget.kind', 'flops', ConfigurationTarget.Workspace);
    try {
      const p = await flops;
      assert.ok(p.flopsPerToken > 0);
      await api.whenPredictionsSettled();
      assert.match(api.statusBar().text, /flops/i);
    } finally {
      await cfg.update('budget.kind', undefined, ConfigurationTarget.Workspace);
    }
  });

  it("predicts the run's own budget with the sizes report.json gives its compressed model", async () => {
    const api = await getApi();
    const runDir = await ensureFinishedRun(api);
    const report = JSON.parse(fs.readFileSync(path.join(runDir, 'report.json'), 'utf8')) as RunReport;
    const keep = report.budget.keep;
    await setKeep(keep === 0.55 ? 0.6 : 0.55);
    await api.whenPredictionsSettled();
    const own = nextEvent(api.onDidPredict, `a prediction at the run's keep ${keep}`, (p) => near(p.keep, keep), 30_000);
    await setKeep(keep);
    const p = await own;
    const s = report.student!;
    log(
      `keep ${keep}: predicted ${p.params} params / ${p.flopsPerToken.toFixed(0)} FLOPs per token; report.json ${s.params} / ${s.flopsPerToken.toFixed(0)}`,
    );
    assert.ok(Math.abs(p.params - s.params) <= 0.005 * s.params, `parameters: predicted ${p.params}, report.json ${s.params}`);
    assert.ok(
      Math.abs(p.encoderParams - s.encoderParams) <= 0.005 * s.encoderParams + 1,
      `encoder parameters: predicted ${p.encoderParams}, report.json ${s.encoderParams}`,
    );
    assert.ok(
      Math.abs(p.flopsPerToken - s.flopsPerToken) <= 0.01 * s.flopsPerToken,
      `FLOPs per token: predicted ${p.flopsPerToken}, report.json ${s.flopsPerToken}`,
    );
  });
});
