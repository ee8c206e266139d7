/**
 * The UI test of a compression (started by `node test/vscode/run.mjs e2e`): code-server with the packaged .vsix
 * installed and a workspace holding the spam-classifier demo, driven through Debian's chromium like a user would:
 *   no status item before a run → VTrans: Compress Model → the pickers (model, training data with its preview and
 *   columns, eval data, no test file, the confirm step with its measured estimate) → progress in the status bar
 *   and the Runs view → the live training panel gaining points → the result notification → Show Tradeoff →
 *   vtrans.budget.keep changed in the Settings editor and in .vscode/settings.json (status bar text and tradeoff
 *   marker move) → heatmaps → report (findings and figures against the run's report.json) → report.html offline.
 * Every step is captured in the light and the dark theme under test-output/e2e/.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { computeFindings, fmtCount, fmtInt, fmtMetric, fmtPct } from '../../../src/core/findings';
import type { RunReport } from '../../../src/core/report';
import { launch, need, openWorkbench, scenario, sleep, type Session } from './lib';

const BASE = need('VTRANS_E2E_BASE');
const WS = need('VTRANS_E2E_WORKSPACE');
const OUT = path.join(need('VTRANS_E2E_OUT'), 'e2e');
const COMPRESS_TIMEOUT_MS = Number(process.env.VTRANS_E2E_TIMEOUT ?? 900) * 1000;

function writeWorkspaceSetting(key: string, value: unknown): void {
  const file = path.join(WS, '.vscode', 'settings.json');
  const s = JSON.parse(fs.readFileSync(file, 'utf8'));
  s[key] = value;
  fs.writeFileSync(file, JSON.stringify(s, null, 2) + '\n');
}

async function markerState(s: Session): Promise<{ x: number; caption: string; budgetX: number }> {
  const view = s.webview();
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
  s: Session,
  pct: string,
  before: { status: string; marker: { x: number } },
): Promise<{ status: string; marker: { x: number; caption: string; budgetX: number } }> {
  await s.page.waitForFunction(
    (p) => {
      const el = document.querySelector('.statusbar-item[id$="vtrans.status"]') as HTMLElement | null;
      return !!el && el.innerText.includes(`${p} params ·`);
    },
    `${pct}%`,
    { timeout: 30_000 },
  );
  const status = await s.statusText();
  assert.notEqual(status, before.status, 'the status bar text changed');
  const deadline = Date.now() + 30_000;
  let marker = await markerState(s);
  while (marker.x === before.marker.x && Date.now() < deadline) {
    await sleep(250);
    marker = await markerState(s);
  }
  assert.notEqual(marker.x, before.marker.x, 'the tradeoff budget marker moved');
  await s
    .webview()
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
    await page.screenshot({ path: path.join(OUT, 'compress-99-report-html-light.png'), fullPage: false });
    await page.emulateMedia({ colorScheme: 'dark' });
    await sleep(300);
    await page.screenshot({ path: path.join(OUT, 'compress-99-report-html-dark.png'), fullPage: false });
  } finally {
    await browser.close();
  }
}

void scenario('compress', async (s) => {
  const page = s.page;
  s.log('open the workspace');
  await openWorkbench(s, BASE, WS);
  await page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: 60_000 });
  await sleep(3000);
  s.softCheck((await s.statusItem().count()) === 0, 'no status item before the first run');

  s.log('VTrans: Compress Model');
  await s.runCommand('VTrans: Compress Model');
  // Two model projects in the workspace (the demo and a tiny BERT): the first picker asks which one.
  s.log('model:', await s.pick(/model to compress/, 'spam-classifier', 'spam'));
  s.log('training data:', await s.pick(/training data \(2\/3\)/, 'train.jsonl', 'train.jsonl'));
  const preview = await s.pickRows(/training data — train\.jsonl/, /Use train\.jsonl/);
  s.log('preview:', preview.join(' | '));
  s.softCheck(
    preview.some((r) => /Text column: text/.test(r)) && preview.some((r) => /Label column: label/.test(r)),
    'the preview maps text and label',
  );
  s.softCheck(
    preview.some((r) => /^ham\s*[\d,]+ \(\d/.test(r)),
    'the preview counts the labels',
  );
  await s.shot('data-preview', { both: false });
  await s.pick(/training data — train\.jsonl/, /Use train\.jsonl/);
  s.log('evaluation data:', await s.pick(/evaluation data/, 'dev.jsonl', 'dev.jsonl'));
  s.log('test data:', await s.pick(/test data, optional/, 'No test file'));
  const confirmRows = await s.pickRows(/confirm \(3\/3\)/, /Estimate: about .* peak memory/, 240_000);
  s.log('confirm:', confirmRows.join(' | '));
  s.softCheck(
    confirmRows.some((r) => /Model: spam-classifier/.test(r)),
    'the confirm step names the model',
  );
  s.softCheck(
    confirmRows.some((r) => /Data: train\.jsonl.*eval dev\.jsonl/.test(r)),
    'the confirm step names the data',
  );
  s.softCheck(
    confirmRows.some((r) => /Device: CPU/.test(r)),
    'the confirm step names the device',
  );
  s.softCheck(
    confirmRows.some((r) => /Measured over \d+ real training steps/.test(r)),
    'the estimate is measured',
  );
  await s.shot('confirm', { both: false }); // the palette (theme toggle) would close the picker
  s.log('confirm:', await s.pick(/confirm \(3\/3\)/, /Start:/));

  // The training phase: the status bar and the Runs view show the phase; the live panel follows metrics.jsonl.
  await page.waitForFunction(
    () =>
      /Training masks \d+%/.test((document.querySelector('.statusbar-item[id$="vtrans.status"]') as HTMLElement | null)?.innerText ?? ''),
    undefined,
    { timeout: 240_000 },
  );
  s.log('status bar during the run:', await s.statusText());
  const running = page.locator('.part.sidebar .monaco-list-row', { hasText: /Training masks|training masks/ }).first();
  await running.waitFor({ state: 'visible', timeout: 60_000 });
  s.log('Runs view during the run:', (await running.innerText()).replace(/\s+/g, ' '));
  await s.runCommand('VTrans: Show Training Curves');
  const loss = s.webview().locator('[data-chart="loss"]');
  await s.webview().locator('[data-chart="loss"] svg.vt-plot').waitFor({ timeout: 60_000 });
  const points = async () => Number((await loss.getAttribute('data-points')) ?? '0');
  const first = await points();
  s.log('training panel points:', first);
  const deadline = Date.now() + 120_000;
  let later = first;
  while (later <= first && Date.now() < deadline) {
    await sleep(500);
    later = await points();
  }
  s.log('training panel points later:', later);
  assert.ok(later > first, `the live training panel added points (${first} → ${later})`);
  const charts = await s
    .webview()
    .locator('.vt-train-chart')
    .evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.chart));
  assert.deepEqual(charts, ['loss', 'kl', 'size', 'lambda']);
  await s.shot('training-live');

  const result = s.toast(/VTrans: compressed to/);
  await result.waitFor({ state: 'visible', timeout: COMPRESS_TIMEOUT_MS });
  const resultText = (await result.locator('.notification-list-item-message').innerText()).replace(/\s+/g, ' ');
  s.log('result:', resultText);
  await s.shot('result');

  const { dir: runDir, report } = latestRun();
  const student = report.student!;
  assert.ok(student, 'report.json has the compressed model');
  assert.ok(resultText.includes(fmtCount(student.params)), `the result names ${fmtCount(student.params)} parameters`);
  if (student.metric?.name === 'accuracy')
    assert.ok(resultText.includes(`${(100 * student.metric.value).toFixed(2)}%`), 'the result names the accuracy of report.json');
  assert.ok(fs.existsSync(path.join(runDir, 'log.txt')), "the run's log.txt");
  assert.match(path.basename(runDir), /-spam-classifier-faster-/, 'the run id carries the model name');

  s.log('Show Tradeoff (the notification button)');
  await result.locator('.monaco-button', { hasText: 'Show Tradeoff' }).click();
  await s.webview().locator('[data-testid="tradeoff-chart"] svg').first().waitFor({ timeout: 60_000 });
  const firstState = { status: await s.statusText(), marker: await markerState(s) };
  s.log('tradeoff marker:', firstState.marker, 'status:', firstState.status);
  assert.match(firstState.status, /^50% params · /, 'a short status bar text');
  // At the run's own budget the status bar's prediction is the compressed model of report.json.
  s.softCheck(
    firstState.status.includes(`· ${fmtCount(student.params)}`),
    `status bar at 50% names ${fmtCount(student.params)} params like report.json (shows "${firstState.status}")`,
  );
  const frontSteps = await s.webview().locator('g.vt-front path').getAttribute('d');
  s.softCheck(
    /H|L[\d.]+,([\d.]+)L[\d.]+,\1/.test(frontSteps ?? '') || (frontSteps ?? '').split('L').length > 2,
    'the Pareto front is drawn',
  );
  await s.shot('tradeoff');

  s.log('vtrans.budget.keep → 0.3 in the Settings editor');
  await s.runCommand('Preferences: Open Workspace Settings');
  const search = page.locator('.settings-editor .suggest-input-container textarea, .settings-editor .settings-header input').first();
  await search.waitFor({ state: 'visible', timeout: 30_000 });
  await search.fill('vtrans.budget.keep');
  // The list filters after a debounce: wait for the setting's own row (its description) before typing.
  const keepItem = page.locator('.settings-editor .setting-item-contents', { hasText: 'Fraction of the budget' }).first();
  await keepItem.waitFor({ state: 'visible', timeout: 30_000 });
  const keepInput = keepItem.locator('input').first();
  await keepInput.fill('0.3');
  await keepInput.press('Tab');
  await s.shot('settings-editor');
  await page.waitForFunction(
    () =>
      /^30% params/.test((document.querySelector('.statusbar-item[id$="vtrans.status"]') as HTMLElement | null)?.innerText.trim() ?? ''),
    undefined,
    { timeout: 30_000 },
  );
  // Back to the tradeoff view to see its marker.
  await s.runCommand('VTrans: Show Size/Accuracy Tradeoff');
  const second = await expectBudget(s, '30', firstState);
  s.log('after 0.3:', second.marker, 'status:', second.status);
  assert.ok(second.marker.budgetX < firstState.marker.budgetX, 'the marker moved towards smaller models');
  await s.shot('tradeoff-keep-30');

  s.log('vtrans.budget.keep → 0.7 in .vscode/settings.json');
  writeWorkspaceSetting('vtrans.budget.keep', 0.7);
  const third = await expectBudget(s, '70', second);
  s.log('after 0.7:', third.marker, 'status:', third.status);
  assert.ok(third.marker.budgetX > second.marker.budgetX, 'the marker moved towards larger models');
  await s.shot('tradeoff-keep-70');

  s.log('heatmaps');
  await s.closeEditors();
  await s.runCommand('VTrans: Show Attention-Probe Heatmaps');
  const cells = s.webview().locator('[role="gridcell"][data-head]');
  await cells.first().waitFor({ timeout: 60_000 });
  const heads = report.layers.reduce((n, l) => n + l.heads.length, 0);
  assert.ok((await cells.count()) >= heads, `a cell per head (${heads})`);
  const legend = (await s.webview().locator('.vt-heat-legend').innerText()).replace(/\s+/g, ' ');
  s.log('heatmap legend:', legend);
  s.softCheck(/colour from the lowest head/.test(legend), 'the colour scale spans the report’s own range');
  await s.shot('heatmaps');

  s.log('report');
  await s.closeEditors();
  await s.runCommand('VTrans: Show Head-Retention Report');
  const findingsLoc = s.webview().locator('.vt-finding');
  await findingsLoc.first().waitFor({ timeout: 60_000 });
  const findings = (await findingsLoc.allTextContents()).map((t) => t.trim());
  s.log('findings:', findings);
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
  const paramsRow = s.webview().locator('.vt-summary-table tr', { hasText: 'Parameters' }).first();
  assert.equal(
    (await paramsRow.locator('td[data-col="student"]').innerText()).trim(),
    student.params.toLocaleString('en-US'),
    'student parameters in the summary',
  );
  if (student.metric) {
    const metricRow = s
      .webview()
      .locator('.vt-summary-table tr', { hasText: /Accuracy|Perplexity/ })
      .first();
    assert.equal(
      (await metricRow.locator('td[data-col="student"]').innerText()).trim(),
      fmtMetric(report.metricName, student.metric.value),
    );
    if (report.metricName === 'accuracy') {
      assert.ok(findings[0].includes(`${(100 * student.metric.value).toFixed(2)}%`), 'the first finding states the student accuracy');
      s.softCheck(!findings.join(' ').includes(student.metric.value.toFixed(4)), 'metrics as percentages, not raw fractions');
      s.softCheck(fmtPct(student.metric.value, 2).endsWith('%'), 'percent format');
    }
  }
  await s.shot('report');

  s.log('report.html offline (file://, network blocked)');
  await checkReportHtml(path.join(runDir, 'report.html'), report, findings);
});
