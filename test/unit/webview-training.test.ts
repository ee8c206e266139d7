/**
 * The live training panel and the compare panel in headless chromium (the real bundle and CSP): points added
 * as metrics records arrive, a gap answered with requestMetrics; two runs' curves overlaid and their figures
 * side by side.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import type { MetricsRecord } from '../../src/core/contracts';
import type { TrainingState } from '../../src/core/webviewProtocol';
import { phaseOffsets } from '../../webview/training';
import { bertReport } from '../fixtures/reports/generate';
import { ensureBundle, launchChromium, openPanel } from './helpers/webviewBrowser';

let browser: Browser;
before(async () => {
  ensureBundle();
  browser = await launchChromium();
});
after(async () => browser?.close());

const RUN = '/work/.vtrans/runs/20250101-000000-m-fast-abcd';
const state: TrainingState = {
  runDir: RUN,
  title: 'spam-classifier · Fast-VTrans 30% params',
  status: 'running',
  target: { kind: 'params', keep: 0.3 },
  metricName: 'accuracy',
  progress: { id: 1, runDir: RUN, phase: 'prune', step: 21, total: 150, eta: 42 },
};

function prune(step: number): MetricsRecord {
  const t = Math.max(0.3, 1 - step / 100);
  return {
    time: 't',
    phase: 'prune',
    step,
    loss: 1 / step,
    kl: 10 - step / 20,
    sparsity: 1 - (t + 0.02),
    target: t,
    lambda: [step / 100, step / 1000],
  };
}

describe('training panel', () => {
  it('draws loss, KL, expected size vs target and λ, and adds points as records arrive', async () => {
    const p = await openPanel(browser, 'training');
    try {
      const first = [
        { time: 't', phase: 'teacher', eval: { name: 'accuracy', value: 0.97 } } as MetricsRecord,
        prune(1),
        prune(11),
        prune(21),
      ];
      await p.send({ type: 'metrics', state, from: 0, records: first });
      await p.page.waitForSelector('[data-chart="loss"] svg.vt-plot');
      const counts = () =>
        p.page.$$eval('.vt-train-chart', (els) =>
          Object.fromEntries(els.map((e) => [(e as HTMLElement).dataset.chart, Number((e as HTMLElement).dataset.points)])),
        );
      assert.deepEqual(await counts(), { loss: 3, kl: 3, size: 6, lambda: 6 });
      assert.equal(
        (await p.page.$$eval('[data-chart="loss"] .vt-train-point circle, [data-chart="loss"] circle', (e) => e.length)) >= 3,
        true,
      );
      const header = (await p.page.textContent('.vt-header')) ?? '';
      assert.match(header, /spam-classifier · Fast-VTrans 30% params/);
      assert.match(header, /training masks 21\/150/);
      assert.match(header, /target: keep 30\.0% of parameters/);
      assert.match((await p.page.textContent('.vt-train-evals')) ?? '', /teacher accuracy 97\.00%/);

      await p.send({
        type: 'metrics',
        state: { ...state, progress: { ...state.progress!, step: 41 } },
        from: 4,
        records: [prune(31), prune(41)],
      });
      await p.page.waitForFunction(() => (document.querySelector('[data-chart="loss"]') as HTMLElement).dataset.points === '5');
      assert.deepEqual(await counts(), { loss: 5, kl: 5, size: 10, lambda: 10 });

      // A gap: the page asks for the records from what it has.
      await p.send({ type: 'metrics', state, from: 9, records: [prune(91)] });
      await p.page.waitForFunction(() =>
        (window as unknown as { __posted: { type: string; since?: number }[] }).__posted.some(
          (m) => m.type === 'requestMetrics' && m.since === 6,
        ),
      );
      assert.deepEqual(await p.state(), { panel: 'training', runDir: RUN });
    } finally {
      await p.close();
      assert.deepEqual(p.errors, []);
      assert.deepEqual(p.blocked, []);
    }
  });

  it('puts phase 2 after phase 1 on one step axis', () => {
    assert.deepEqual(phaseOffsets([prune(1), prune(150), { time: 't', phase: 'finetune', step: 10, loss: 0.1 }]), { finetune: 150 });
  });
});

describe('compare panel', () => {
  it('overlays two runs’ curves and lists their figures side by side', async () => {
    const a = bertReport();
    const b = bertReport();
    b.runId = 'b';
    b.budget = { ...b.budget, keep: 0.5 };
    b.tradeoff = b.tradeoff.map((t) => (t.metric == null ? t : { ...t, metric: t.metric - 0.02 }));
    const p = await openPanel(browser, 'compare');
    try {
      await p.send({
        type: 'compare',
        runs: [
          { runDir: '/r/a', title: 'bert · Fast-VTrans 40% encoder params', note: 'first try', report: a },
          { runDir: '/r/b', title: 'bert · Fast-VTrans 50% encoder params', note: '', report: b },
        ],
      });
      await p.page.waitForSelector('[data-testid="compare-chart"] svg.vt-plot');
      assert.equal(await p.page.$eval('[data-testid="compare-chart"] svg.vt-plot', (e) => (e as SVGElement).dataset.curves), '2');
      assert.equal(await p.page.$$eval('g.vt-compare-points', (e) => e.length), 2);
      const head = await p.page.$$eval('.vt-compare-table thead th', (e) => e.map((x) => x.textContent));
      assert.deepEqual(head, ['', 'bert · Fast-VTrans 40% encoder params', 'bert · Fast-VTrans 50% encoder params']);
      const target = await p.page.$$eval('.vt-compare-table tbody tr', (trs) =>
        trs
          .filter((tr) => tr.firstElementChild?.textContent === 'Run target')
          .map((tr) => [...tr.children].slice(1).map((c) => c.textContent)),
      );
      assert.deepEqual(target, [['keep 40.0% of encoder parameters', 'keep 50.0% of encoder parameters']]);
      assert.match((await p.page.textContent('.vt-legend')) ?? '', /first try/);
      await p.page.click('.vt-compare-table thead a[data-run="1"]');
      const posted = await p.posted();
      assert.deepEqual(
        posted.find((m) => m.type === 'openPanel'),
        { type: 'openPanel', panel: 'report', runDir: '/r/b' },
      );
    } finally {
      await p.close();
      assert.deepEqual(p.errors, []);
    }
  });
});
