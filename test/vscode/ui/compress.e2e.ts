/**
 * The UI test (started by `node test/vscode/run.mjs e2e`): code-server with the packaged .vsix installed and a
 * workspace holding the spam-classifier demo, driven through Debian's chromium like a user would:
 *   VTrans: Compress Model from the command palette → the pickers (training data, eval data, confirm) →
 *   the progress notification → the result notification → Show Tradeoff → vtrans.budget.keep changed in the
 *   Settings editor and in .vscode/settings.json (status bar text and tradeoff marker move) → heatmaps → report
 *   (findings and figures against the run's report.json) → report.html offline from file://.
 * Every step is captured in the light and the dark theme under test-output/e2e/.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FrameLocator, Page } from 'playwright-core';
import { computeFindings, fmtCount, fmtInt, fmtMetric } from '../../../src/core/findings';
import { formatCount } from '../../../src/core/inspect';
import type { RunReport } from '../../../src/core/report';

const BASE = need('VTRANS_E2E_BASE');
const WS = need('VTRANS_E2E_WORKSPACE');
const OUT = path.join(need('VTRANS_E2E_OUT'), 'e2e');
const COMPRESS_TIMEOUT_MS = Number(process.env.VTRANS_E2E_TIMEOUT ?? 900) * 1000;

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this through node test/vscode/run.mjs e2e`);
  return v;
}

/** Checks that do not stop the walk-through; any failure fails the test at the end. */
const softFailures: string[] = [];
function softCheck(ok: boolean, what: string): void {
  if (!ok) {
    softFailures.push(what);
    log(`CHECK FAILED: ${what}`);
  }
}

const t0 = Date.now();
const log = (...a: unknown[]) => console.log(`[e2e ${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Theme = 'light' | 'dark';
const THEMES: Record<Theme, { cls: string }> = { light: { cls: 'vs' }, dark: { cls: 'vs-dark' } };
let theme: Theme = 'light';

/** Switches between the preferred light and dark themes from the command palette. */
async function setTheme(page: Page, next: Theme): Promise<void> {
  if (next === theme) return;
  await runCommand(page, 'Toggle between Light/Dark Themes');
  await page.waitForFunction((cls) => document.querySelector('.monaco-workbench')?.classList.contains(cls), THEMES[next].cls, {
    timeout: 20_000,
  });
  theme = next;
  await sleep(700); // webviews re-style on the theme change message
}

let shotNo = 0;
/** A screenshot of the step in both themes (back to light afterwards). */
async function shot(page: Page, name: string, { both = true } = {}): Promise<void> {
  const n = String(++shotNo).padStart(2, '0');
  await page.screenshot({ path: path.join(OUT, `${n}-${name}-light.png`) });
  if (!both) return;
  await setTheme(page, 'dark');
  await page.screenshot({ path: path.join(OUT, `${n}-${name}-dark.png`) });
  await setTheme(page, 'light');
}

async function openPalette(page: Page): Promise<void> {
  await page
    .locator('.monaco-workbench')
    .click({ position: { x: 700, y: 300 } })
    .catch(() => {});
  await page.keyboard.press('F1');
  await page.locator('.quick-input-widget input').waitFor({ state: 'visible', timeout: 15_000 });
}

async function runCommand(page: Page, title: string): Promise<void> {
  await openPalette(page);
  const input = page.locator('.quick-input-widget input');
  await input.fill('>' + title);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  await row.waitFor({ state: 'visible', timeout: 15_000 });
  await page.keyboard.press('Enter');
}

/** Waits for a quick pick titled `title`, filters it with `filter` and picks the row containing `rowText`. */
async function pick(page: Page, title: string | RegExp, rowText: string | RegExp, filter?: string): Promise<string> {
  const widget = page.locator('.quick-input-widget');
  await widget.locator('.quick-input-title', { hasText: title }).waitFor({ state: 'visible', timeout: 60_000 });
  if (filter) await widget.locator('input').fill(filter);
  const row = widget.locator('.quick-input-list .monaco-list-row', { hasText: rowText }).first();
  await row.waitFor({ state: 'visible', timeout: 15_000 });
  const text = (await row.innerText()).replace(/\s+/g, ' ');
  await row.click();
  return text;
}

function toast(page: Page, text: string | RegExp) {
  return page.locator('.notification-toast', { hasText: text }).first();
}

function statusItem(page: Page) {
  return page.locator('.statusbar-item', { hasText: /VTrans/ }).first();
}

async function statusText(page: Page): Promise<string> {
  return (await statusItem(page).innerText()).replace(/\s+/g, ' ').trim();
}

/** The active webview's document (VS Code nests it: iframe.webview.ready → #active-frame). */
function webview(page: Page): FrameLocator {
  return page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
}

async function closeEditors(page: Page): Promise<void> {
  await runCommand(page, 'View: Close All Editors');
  await page
    .locator('iframe.webview')
    .first()
    .waitFor({ state: 'detached', timeout: 10_000 })
    .catch(() => {});
}

function writeWorkspaceSetting(key: string, value: unknown): void {
  const file = path.join(WS, '.vscode', 'settings.json');
  const s = JSON.parse(fs.readFileSync(file, 'utf8'));
  s[key] = value;
  fs.writeFileSync(file, JSON.stringify(s, null, 2) + '\n');
}

async function markerState(page: Page): Promise<{ x: number; caption: string; budgetX: number }> {
  const view = webview(page);
  await view.locator('.vt-budget line').waitFor({ state: 'attached', timeout: 30_000 });
  return {
    x: Number(await view.locator('.vt-budget line').getAttribute('x1')),
    budgetX: Number(await view.locator('.vt-budget').getAttribute('data-budget-x')),
    caption: (
      (await view
        .locator('.vt-budget-caption')
        .textContent()
        .catch(() => '')) ?? ''
    ).trim(),
  };
}

/** After a budget change: the status bar shows the new percentage and the tradeoff marker leaves `before`. */
async function expectBudget(
  page: Page,
  pct: string,
  before: { status: string; marker: { x: number } },
): Promise<{ status: string; marker: { x: number; caption: string; budgetX: number } }> {
  await page.waitForFunction(
    (p) =>
      [...document.querySelectorAll('.statusbar-item')].some(
        (e) =>
          (e as HTMLElement).innerText.includes('VTrans') &&
          (e as HTMLElement).innerText.includes(p) &&
          /params:/.test((e as HTMLElement).innerText),
      ),
    `${pct}%`,
    { timeout: 30_000 },
  );
  const status = await statusText(page);
  assert.notEqual(status, before.status, 'the status bar text changed');
  const view = webview(page);
  const deadline = Date.now() + 30_000;
  let marker = await markerState(page);
  while (marker.x === before.marker.x && Date.now() < deadline) {
    await sleep(250);
    marker = await markerState(page);
  }
  assert.notEqual(marker.x, before.marker.x, 'the tradeoff budget marker moved');
  await view
    .locator('.vt-budget-caption', { hasText: `${pct}.0%` })
    .waitFor({ timeout: 15_000 })
    .catch(() => {});
  return { status, marker };
}

function latestRun(): { dir: string; report: RunReport } {
  const root = path.join(WS, '.vtrans', 'runs');
  const dirs = fs
    .readdirSync(root)
    .map((d) => path.join(root, d))
    .filter((d) => fs.existsSync(path.join(d, 'report.json')));
  assert.equal(dirs.length, 1, `one finished run in ${root}`);
  return { dir: dirs[0], report: JSON.parse(fs.readFileSync(path.join(dirs[0], 'report.json'), 'utf8')) as RunReport };
}

/** The harness's chromium launcher (an ES module, hence the dynamic import from this CommonJS file). */
async function launch(opts?: { viewport?: { width: number; height: number } }) {
  const browser = await import('../lib/browser.mjs');
  return browser.launch(opts);
}

async function checkReportHtml(file: string, report: RunReport, panelFindings: string[]): Promise<void> {
  const browser = await launch({ viewport: { width: 1200, height: 1600 } });
  try {
    const { page, ctx } = browser;
    const blocked: string[] = [];
    await ctx.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith('file:') || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
      blocked.push(url);
      return route.abort();
    });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto('file://' + file, { waitUntil: 'load' });
    await page.locator('.vt-finding').first().waitFor({ timeout: 20_000 });
    const findings = (await page.$$eval('.vt-finding', (els) => els.map((e) => e.textContent ?? ''))).map((x) => x.trim());
    assert.deepEqual(findings, panelFindings, 'report.html shows the same findings as the report panel');
    const studentParams = await page
      .locator('.vt-summary-table tr', { hasText: 'Parameters' })
      .first()
      .locator('td[data-col="student"]')
      .innerText();
    assert.equal(studentParams.trim(), fmtInt(report.student!.params));
    assert.deepEqual(errors, [], 'no page errors in report.html');
    assert.deepEqual(blocked, [], 'report.html asks for nothing from the network');
    await page.screenshot({ path: path.join(OUT, `${String(++shotNo).padStart(2, '0')}-report-html-light.png`), fullPage: false });
    await page.emulateMedia({ colorScheme: 'dark' });
    await sleep(300);
    await page.screenshot({ path: path.join(OUT, `${String(shotNo).padStart(2, '0')}-report-html-dark.png`), fullPage: false });
  } finally {
    await browser.close();
  }
}

async function main(): Promise<void> {
  fs.rmSync(OUT, { recursive: true, force: true });
  fs.mkdirSync(OUT, { recursive: true });
  const browser = await launch();
  const page: Page = browser.page;
  const consoleErrors: string[] = [];
  page.on('pageerror', (e: Error) => consoleErrors.push(e.message));
  let ok = false;
  try {
    log('open the workspace');
    await page.goto(`${BASE}/?folder=${encodeURIComponent(WS)}`, { waitUntil: 'domcontentloaded', timeout: 60_000 });
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    // The extension activates on workspaceContains:**/config.json and shows its budget in the status bar.
    await statusItem(page).waitFor({ state: 'visible', timeout: 90_000 });
    log('status bar:', await statusText(page));
    await shot(page, 'workbench');

    log('VTrans: Compress Model');
    await runCommand(page, 'VTrans: Compress Model');
    // Two model projects in the workspace (the demo and a tiny BERT): the first picker asks which one.
    log('model:', await pick(page, /model to compress/, 'spam-classifier', 'spam'));
    log('training data:', await pick(page, /training data/, 'train.jsonl', 'train.jsonl'));
    await pick(page, /evaluation data/, 'dev.jsonl', 'dev.jsonl').then((t) => log('evaluation data:', t));
    const confirmWidget = page.locator('.quick-input-widget .quick-input-title', { hasText: /confirm/ });
    await confirmWidget.waitFor({ state: 'visible', timeout: 30_000 });
    await shot(page, 'confirm', { both: false }); // the palette (theme toggle) would close the picker
    log('confirm:', await pick(page, /confirm/, /Start:/));

    const progress = toast(page, /Compressing spam-classifier/);
    await progress.waitFor({ state: 'visible', timeout: 120_000 });
    log('progress:', (await progress.innerText()).replace(/\s+/g, ' '));
    // The training phase: the notification and the status bar show its step, loss, sparsity and ETA.
    await toast(page, /training masks \d+\/\d+/).waitFor({ state: 'visible', timeout: 180_000 });
    log('progress:', (await progress.innerText()).replace(/\s+/g, ' '));
    await page.waitForFunction(
      () => [...document.querySelectorAll('.statusbar-item')].some((e) => /VTrans: /.test((e as HTMLElement).innerText)),
      undefined,
      { timeout: 120_000 },
    );
    log('status bar during the run:', await statusText(page));
    await shot(page, 'progress');

    const result = toast(page, /VTrans: compressed to/);
    await result.waitFor({ state: 'visible', timeout: COMPRESS_TIMEOUT_MS });
    const resultText = (await result.locator('.notification-list-item-message').innerText()).replace(/\s+/g, ' ');
    log('result:', resultText);
    await shot(page, 'result');

    const { dir: runDir, report } = latestRun();
    const student = report.student!;
    assert.ok(student, 'report.json has the compressed model');
    assert.ok(resultText.includes(formatCount(student.params)), `the result names ${formatCount(student.params)} parameters`);
    if (student.metric?.name === 'accuracy')
      assert.ok(resultText.includes(`${(100 * student.metric.value).toFixed(2)}%`), 'the result names the accuracy of report.json');

    log('Show Tradeoff (the notification button)');
    await result.locator('.monaco-button', { hasText: 'Show Tradeoff' }).click();
    await webview(page).locator('[data-testid="tradeoff-chart"] svg').first().waitFor({ timeout: 60_000 });
    const first = { status: await statusText(page), marker: await markerState(page) };
    log('tradeoff marker:', first.marker, 'status:', first.status);
    assert.match(first.status, /50%/);
    // At the run's own budget the status bar's prediction is the compressed model of report.json.
    softCheck(
      first.status.includes(`${formatCount(student.params)} params`),
      `status bar at 50% names ${formatCount(student.params)} params like report.json (shows "${first.status}")`,
    );
    softCheck(
      first.status.includes(`${formatCount(student.flopsPerToken)} FLOPs`),
      `status bar at 50% names ${formatCount(student.flopsPerToken)} FLOPs per token like report.json (shows "${first.status}")`,
    );
    await shot(page, 'tradeoff');

    log('vtrans.budget.keep → 0.3 in the Settings editor');
    await runCommand(page, 'Preferences: Open Workspace Settings');
    const search = page.locator('.settings-editor .suggest-input-container textarea, .settings-editor .settings-header input').first();
    await search.waitFor({ state: 'visible', timeout: 30_000 });
    await search.fill('vtrans.budget.keep');
    // The list filters after a debounce: wait for the setting's own row (its description) before typing.
    const keepItem = page.locator('.settings-editor .setting-item-contents', { hasText: 'Fraction of the budget' }).first();
    await keepItem.waitFor({ state: 'visible', timeout: 30_000 });
    const keepInput = keepItem.locator('input').first();
    await keepInput.fill('0.3');
    await keepInput.press('Tab');
    await shot(page, 'settings-editor');
    await page.waitForFunction(
      () => [...document.querySelectorAll('.statusbar-item')].some((e) => /VTrans 30%/.test((e as HTMLElement).innerText)),
      undefined,
      { timeout: 30_000 },
    );
    // Back to the tradeoff view to see its marker.
    await runCommand(page, 'VTrans: Show Size/Accuracy Tradeoff');
    const second = await expectBudget(page, '30', first);
    log('after 0.3:', second.marker, 'status:', second.status);
    assert.ok(second.marker.budgetX < first.marker.budgetX, 'the marker moved towards smaller models');
    await shot(page, 'tradeoff-keep-30');

    log('vtrans.budget.keep → 0.7 in .vscode/settings.json');
    writeWorkspaceSetting('vtrans.budget.keep', 0.7);
    const third = await expectBudget(page, '70', second);
    log('after 0.7:', third.marker, 'status:', third.status);
    assert.ok(third.marker.budgetX > second.marker.budgetX, 'the marker moved towards larger models');
    await shot(page, 'tradeoff-keep-70');

    log('heatmaps');
    await closeEditors(page);
    await runCommand(page, 'VTrans: Show Attention-Probe Heatmaps');
    const cells = webview(page).locator('[role="gridcell"][data-head]');
    await cells.first().waitFor({ timeout: 60_000 });
    const heads = report.layers.reduce((n, l) => n + l.heads.length, 0);
    assert.ok((await cells.count()) >= heads, `a cell per head (${heads})`);
    await shot(page, 'heatmaps');

    log('report');
    await closeEditors(page);
    await runCommand(page, 'VTrans: Show Head-Retention Report');
    const findingsLoc = webview(page).locator('.vt-finding');
    await findingsLoc.first().waitFor({ timeout: 60_000 });
    const findings = (await findingsLoc.allTextContents()).map((s) => s.trim());
    log('findings:', findings);
    assert.deepEqual(
      findings,
      computeFindings(report).map((f) => f.text),
      'the findings are those computed from report.json',
    );
    // Independently of the formatting helpers: the student's size and metric as report.json has them.
    assert.ok(
      findings[0].includes(`(${fmtCount(student.params)} of ${fmtCount(report.teacher.params)})`),
      'the first finding names the student and teacher sizes',
    );
    const paramsRow = webview(page).locator('.vt-summary-table tr', { hasText: 'Parameters' }).first();
    assert.equal(
      (await paramsRow.locator('td[data-col="student"]').innerText()).trim(),
      student.params.toLocaleString('en-US'),
      'student parameters in the summary',
    );
    if (student.metric) {
      const metricRow = webview(page)
        .locator('.vt-summary-table tr', { hasText: /Accuracy|Perplexity/ })
        .first();
      assert.equal(
        (await metricRow.locator('td[data-col="student"]').innerText()).trim(),
        fmtMetric(report.metricName, student.metric.value),
      );
      if (report.metricName === 'accuracy')
        assert.ok(findings[0].includes(`${(100 * student.metric.value).toFixed(2)}%`), 'the first finding states the student accuracy');
    }
    await shot(page, 'report');

    log('report.html offline (file://, network blocked)');
    await checkReportHtml(path.join(runDir, 'report.html'), report, findings);
    ok = softFailures.length === 0;
    if (!ok) log(`${softFailures.length} check(s) failed:\n  - ${softFailures.join('\n  - ')}`);
  } catch (e) {
    log('FAILED:', (e as Error).stack ?? e);
    await page.screenshot({ path: path.join(OUT, 'failure.png') }).catch(() => {});
  } finally {
    if (consoleErrors.length) log('page errors (first 10):', consoleErrors.slice(0, 10));
    await browser.close();
  }
  log(ok ? 'E2E PASS' : 'E2E FAIL', `— screenshots in ${OUT}`);
  process.exit(ok ? 0 : 1);
}

void main();
