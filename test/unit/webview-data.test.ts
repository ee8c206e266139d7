/** The webview's pure parts in node: the Pareto front, budget placement and prediction, the CSV, and the protocol guards. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFromWebview, isToWebview, reportProblem } from '../../src/core/webviewProtocol';
import { budgetX, compactTick, paretoFront, predictionAt, tradeoffCsv } from '../../webview/tradeoffData';
import { bertReport, emptyRun, gpt2xlReport } from '../fixtures/reports/generate';

describe('tradeoff data', () => {
  it('Pareto front: smaller and better wins, ties at equal size keep the better point, direction follows the metric', () => {
    const xs = [1, 2, 2, 3, 4, 5];
    const acc = [0.5, 0.7, 0.6, 0.65, 0.8, 0.8];
    assert.deepEqual(paretoFront(xs, acc, true), [0, 1, 4]);
    const ppl = [30, 20, 25, 22, 12, 12];
    assert.deepEqual(paretoFront(xs, ppl, false), [0, 1, 4]);
    assert.deepEqual(paretoFront([], [], true), []);
  });

  it('budget on its own axis is keep × the teacher; on the other size axes the prediction; none on latency axes', () => {
    const r = bertReport();
    assert.equal(budgetX(r, { kind: 'encoder-params', keep: 0.5 }, 'encoderParams'), 0.5 * r.teacher.encoderParams);
    // Without a prediction from the extension: report.json's table row at that budget.
    const row = r.predictions!.points.find((p) => p.keep === 0.55)!;
    assert.equal(budgetX(r, { kind: 'encoder-params', keep: 0.55 }, 'params'), row.params);
    assert.equal(budgetX(r, { kind: 'encoder-params', keep: 0.55 }, 'flopsPerToken'), row.flopsPerToken);
    // A prediction sent by the extension for this budget is used as is.
    const predicted = {
      kind: 'encoder-params' as const,
      keep: 0.55,
      params: 123,
      encoderParams: 456,
      flopsPerToken: 789,
      metric: 0.8,
      basis: 'rethreshold' as const,
    };
    assert.equal(budgetX(r, { kind: 'encoder-params', keep: 0.55, predicted }, 'params'), 123);
    assert.equal(budgetX(r, { kind: 'encoder-params', keep: 0.55, predicted }, 'latency1'), null, 'nothing predicts a latency');
  });

  it('prediction at a budget: the extension’s, else the table’s nearest hundredth of the run’s kind', () => {
    const r = gpt2xlReport();
    const row = r.predictions!.points.find((p) => p.keep === 0.45)!;
    const p = predictionAt(r, { kind: 'flops', keep: 0.4512 })!;
    assert.equal(p.basis, 'table');
    assert.deepEqual([p.keep, p.params, p.flopsPerToken, p.metric], [0.4512, row.params, row.flopsPerToken, row.metric]);
    assert.equal(predictionAt(r, { kind: 'params', keep: 0.45 }), null, 'the table is for the run’s kind only');
    assert.equal(predictionAt(emptyRun(), { kind: 'params', keep: 0.5 }), null);
  });

  it('CSV has every point with exact figures', () => {
    const r = bertReport();
    const lines = tradeoffCsv(r).trim().split('\n');
    assert.equal(lines.length, r.tradeoff.length + 1);
    const sweep = r.tradeoff.findIndex((t) => t.source === 'sweep' && t.keep === 0.1);
    const t = r.tradeoff[sweep];
    assert.equal(lines[sweep + 1], `sweep,0.1,encoder-params,${t.params},${t.encoderParams},${t.flopsPerToken},${t.metric},,,1`);
  });

  it('axis ticks are compact', () => {
    assert.deepEqual([500_000, 1_500_000, 6_738_415_616, 812].map(compactTick), ['500k', '1.5M', '6.74B', '812']);
  });
});

describe('webview protocol guards', () => {
  it('accepts the protocol and rejects anything else from the page', () => {
    assert.ok(isFromWebview({ type: 'ready', panel: 'tradeoff', state: null }));
    assert.ok(isFromWebview({ type: 'exportAtBudget', kind: 'params', keep: 0.5 }));
    assert.ok(isFromWebview({ type: 'saveFile', format: 'png', suggestedName: 'a.png', content: 'AA==', encoding: 'base64' }));
    for (const bad of [
      null,
      'ready',
      { type: 'ready', panel: 'other', state: null },
      { type: 'exportAtBudget', kind: 'params', keep: 0 },
      { type: 'exportAtBudget', kind: 'bytes', keep: 0.5 },
      { type: 'saveFile', format: 'exe', suggestedName: 'a', content: '', encoding: 'utf8' },
      { type: 'runCommand', command: 'workbench.action.reloadWindow' },
      { type: 'eval', code: '1' },
    ]) {
      assert.equal(isFromWebview(bad), false, JSON.stringify(bad));
    }
    assert.ok(isToWebview({ type: 'budget', budget: { kind: 'flops', keep: 0.3 } }));
    assert.equal(isToWebview({ type: 'budget', budget: { kind: 'flops' } }), false);
  });

  it('names the first problem of a report the views cannot show', () => {
    assert.equal(reportProblem(bertReport()), null);
    assert.equal(reportProblem(emptyRun()), null);
    assert.equal(reportProblem([]), 'it is not a JSON object');
    assert.match(reportProblem({ ...bertReport(), version: 3 })!, /version is 3/);
    assert.equal(reportProblem({ ...bertReport(), tradeoff: undefined }), '"tradeoff" is not a list');
  });
});
