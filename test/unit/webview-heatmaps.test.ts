/**
 * The heatmaps panel in headless chromium: one cell per head, pruned heads crossed out, colour per metric,
 * per-layer FFN bars and removed sublayers, hidden width, tooltips, keyboard moves, and the large grids
 * (LLaMA-2-7B 32 × 32, GPT-2 XL 48 × 25). Render times go to test-output/webview-timings.json as a record;
 * nothing here asserts a time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { fmtInt } from '../../src/core/findings';
import type { RunReport } from '../../src/core/report';
import { bertReport, emptyRun, failedRun, gpt2xlReport, llamaReport } from '../fixtures/reports/generate';
import { ensureBundle, launchChromium, openPanel, recordTiming, type PanelPage } from './helpers/webviewBrowser';

let browser: Browser;
before(async () => {
  ensureBundle();
  browser = await launchChromium();
});
after(async () => browser?.close());

async function show(p: PanelPage, report: RunReport) {
  await p.send({ type: 'show', panel: 'heatmaps', runDir: `/runs/${report.runId}`, report, budget: null });
}

const prunedHeads = (r: RunReport) =>
  r.layers.flatMap((l) => l.heads.filter((h) => !(h.kept && l.attentionKept)).map((h) => `${l.index}:${h.index}`));

async function pickMetric(p: PanelPage, label: string) {
  await p.page.click('vscode-single-select');
  await p.page.locator('vscode-single-select').getByText(label, { exact: true }).filter({ visible: true }).first().click();
}

describe('heatmaps panel', () => {
  it('draws a layers × heads grid with pruned heads crossed out, FFN bars, removed sublayers and the hidden width (BERT 4 × 4)', async () => {
    const r = bertReport();
    const p = await openPanel(browser, 'heatmaps');
    try {
      await show(p, r);
      await p.page.waitForSelector('svg.vt-grid');
      const cells = await p.page.$$eval('rect.vt-cell[data-head]', (els) =>
        els.map((e) => ({
          l: Number(e.getAttribute('data-layer')),
          h: Number(e.getAttribute('data-head')),
          pruned: e.classList.contains('pruned'),
          op: Number(e.getAttribute('fill-opacity')),
          cls: e.getAttribute('class'),
        })),
      );
      assert.equal(cells.length, r.model.layers * r.model.heads);
      assert.deepEqual(
        cells.filter((c) => c.pruned).map((c) => `${c.l}:${c.h}`),
        prunedHeads(r),
      );
      // Pruned is marked by a cross per cell (two strokes each), not by colour alone.
      const marks = await p.page.$eval('path.vt-pruned-marks', (e) => ({
        d: e.getAttribute('d') ?? '',
        n: Number(e.getAttribute('data-count')),
      }));
      assert.equal(marks.n, prunedHeads(r).length);
      assert.equal((marks.d.match(/M/g) ?? []).length, 2 * prunedHeads(r).length);
      // Default metric: attention on special tokens; opacity grows with the value.
      assert.equal(await p.page.$eval('.vt-legend-title', (e) => e.textContent), 'Attention on special tokens');
      const byValue = cells.map((c) => ({ v: r.layers[c.l].heads[c.h].probes!.special!, op: c.op })).sort((a, b) => a.v - b.v);
      for (let i = 1; i < byValue.length; i++) assert.ok(byValue[i].op >= byValue[i - 1].op, 'opacity follows the value');

      const bars = await p.page.$$eval('rect.vt-ffn-bar', (els) =>
        els.map((e) => [Number(e.getAttribute('data-kept')), Number(e.getAttribute('data-total')), Number(e.getAttribute('width'))]),
      );
      assert.deepEqual(
        bars.map((b) => [b[0], b[1]]),
        r.layers.map((l) => [l.ffnKept ? l.ffn.kept : 0, l.ffn.total]),
      );
      for (const [kept, total, w] of bars) assert.ok(Math.abs(w - (100 * kept) / total) < 0.1);
      const removed = await p.page.$$eval('rect.vt-sublayer.removed', (els) =>
        els.map((e) => `${e.getAttribute('data-layer')}:${e.getAttribute('data-part')}`),
      );
      assert.deepEqual(
        removed,
        r.layers.flatMap((l) => [...(l.attentionKept ? [] : [`${l.index}:attention`]), ...(l.ffnKept ? [] : [`${l.index}:ffn`])]),
      );
      assert.equal(
        await p.page.$eval('.vt-hidden-kept .vt-summary-value', (e) => e.textContent),
        `${r.hiddenKept!.kept} of ${r.hiddenKept!.total} (100.0%)`,
      );
      assert.match(
        await p.page.$eval('.vt-heads-kept .vt-summary-value', (e) => e.textContent ?? ''),
        new RegExp(`^${r.units!.heads.kept} of ${r.units!.heads.total} `),
      );
    } finally {
      await p.close();
      assert.deepEqual(p.errors, []);
    }
  });

  it('tooltips give the exact figures of a cell; arrow keys move between cells; the metric is kept in the state', async () => {
    const r = bertReport();
    const p = await openPanel(browser, 'heatmaps');
    try {
      await show(p, r);
      await p.page.waitForSelector('svg.vt-grid');
      const head = r.layers[2].heads[1];
      await p.page.hover('rect.vt-cell[data-layer="2"][data-head="1"]');
      const tip = (await (await p.page.waitForSelector('#vt-heatmap-tooltip:not([hidden])')).textContent()) ?? '';
      assert.ok(tip.startsWith(`Layer 2 · head 1 — ${head.kept ? 'kept' : 'pruned'}`), tip);
      assert.ok(tip.includes(head.logAlpha.toFixed(4)), tip);
      for (const probe of ['special', 'current', 'previous', 'keywords'] as const)
        assert.ok(tip.includes(`${(100 * head.probes![probe]!).toFixed(2)}%`), `${probe}: ${tip}`);
      assert.ok(tip.includes(`${head.probes!.entropy!.toFixed(4)} nats`), tip);

      // One tab stop for the grid; arrows move it.
      assert.equal(await p.page.$$eval('rect.vt-cell[tabindex="0"]', (e) => e.length), 1);
      await p.page.focus('rect.vt-cell[tabindex="0"]');
      await p.page.keyboard.press('ArrowRight');
      await p.page.keyboard.press('ArrowDown');
      await p.page.keyboard.press('ArrowDown');
      const at = await p.page.evaluate(() => [
        document.activeElement?.getAttribute('data-layer'),
        document.activeElement?.getAttribute('data-head'),
      ]);
      assert.deepEqual(at, ['2', '1']);
      assert.match((await p.page.$eval('#vt-heatmap-tooltip', (e) => e.textContent)) ?? '', /^Layer 2 · head 1/);
      await p.page.keyboard.press('End');
      assert.equal(await p.page.evaluate(() => document.activeElement?.getAttribute('data-head')), String(r.model.heads - 1));
      assert.deepEqual((await p.state())?.focus, [2, r.model.heads - 1]);

      await pickMetric(p, 'Retention score log α');
      await p.page.waitForFunction(() => document.querySelector('.vt-legend-title')?.textContent === 'Retention score log α');
      assert.equal((await p.state())?.metric, 'logAlpha');
      // log α: kept heads on one side of the threshold, pruned on the other.
      const sides = await p.page.$$eval('rect.vt-cell[data-head]', (els) =>
        els.map((e) => [e.classList.contains('pos'), e.getAttribute('data-kept') === '1']),
      );
      for (const [pos, kept] of sides) assert.equal(pos, kept);
    } finally {
      await p.close();
      assert.deepEqual(p.errors, []);
    }
  });

  for (const [name, make] of [
    ['LLaMA-2-7B 32 × 32', llamaReport],
    ['GPT-2 XL 48 × 25', gpt2xlReport],
  ] as const) {
    it(`draws the ${name} grid (render time recorded)`, async () => {
      const r = make();
      const p = await openPanel(browser, 'heatmaps', { width: 1400 });
      try {
        await show(p, r);
        await p.page.waitForSelector('svg.vt-grid');
        const counts = await p.page.$eval('svg.vt-grid', (svg) => ({
          cells: svg.querySelectorAll('rect.vt-cell[data-head]').length,
          pruned: svg.querySelectorAll('rect.vt-cell.pruned').length,
          rows: svg.querySelectorAll('g[role="row"]').length,
          bars: svg.querySelectorAll('rect.vt-ffn-bar').length,
          attnRemoved: svg.querySelectorAll('rect.vt-sublayer.removed[data-part="attention"]').length,
          ms: Number(svg.parentElement?.dataset.renderMs),
        }));
        assert.equal(counts.cells, r.model.layers * r.model.heads);
        assert.equal(counts.rows, r.model.layers);
        assert.equal(counts.bars, r.model.layers);
        assert.equal(counts.pruned, prunedHeads(r).length);
        assert.equal(counts.attnRemoved, r.layers.filter((l) => !l.attentionKept).length);
        // Switching the metric redraws the whole grid; time both draws.
        await pickMetric(p, 'Attention entropy (nats)');
        await p.page.waitForFunction(() => document.querySelector('.vt-legend-title')?.textContent === 'Attention entropy (nats)');
        const timings = await p.page.evaluate(() => window.__vtransTimings ?? []);
        assert.equal(timings.length, 2);
        for (const t of timings) assert.equal(t.cells, r.model.layers * r.model.heads);
        recordTiming({
          bench: 'heatmap-grid',
          model: name,
          layers: r.model.layers,
          heads: r.model.heads,
          firstMs: timings[0].ms,
          redrawMs: timings[1].ms,
          budgetMs: 300,
        });
        console.log(`# ${name}: grid drawn in ${timings[0].ms} ms, redrawn in ${timings[1].ms} ms (target ≤ 300 ms)`);
        if (r.hiddenKept!.kept < r.hiddenKept!.total) {
          assert.match(
            await p.page.$eval('.vt-hidden-kept .vt-summary-value', (e) => e.textContent ?? ''),
            new RegExp(`^${fmtInt(r.hiddenKept!.kept)} of ${fmtInt(r.hiddenKept!.total)}`),
          );
        }
      } finally {
        await p.close();
        assert.deepEqual(p.errors, []);
      }
    });
  }

  it('without probes (a failed run) offers log α only and says why; an empty run says what to wait for', async () => {
    const p = await openPanel(browser, 'heatmaps', { theme: 'dark' });
    try {
      const r = failedRun();
      await show(p, r);
      await p.page.waitForSelector('svg.vt-grid');
      assert.equal(await p.page.$eval('.vt-legend-title', (e) => e.textContent), 'Retention score log α');
      assert.match(await p.page.$eval('.vt-heatmaps', (e) => e.textContent ?? ''), /No attention probes in this report/);
      assert.match(await p.page.$eval('.vt-banner', (e) => e.textContent ?? ''), /This run failed/);
      const disabled = await p.page.$$eval('vscode-option[disabled]', (els) => els.map((e) => e.getAttribute('value')));
      assert.deepEqual(disabled, ['special', 'current', 'previous', 'keywords', 'entropy']);
      assert.equal(await p.page.$$eval('rect.vt-cell[data-head]', (e) => e.length), 16);

      await show(p, emptyRun());
      await p.page.waitForSelector('.vt-state-empty');
      assert.match(await p.page.$eval('.vt-state-empty', (e) => e.textContent ?? ''), /No masks yet/);
      assert.equal(await p.page.$('svg.vt-grid'), null);
    } finally {
      await p.close();
      assert.deepEqual(p.errors, []);
    }
  });
});
