/**
 * The tradeoff panel rendered from fixture reports in headless chromium (the real bundle, the real CSP):
 * what is drawn (points per source, the Pareto front, the budget marker and how it follows budget
 * messages, the table, tooltips), what it posts (export at a budget, files), and its restored state.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { fmtInt } from '../../src/core/findings';
import type { RunReport, TradeoffPoint } from '../../src/core/report';
import type { FromWebview } from '../../src/core/webviewProtocol';
import { bertReport, failedRun, llamaReport } from '../fixtures/reports/generate';
import { ensureBundle, launchChromium, openPanel, type PanelPage } from './helpers/webviewBrowser';

let browser: Browser;
before(async () => {
  ensureBundle();
  browser = await launchChromium();
});
after(async () => browser?.close());

const RUN = '/work/.vtrans/runs/2025-11-24T10-12-03';

/** Pareto-optimal points by brute force: nobody else is at most as large and at least as good, one strictly. */
function expectedFront(points: TradeoffPoint[], x: (p: TradeoffPoint) => number, higherBetter: boolean): Set<number> {
  const own = points.map((p, i) => ({ p, i })).filter(({ p }) => p.metric != null && !p.source.startsWith('baseline:'));
  const better = (a: number, b: number) => (higherBetter ? a > b : a < b);
  const front = new Set<number>();
  for (const a of own) {
    const dominated = own.some(
      (b) => b !== a && x(b.p) <= x(a.p) && !better(a.p.metric!, b.p.metric!) && (x(b.p) < x(a.p) || better(b.p.metric!, a.p.metric!)),
    );
    if (!dominated) front.add(a.i);
  }
  return front;
}

async function show(p: PanelPage, report: RunReport, keep = report.budget.keep) {
  await p.send({ type: 'show', panel: 'tradeoff', runDir: RUN, report, budget: { kind: report.budget.kind, keep } });
  await p.page.waitForSelector('svg.vt-plot .vt-point');
}

const markerX = (p: PanelPage) => p.page.$eval('.vt-budget line', (l) => Number(l.getAttribute('x1')));

async function lastPosted(p: PanelPage, type: FromWebview['type']) {
  const all = await p.posted();
  return all.filter((m) => m.type === type).pop();
}

describe('tradeoff panel', () => {
  it('draws every point with a metric, by source, the Pareto front and the table', async () => {
    const r = bertReport();
    const p = await openPanel(browser, 'tradeoff');
    try {
      await show(p, r);
      const drawn = await p.page.$$eval('.vt-point', (els) =>
        els.map((e) => ({
          id: Number(e.getAttribute('data-point-id')),
          source: e.getAttribute('data-source'),
          pareto: e.classList.contains('vt-pareto'),
        })),
      );
      assert.equal(drawn.length, r.tradeoff.filter((t) => t.metric != null).length);
      for (const src of ['sweep', 'finetuned', 'teacher', 'baseline:cofi', 'baseline:magnitude']) {
        assert.equal(drawn.filter((d) => d.source === src).length, r.tradeoff.filter((t) => t.source === src).length, src);
      }
      // Baselines are drawn with their own symbols (not only colours): Plot draws circles for the sweep, paths otherwise.
      const tags = await p.page.$$eval('.vt-point', (els) => els.map((e) => `${e.getAttribute('data-source')}:${e.tagName}`));
      assert.ok(tags.filter((t) => t.startsWith('sweep:')).every((t) => t.endsWith('circle')));
      assert.ok(tags.filter((t) => t.startsWith('baseline:')).every((t) => t.endsWith('path')));
      // The default x axis is the budget's kind (encoder parameters here).
      const front = expectedFront(r.tradeoff, (t) => t.encoderParams, true);
      assert.deepEqual(new Set(drawn.filter((d) => d.pareto).map((d) => d.id)), front);
      const frontLine = await p.page.$eval('g.vt-front path', (e) => e.getAttribute('d') ?? '');
      // A step line: from each front point horizontally to the next point's size, then up to its metric.
      const vertices = [...frontLine.matchAll(/[ML]([-\d.]+),([-\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
      assert.equal(vertices.length, 2 * front.size - 1, `front line ${frontLine}`);
      for (let i = 1; i < vertices.length; i++) {
        const [dx, dy] = [vertices[i][0] - vertices[i - 1][0], vertices[i][1] - vertices[i - 1][1]];
        assert.ok(
          i % 2 === 1 ? Math.abs(dy) < 1e-6 : Math.abs(dx) < 1e-6,
          `segment ${i} of ${frontLine} is ${i % 2 ? 'horizontal' : 'vertical'}`,
        );
      }

      const rows = await p.page.$$eval('.vt-tradeoff-table tbody tr', (trs) =>
        trs.map((tr) => [...tr.children].map((c) => c.textContent ?? '')),
      );
      assert.equal(rows.length, r.tradeoff.length);
      const ft = r.tradeoff.findIndex((t) => t.source === 'finetuned' && t.keep === 0.4);
      assert.equal(rows[ft][0], 'Fine-tuned');
      assert.equal(rows[ft][2], fmtInt(r.tradeoff[ft].params));
      assert.equal(rows[ft][5], '84.06%');
      assert.equal(rows[ft][8], 'yes');
      const legend = await p.page.$$eval('.vt-legend-item', (li) => li.map((l) => l.textContent));
      assert.ok(
        legend.includes('Baseline: cofi') && legend.includes('Baseline: magnitude') && legend.includes('Pareto front (this run)'),
        legend.join('|'),
      );
      assert.deepEqual(p.blocked, []);
    } finally {
      await p.close();
      assert.deepEqual(p.errors, []);
    }
  });

  it('moves the budget marker when a budget message arrives, to where the sweep point of that size is', async () => {
    const r = bertReport();
    const p = await openPanel(browser, 'tradeoff');
    try {
      await show(p, r, 0.4);
      const x40 = await markerX(p);
      const sweepX = async (keep: number) => {
        const id = r.tradeoff.findIndex((t) => t.source === 'sweep' && t.keep === keep);
        return p.page.$eval(`.vt-point[data-point-id="${id}"]`, (c) => Number(c.getAttribute('cx')));
      };
      // Sweep points meet their budget exactly, so the marker at 40% sits on the 40% sweep point.
      assert.ok(Math.abs(x40 - (await sweepX(0.4))) < 0.5, `marker ${x40}`);
      await p.send({ type: 'budget', budget: { kind: 'encoder-params', keep: 0.6 } });
      await p.page.waitForFunction((old) => Number(document.querySelector('.vt-budget line')?.getAttribute('x1')) !== old, x40);
      const x60 = await markerX(p);
      assert.ok(x60 > x40 + 20, `${x60} vs ${x40}`);
      assert.ok(Math.abs(x60 - (await sweepX(0.6))) < 0.5);
      assert.match(
        await p.page.$eval('.vt-budget-caption', (e) => e.textContent ?? ''),
        /keep 60\.0% of encoder parameters = 1\.9M encoder parameters/,
      );
      // A prediction from the extension (masks re-thresholded) is drawn at the marker and named as such.
      await p.send({
        type: 'budget',
        budget: {
          kind: 'encoder-params',
          keep: 0.6,
          predicted: {
            kind: 'encoder-params',
            keep: 0.6,
            params: 9_907_808,
            encoderParams: 1_895_424,
            flopsPerToken: 4_100_000,
            metric: 0.8123,
            basis: 'rethreshold',
          },
        },
      });
      await p.page.waitForFunction(() => document.querySelector('.vt-budget-caption')?.textContent?.includes('re-thresholded'));
      assert.match(await p.page.$eval('.vt-predicted', (e) => e.getAttribute('aria-label') ?? ''), /81\.23%/);
      // A budget outside the drawn range redraws the chart with the marker in view.
      await p.send({ type: 'budget', budget: { kind: 'encoder-params', keep: 0.05 } });
      await p.page.waitForFunction(() => Number(document.querySelector('.vt-budget')?.getAttribute('data-budget-x')) < 200_000);
      const box = await p.page.$eval('svg.vt-plot', (svg) => {
        const line = svg.querySelector('.vt-budget line')!;
        return { x: Number(line.getAttribute('x1')), w: Number(svg.getAttribute('width')) };
      });
      assert.ok(box.x > 0 && box.x < box.w, JSON.stringify(box));
    } finally {
      await p.close();
      assert.deepEqual(p.errors, []);
    }
  });

  it('tooltips give exact figures; clicking a point offers "Export at this budget"; points are keyboard reachable', async () => {
    const r = bertReport();
    const p = await openPanel(browser, 'tradeoff');
    try {
      await show(p, r);
      const id = r.tradeoff.findIndex((t) => t.source === 'finetuned' && t.keep === 0.4);
      const pt = r.tradeoff[id];
      await p.page.hover(`.vt-point[data-point-id="${id}"]`);
      const tip = await p.page.waitForSelector('#vt-tradeoff-tooltip:not([hidden])');
      const text = (await tip.textContent()) ?? '';
      assert.ok(
        text.includes(fmtInt(pt.params)) && text.includes(fmtInt(pt.encoderParams)) && text.includes(fmtInt(pt.flopsPerToken)),
        text,
      );
      assert.ok(text.includes('84.06%') && !text.includes('0.8406') && text.includes('2.85 ms'), text);

      await p.page.click(`.vt-point[data-point-id="${id}"]`);
      await p.page.click('.vt-popover [data-action="export-at-budget"]');
      assert.deepEqual(await lastPosted(p, 'exportAtBudget'), { type: 'exportAtBudget', kind: 'encoder-params', keep: 0.4 });
      // The teacher is not a budget to export.
      const teacher = r.tradeoff.findIndex((t) => t.source === 'teacher');
      await p.page.click(`.vt-point[data-point-id="${teacher}"]`);
      assert.equal(await p.page.$('.vt-popover:not([hidden]) [data-action="export-at-budget"]'), null);
      await p.page.keyboard.press('Escape');

      // Tab reaches the points; Enter opens the same offer.
      await p.page.focus('body');
      let focused = '';
      for (let i = 0; i < 30 && !focused; i++) {
        await p.page.keyboard.press('Tab');
        focused = await p.page.evaluate(() =>
          document.activeElement?.classList.contains('vt-point') ? (document.activeElement.getAttribute('data-point-id') ?? '') : '',
        );
      }
      assert.ok(focused, 'no point reachable with Tab');
      assert.ok(await p.page.$('#vt-tradeoff-tooltip:not([hidden])'), 'focus shows the tooltip');
      await p.page.keyboard.press('Enter');
      assert.equal(await p.page.$eval('.vt-popover', (e) => e.getAttribute('data-point-id')), focused);
    } finally {
      await p.close();
      assert.deepEqual(p.errors, []);
    }
  });

  it('shows the other output shape beside the sweep, and exports a point in its shape', async () => {
    const base = bertReport();
    const uniform = base.tradeoff
      .filter((t) => t.source === 'sweep')
      .map((t): TradeoffPoint => ({
        ...t,
        source: 'sweep:uniform',
        shape: 'uniform',
        params: Math.round(t.params * 0.97),
        metric: t.metric! - 0.02,
      }));
    const r: RunReport = {
      ...base,
      tradeoff: [...base.tradeoff.map((t) => (t.source === 'sweep' ? { ...t, shape: 'heterogeneous' as const } : t)), ...uniform],
    };
    r.tradeoff.sort((a, b) => a.params - b.params);
    const p = await openPanel(browser, 'tradeoff');
    try {
      await show(p, r);
      const legend = await p.page.$$eval('.vt-legend-item', (li) => li.map((l) => l.textContent));
      assert.ok(legend.includes('Sweep, uniform shape: loads in stock transformers'), legend.join('|'));
      const id = r.tradeoff.findIndex((t) => t.source === 'sweep:uniform' && t.keep === 0.4);
      await p.page.hover(`.vt-point[data-point-id="${id}"]`);
      const tip = await p.page.waitForSelector('#vt-tradeoff-tooltip:not([hidden])');
      assert.ok((await tip.textContent())?.includes('uniform'));
      await p.page.click(`.vt-point[data-point-id="${id}"]`);
      await p.page.click('.vt-popover [data-action="export-at-budget"]');
      assert.deepEqual(await lastPosted(p, 'exportAtBudget'), {
        type: 'exportAtBudget',
        kind: 'encoder-params',
        keep: 0.4,
        shape: 'uniform',
      });
      const rows = await p.page.$$eval('.vt-tradeoff-table tbody th', (ths) => ths.map((th) => th.textContent));
      assert.ok(rows.includes('Sweep, uniform'), rows.join('|'));
    } finally {
      await p.close();
      assert.deepEqual(p.errors, []);
    }
  });

  it('switches the x axis to FLOPs and to measured latency, and keeps the choice in the state', async () => {
    const r = bertReport();
    const p = await openPanel(browser, 'tradeoff');
    try {
      await show(p, r);
      await p.page.click('vscode-radio[value="flopsPerToken"]');
      await p.page.waitForFunction(() => document.querySelector('svg.vt-plot')?.getAttribute('aria-label')?.includes('flops per token'));
      assert.equal((await p.state())?.axis, 'flopsPerToken');
      const front = expectedFront(r.tradeoff, (t) => t.flopsPerToken, true);
      const pareto = await p.page.$$eval('.vt-point.vt-pareto', (els) => els.map((e) => Number(e.getAttribute('data-point-id'))));
      assert.deepEqual(new Set(pareto), front);

      await p.page.click('vscode-radio[value="latency1"]');
      await p.page.waitForFunction(() => document.querySelector('svg.vt-plot')?.getAttribute('aria-label')?.includes('latency'));
      const withLatency = r.tradeoff.filter((t) => t.latencyMs?.['1'] != null && t.metric != null).length;
      assert.equal(await p.page.$$eval('.vt-point', (els) => els.length), withLatency);
    } finally {
      await p.close();
      assert.deepEqual(p.errors, []);
    }
  });

  it('exports CSV, SVG and PNG through saveFile messages', async () => {
    const r = bertReport();
    const p = await openPanel(browser, 'tradeoff');
    try {
      await show(p, r);
      await p.page.click('vscode-button:has-text("Export CSV")');
      await p.page.click('vscode-button:has-text("Export SVG")');
      await p.page.click('vscode-button:has-text("Export PNG")');
      await p.page.waitForFunction(() =>
        (window as unknown as { __posted: { type: string; format?: string }[] }).__posted.some(
          (m) => m.type === 'saveFile' && m.format === 'png',
        ),
      );
      const files = (await p.posted()).filter((m): m is Extract<FromWebview, { type: 'saveFile' }> => m.type === 'saveFile');
      const csv = files.find((f) => f.format === 'csv')!;
      assert.equal(csv.suggestedName, `${r.runId}-tradeoff.csv`);
      const lines = csv.content.trim().split('\n');
      assert.equal(lines[0], 'source,keep,kind,params,encoder_params,flops_per_token,accuracy,latency_ms_b1,latency_ms_b32,pareto_params');
      assert.equal(lines.length, 1 + r.tradeoff.length);
      assert.ok(
        lines.includes(
          `teacher,1,encoder-params,${r.teacher.params},${r.teacher.encoderParams},${r.teacher.flopsPerToken},0.8578,3.246,45.98,1`,
        ),
        lines.join('\n'),
      );
      const svg = files.find((f) => f.format === 'svg')!;
      assert.ok(
        svg.content.startsWith('<?xml') && svg.content.includes('<svg') && !svg.content.includes('var(--'),
        'SVG resolves theme variables',
      );
      assert.equal((svg.content.match(/data-point-id=/g) ?? []).length, r.tradeoff.length);
      const png = files.find((f) => f.format === 'png')!;
      assert.equal(png.encoding, 'base64');
      const bytes = Buffer.from(png.content, 'base64');
      assert.deepEqual([...bytes.subarray(1, 4)], [0x50, 0x4e, 0x47]);
      assert.ok(bytes.length > 5000, `PNG of ${bytes.length} bytes`);
    } finally {
      await p.close();
      assert.deepEqual(p.errors, []);
    }
  });

  it('perplexity runs: lower is better for the axis and the front (LLaMA-2-7B)', async () => {
    const r = llamaReport();
    const p = await openPanel(browser, 'tradeoff', { theme: 'dark' });
    try {
      await show(p, r);
      const svgText = await p.page.$eval('svg.vt-plot', (s) => s.textContent ?? '');
      assert.ok(svgText.includes('Perplexity (lower is better)'), svgText);
      const front = expectedFront(r.tradeoff, (t) => t.params, false);
      const pareto = await p.page.$$eval('.vt-point.vt-pareto', (els) => els.map((e) => Number(e.getAttribute('data-point-id'))));
      assert.deepEqual(new Set(pareto), front);
      assert.ok(front.has(r.tradeoff.findIndex((t) => t.source === 'finetuned')));
      assert.ok(!front.has(r.tradeoff.findIndex((t) => t.source === 'baseline:llm-pruner')) && pareto.length >= 3);
    } finally {
      await p.close();
      assert.deepEqual(p.errors, []);
    }
  });

  it('restores the axis from the saved state after a reload and says when a run has no points', async () => {
    const r = bertReport();
    const p = await openPanel(browser, 'tradeoff', { state: { panel: 'tradeoff', runDir: RUN, axis: 'flopsPerToken' } });
    try {
      const ready = (await p.posted())[0];
      assert.deepEqual(ready, { type: 'ready', panel: 'tradeoff', state: { panel: 'tradeoff', runDir: RUN, axis: 'flopsPerToken' } });
      await show(p, r);
      assert.ok(await p.page.$eval('vscode-radio[value="flopsPerToken"]', (e) => (e as unknown as { checked: boolean }).checked));
      assert.match((await p.page.$eval('svg.vt-plot', (s) => s.getAttribute('aria-label'))) ?? '', /flops per token/);

      const running = { ...failedRun(), status: 'running' as const, tradeoff: [] };
      await p.send({ type: 'show', panel: 'tradeoff', runDir: RUN + '-2', report: running, budget: null });
      await p.page.waitForSelector('.vt-state-empty');
      assert.match(await p.page.$eval('.vt-tradeoff', (e) => e.textContent ?? ''), /No tradeoff points yet/);
      assert.equal(await p.page.$$eval('.vt-point', (e) => e.length), 0);
    } finally {
      await p.close();
      assert.deepEqual(p.errors, []);
    }
  });
});
