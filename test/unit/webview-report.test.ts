/**
 * The head-retention report panel and the states every panel shares (loading, empty, error, unreadable
 * report), rendered in headless chromium from the real bundle.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { computeFindings, fmtInt } from '../../src/core/findings';
import type { FromWebview, PanelKind } from '../../src/core/webviewProtocol';
import { bertReport, emptyRun, llamaReport } from '../fixtures/reports/generate';
import { ensureBundle, launchChromium, openPanel } from './helpers/webviewBrowser';

let browser: Browser;
before(async () => {
  ensureBundle();
  browser = await launchChromium();
});
after(async () => browser?.close());

describe('head-retention report panel', () => {
  it('says how to load model/ in its output shape, with the lines to copy', async () => {
    const python =
      "from transformers import AutoModelForSequenceClassification\nmodel = AutoModelForSequenceClassification.from_pretrained('/runs/a/model')";
    const r = {
      ...bertReport(),
      load: {
        shape: 'uniform' as const,
        modelDir: '/runs/a/model',
        autoClass: 'AutoModelForSequenceClassification',
        trustRemoteCode: false,
        pipelineTask: 'text-classification',
        python,
        onnxPython: 'import onnxruntime as ort',
      },
    };
    const p = await openPanel(browser, 'report');
    try {
      await p.send({ type: 'show', panel: 'report', runDir: '/runs/a', report: r, budget: null });
      await p.page.waitForSelector('.vt-report');
      assert.match((await p.page.$eval('[data-shape]', (e) => e.textContent)) ?? '', /^Uniform shape: .*stock transformers/);
      assert.equal(await p.page.$eval('[data-code="transformers"]', (e) => e.textContent), python);
      assert.ok(await p.page.$('[data-action="copy-transformers"]'));
      assert.ok(await p.page.$('[data-code="onnx"]'));
    } finally {
      await p.close();
      assert.deepEqual(p.errors, []);
    }
  });

  it('shows the summary, the findings, per layer the heads kept and pruned with their probes, and exports', async () => {
    const r = bertReport();
    const p = await openPanel(browser, 'report');
    try {
      await p.send({ type: 'show', panel: 'report', runDir: '/runs/a', report: r, budget: null });
      await p.page.waitForSelector('.vt-report');
      const summary = await p.page.$$eval('.vt-summary-table tbody tr', (trs) =>
        trs.map((tr) => [...tr.children].map((c) => c.textContent)),
      );
      assert.deepEqual(summary[0], [
        'Parameters',
        fmtInt(r.teacher.params),
        fmtInt(r.student!.params),
        `${((100 * r.student!.params) / r.teacher.params).toFixed(1)}% kept`,
      ]);
      assert.deepEqual(summary[3].slice(0, 3), ['Accuracy (higher is better)', '85.78%', '84.06%']);
      const findings = await p.page.$$eval('.vt-finding', (li) => li.map((l) => l.textContent));
      assert.deepEqual(
        findings,
        computeFindings(r).map((f) => f.text),
      );

      const layers = await p.page.$$eval('.vt-layer-table tbody tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
      assert.equal(layers.length, r.layers.length);
      r.layers.forEach((l, i) => {
        const kept = l.heads.filter((h) => h.kept && l.attentionKept);
        const pruned = l.heads.filter((h) => !(h.kept && l.attentionKept)).map((h) => h.index);
        assert.equal(layers[i][1], `${kept.length} of ${l.heads.length}`);
        assert.equal(layers[i][2], pruned.length ? pruned.join(', ') : 'none');
        assert.equal(layers[i][6], l.ffnKept ? 'kept' : '✕ removed');
      });
      // Per-head tables, one per layer, with status in words and the probe figures.
      const heads = await p.page.$$eval('.vt-layer-details', (ds) =>
        ds.map((d) => [...d.querySelectorAll('tbody tr')].map((tr) => [...tr.children].map((c) => c.textContent))),
      );
      assert.equal(heads.length, r.layers.length);
      const h = r.layers[1].heads[2];
      assert.deepEqual(heads[1][2].slice(0, 4), [
        '2',
        h.kept ? 'kept' : '✕ pruned',
        h.logAlpha.toFixed(3),
        `${(h.probes!.special! * 100).toFixed(1)}%`,
      ]);

      // Opening a layer is remembered for the next reload.
      await p.page.click('.vt-layer-details[data-layer="2"] > summary');
      await p.page.waitForFunction(() => (window as unknown as { __state: { openLayers?: number[] } }).__state?.openLayers?.includes(2));

      await p.page.click('[data-action="export-md"]');
      await p.page.click('[data-action="export-html"]');
      const exports = (await p.posted()).filter((m) => m.type === 'exportReport');
      assert.deepEqual(exports, [
        { type: 'exportReport', format: 'md' },
        { type: 'exportReport', format: 'html' },
      ]);
      assert.equal(await p.page.$('[data-action="download-md"]'), null, 'downloads are for the standalone page');
    } finally {
      await p.close();
      assert.deepEqual(p.errors, []);
    }
  });

  it('lists a large model (LLaMA-2-7B) layer by layer', async () => {
    const r = llamaReport();
    const p = await openPanel(browser, 'report', { state: { panel: 'report', runDir: '/runs/b', openLayers: [22] } });
    try {
      await p.send({ type: 'show', panel: 'report', runDir: '/runs/b', report: r, budget: null });
      await p.page.waitForSelector('.vt-report');
      assert.equal(await p.page.$$eval('.vt-layer-table tbody tr', (e) => e.length), 32);
      assert.equal(await p.page.$$eval('.vt-head-table tbody tr', (e) => e.length), 1024);
      assert.equal(await p.page.$$eval('.vt-layer-details[open]', (e) => e.map((d) => d.getAttribute('data-layer')).join()), '22');
      assert.match(await p.page.$eval('.vt-layer-table tbody tr[data-layer="22"]', (e) => e.textContent ?? ''), /✕ removed/);
    } finally {
      await p.close();
      assert.deepEqual(p.errors, []);
    }
  });
});

describe('panel states', () => {
  for (const panel of ['tradeoff', 'heatmaps', 'report'] as PanelKind[]) {
    it(`${panel}: loading, empty (no run yet) with its actions, and the error state with the reason`, async () => {
      const p = await openPanel(browser, panel);
      try {
        // Before the extension answers, the panel says it is loading.
        assert.ok(await p.page.$('.vt-state-loading'));
        await p.send({
          type: 'empty',
          message: 'No run yet: run VTrans: Compress Model to compress a model of this workspace, or open an existing run.',
          actions: [{ label: 'Compress Model', command: 'vtrans.compress' }],
        });
        const empty = await p.page.waitForSelector('.vt-state-empty');
        assert.match((await empty.textContent()) ?? '', /No run yet: run VTrans: Compress Model/);
        await p.page.click('.vt-state-empty vscode-button[data-command="vtrans.compress"]');
        assert.deepEqual((await p.posted()).pop(), { type: 'runCommand', command: 'vtrans.compress' });

        await p.send({
          type: 'error',
          message: 'report.json could not be read: Unexpected token } in JSON at position 312',
          detail: '/runs/x/report.json',
          runDir: '/runs/x',
        });
        const err = await p.page.waitForSelector('.vt-state-error[role="alert"]');
        const text = (await err.textContent()) ?? '';
        assert.match(text, /report\.json could not be read: Unexpected token \} in JSON at position 312/);
        assert.match(text, /\/runs\/x\/report\.json/);
        await p.page.click('.vt-state-error vscode-button:has-text("Reload")');
        await p.page.click('.vt-state-error vscode-button:has-text("Open Run")');
        const last: FromWebview[] = (await p.posted()).slice(-2);
        assert.deepEqual(last, [{ type: 'requestState' }, { type: 'openRun' }]);
      } finally {
        await p.close();
        assert.deepEqual(p.errors, []);
      }
    });
  }

  it('a report.json the views do not understand is an error that says why, not a blank panel', async () => {
    const p = await openPanel(browser, 'tradeoff');
    try {
      const bad = { ...bertReport(), version: 2 } as unknown as ReturnType<typeof bertReport>;
      await p.send({ type: 'show', panel: 'tradeoff', runDir: '/runs/v2', report: bad, budget: null });
      const err = await p.page.waitForSelector('.vt-state-error');
      assert.match((await err.textContent()) ?? '', /report\.json could not be read: its version is 2; this extension reads version 1/);
      const noLayers = { ...bertReport(), layers: [{ index: 0 }] } as unknown as ReturnType<typeof bertReport>;
      await p.send({ type: 'show', panel: 'tradeoff', runDir: '/runs/v2', report: noLayers, budget: null });
      await p.page.waitForFunction(() => document.querySelector('.vt-state-error')?.textContent?.includes('layers[0] lacks'));
    } finally {
      await p.close();
      assert.deepEqual(p.errors, []);
    }
  });

  it('a running run with no student yet shows what exists and says the run is still running', async () => {
    const p = await openPanel(browser, 'report');
    try {
      await p.send({ type: 'show', panel: 'report', runDir: '/runs/e', report: emptyRun(), budget: null });
      await p.page.waitForSelector('.vt-report');
      const text = (await p.page.$eval('.vt-report', (e) => e.textContent)) ?? '';
      assert.match(text, /This run is still running/);
      assert.match(text, /No compressed model yet: the run is still running\./);
      assert.match(text, /No per-layer data yet/);
    } finally {
      await p.close();
      assert.deepEqual(p.errors, []);
    }
  });
});
