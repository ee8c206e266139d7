/**
 * report.html: one self-contained file from a fixture report and the real bundle, opened from a file:// URL
 * in headless chromium with the network off. It must show the same figures as the panels, make no request,
 * run under its own CSP, and turn extension-only actions into downloads or hide them.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { computeFindings, fmtInt } from '../../src/core/findings';
import type { RunReport } from '../../src/core/report';
import { renderReportHtml, renderReportMarkdown, scriptJson, scriptSafeJs } from '../../src/core/reportHtml';
import { bertReport, gpt2xlReport } from '../fixtures/reports/generate';
import { ensureBundle, launchChromium, ROOT } from './helpers/webviewBrowser';

let browser: Browser;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vtrans-reporthtml-'));
before(async () => {
  ensureBundle();
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function writeReport(r: RunReport, name: string): string {
  const js = fs.readFileSync(path.join(ROOT, 'dist', 'webview.js'), 'utf8');
  const css = fs.readFileSync(path.join(ROOT, 'media', 'webview.css'), 'utf8');
  const file = path.join(tmp, name, 'report.html');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, renderReportHtml(r, js, css));
  return file;
}

async function open(file: string, colorScheme: 'light' | 'dark' = 'light') {
  const context = await browser.newContext({ offline: true, colorScheme, acceptDownloads: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (req) => requests.push(req.url()));
  page.on('dialog', (d) => {
    errors.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  await page.goto(pathToFileURL(file).href);
  await page.waitForSelector('.vt-report');
  return { page, context, errors, requests };
}

const text = (page: Page, sel: string) => page.$eval(sel, (e) => e.textContent ?? '');

describe('report.html', () => {
  it('opens offline from file:// and shows the same figures, findings, chart and grid', async () => {
    const r = bertReport();
    const { page, context, errors, requests } = await open(writeReport(r, 'bert'));
    try {
      const summary = await page.$$eval('.vt-summary-table tbody tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
      assert.deepEqual(summary[0].slice(0, 3), ['Parameters', fmtInt(r.teacher.params), fmtInt(r.student!.params)]);
      assert.deepEqual(summary[3].slice(0, 3), ['Accuracy (higher is better)', '85.78%', '84.06%']);
      assert.deepEqual(
        await page.$$eval('.vt-finding', (li) => li.map((l) => l.textContent)),
        computeFindings(r).map((f) => f.text),
      );
      await page.waitForSelector('svg.vt-plot .vt-point');
      assert.equal(await page.$$eval('.vt-point', (e) => e.length), r.tradeoff.length);
      assert.equal(await page.$$eval('rect.vt-cell[data-head]', (e) => e.length), 16);
      // The marker stands at the run's own budget.
      assert.equal(Number(await page.$eval('.vt-budget', (e) => e.getAttribute('data-budget-x'))), r.budget.keep * r.teacher.encoderParams);
      // No extension here: no "Export at this budget", no panel export buttons; Markdown is a download.
      assert.equal(await page.$('[data-action="export-at-budget"]'), null);
      assert.equal(await page.$('[data-action="export-md"]'), null);
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-action="download-md"]')]);
      assert.equal(download.suggestedFilename(), `${r.runId}-report.md`);
      const saved = path.join(tmp, 'downloaded.md');
      await download.saveAs(saved);
      assert.equal(fs.readFileSync(saved, 'utf8'), renderReportMarkdown(r));
      // Clicking a point still shows its figures, with a pointer to VS Code for the export.
      const ft = r.tradeoff.findIndex((t) => t.source === 'finetuned' && t.keep === 0.4);
      await page.click(`.vt-point[data-point-id="${ft}"]`);
      assert.match(await text(page, '.vt-popover'), /Export at Current Budget/);
      const title = await page.title();
      assert.equal(title, `VTrans report — ${r.runId}`);
      // Light by default.
      assert.equal(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(255, 255, 255)');
      const csp = await page.evaluate(
        () => document.querySelector('meta[http-equiv="Content-Security-Policy"]')?.getAttribute('content') ?? '',
      );
      assert.match(csp, /default-src 'none'/);
      assert.deepEqual(
        requests.filter((u) => !u.startsWith('file:') && !u.startsWith('data:') && !u.startsWith('blob:')),
        [],
      );
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  it('follows a dark OS theme and draws the GPT-2 XL grid', async () => {
    const r = gpt2xlReport();
    const { page, context, errors } = await open(writeReport(r, 'gpt2xl'), 'dark');
    try {
      await page.waitForSelector('svg.vt-grid');
      assert.equal(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(31, 31, 31)');
      assert.equal(await page.$$eval('rect.vt-cell[data-head]', (e) => e.length), 48 * 25);
      assert.match(await text(page, '.vt-finding[data-finding="special"]'), /does not confirm/);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  it('embeds hostile strings as data, not markup', async () => {
    const r = bertReport();
    r.runId = 'run</script><script>alert(1)</script><!--';
    r.model = { ...r.model, dir: '<img src=x onerror=alert(2)>' };
    const file = writeReport(r, 'hostile');
    const html = fs.readFileSync(file, 'utf8');
    assert.equal((html.match(/<script/g) ?? []).length, 2, 'only the JSON and the bundle are scripts');
    const { page, context, errors } = await open(file);
    try {
      assert.equal(await page.title(), `VTrans report — ${r.runId}`);
      assert.ok((await text(page, '.vt-report .vt-runid')).includes('</script>'));
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  it('script escaping keeps JSON and code meaning', () => {
    const v = { a: '</script><!-- \u2028', b: [1, 2] };
    const json = scriptJson(v);
    assert.ok(!json.includes('<'));
    assert.deepEqual(JSON.parse(json), v);
    const js = scriptSafeJs('const s = "</script>", t = `<!--`; const r = /<!--<\\/script>/u;\n//# sourceMappingURL=webview.js.map\n');
    assert.ok(!/<\/script/i.test(js) && !js.includes('<!--') && !js.includes('sourceMappingURL'));
    const f = new Function(`${js}; return [s, t, r.test('<!--</script>')];`) as () => [string, string, boolean];
    assert.deepEqual(f(), ['</script>', '<!--', true]);
  });
});
