/**
 * The machine-learning engineer's first hour (started by `node test/vscode/run.mjs e2e`), from a fresh profile
 * with no vtrans.pythonPath and no VTRANS_PYTHON: the walkthrough picks the interpreter (typed in, as the
 * candidates VTrans finds have no PyTorch), checks PyTorch and the GPU, opens the bundled sample project and
 * compresses it through the pickers (data preview, eval and test files, the confirm step with its measured
 * estimate), then opens the views. Then a model is compressed from a CSV whose columns are `sentence,label`
 * with the editor's UI only, and the two runs are compared. Every step is captured under test-output/e2e/.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunReport } from '../../../src/core/report';
import { need, openWorkbench, scenario, sleep, type Session } from './lib';

const BASE = need('VTRANS_E2E_BASE');
const WS = need('VTRANS_E2E_WORKSPACE');
const PYTHON = need('VTRANS_E2E_PYTHON');
const TIMEOUT = Number(process.env.VTRANS_E2E_TIMEOUT ?? 900) * 1000;

function step(s: Session, id: string) {
  return s.page.locator(`button.getting-started-step[data-step-id$="#${id}"]`);
}

/** Expands a walkthrough step and clicks one of its buttons. */
async function stepButton(s: Session, id: string, button: string): Promise<void> {
  await step(s, id).click();
  const b = s.page.locator('.gettingStartedContainer .monaco-button', { hasText: button }).first();
  await b.waitFor({ state: 'visible', timeout: 15_000 });
  await b.click();
}

async function stepDone(s: Session, id: string, timeout = 60_000): Promise<void> {
  await s.page.waitForFunction(
    (sid) => document.querySelector(`button.getting-started-step[data-step-id$="#${sid}"]`)?.getAttribute('aria-checked') === 'true',
    id,
    { timeout },
  );
}

async function openWalkthrough(s: Session): Promise<void> {
  await s.runCommand('VTrans: Get Started');
  await step(s, 'interpreter').waitFor({ state: 'visible', timeout: 30_000 });
}

function finishedRuns(): { dir: string; report: RunReport }[] {
  const root = path.join(WS, '.vtrans', 'runs');
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .map((d) => path.join(root, d))
    .filter((d) => fs.existsSync(path.join(d, 'report.json')))
    .map((dir) => ({ dir, report: JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8')) as RunReport }));
}

/** The data step: training file, its preview and columns, evaluation and test data. Returns the preview rows. */
async function chooseData(
  s: Session,
  o: { train: string; eval: string | RegExp; test: string | RegExp; shot?: string },
): Promise<string[]> {
  s.log('training data:', await s.pick(/training data \(2\/3\)/, o.train, o.train));
  const rows = await s.pickRows(/training data — /, /Use |Cannot use it yet/);
  s.log('preview:', rows.join(' | '));
  if (o.shot) await s.shot(o.shot, { both: false });
  await s.pick(/training data — /, /Use /);
  s.log('evaluation data:', await s.pick(/evaluation data/, o.eval));
  s.log('test data:', await s.pick(/test data, optional/, o.test));
  return rows;
}

/** The confirm step: waits for the measured estimate, checks what it says, starts. */
async function confirm(s: Session, shotName?: string): Promise<string[]> {
  const rows = await s.pickRows(/confirm \(3\/3\)/, /Estimate: about .* peak memory/, 180_000);
  s.log('confirm:', rows.join(' | '));
  if (shotName) await s.shot(shotName, { both: false });
  await s.pick(/confirm \(3\/3\)/, /Start:/);
  return rows;
}

async function waitForResult(s: Session, since: number): Promise<{ dir: string; report: RunReport }> {
  const result = s.toast(/VTrans: compressed to/);
  await result.waitFor({ state: 'visible', timeout: TIMEOUT });
  s.log('result:', (await result.innerText()).replace(/\s+/g, ' '));
  const run = finishedRuns().find((r) => fs.statSync(path.join(r.dir, 'report.json')).mtimeMs >= since);
  assert.ok(run, 'a new finished run');
  await result
    .locator('.codicon-notifications-clear, .codicon-close')
    .first()
    .click()
    .catch(() => {});
  return run;
}

void scenario('walkthrough', async (s) => {
  s.log('a fresh profile opens a folder with nothing but some CSV data');
  await openWorkbench(s, BASE, WS);
  await s.page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: 60_000 });
  assert.equal(await s.statusItem().count(), 0, 'no status item');

  s.log('VTrans: Get Started');
  await openWalkthrough(s);
  await s.shot('walkthrough');

  s.log('step 1: the interpreter');
  await stepButton(s, 'interpreter', 'Pick Interpreter');
  // The candidates VTrans would try, each probed (python3 on PATH has no torch here).
  const candidates = await s.pickRows(/Python interpreter for the backend/, /python3 on PATH/);
  s.log('candidates:', candidates.join(' | '));
  s.softCheck(
    candidates.some((c) => /python3/.test(c) && /cannot import torch|older than|not found/.test(c)),
    `the candidates say why python3 cannot run the backend (${candidates.join(' | ')})`,
  );
  await s.shot('interpreter-candidates', { both: false });
  await s.pick(/Python interpreter for the backend/, /Enter the interpreter/);
  const input = s.page.locator('.quick-input-widget input');
  await s.page.locator('.quick-input-widget .quick-input-title', { hasText: /path of a Python interpreter/ }).waitFor({ timeout: 15_000 });
  await input.fill(PYTHON);
  await s.page.keyboard.press('Enter');
  const picked = s.toast(/will run its backend with/);
  await picked.waitFor({ state: 'visible', timeout: 120_000 });
  const pickedText = (await picked.innerText()).replace(/\s+/g, ' ');
  s.log(pickedText);
  s.softCheck(/saved as vtrans\.pythonPath in your user settings/.test(pickedText), 'the message says where the choice was saved');
  s.softCheck(/torch 2\.\d+/.test(pickedText), 'the message names the torch version');
  await stepDone(s, 'interpreter');

  s.log('step 2: PyTorch and the GPU');
  await stepButton(s, 'environment', 'Check PyTorch and GPU');
  const env = s.toast(/^PyTorch \d|PyTorch \d+\.\d+/);
  await env.waitFor({ state: 'visible', timeout: 120_000 });
  const envText = (await env.innerText()).replace(/\s+/g, ' ');
  s.log(envText);
  s.softCheck(/GPU/.test(envText), 'the check says what it found about GPUs');
  await stepDone(s, 'environment');
  await s.shot('environment');

  s.log('step 3: the sample project');
  await stepButton(s, 'sample', 'Open Sample Project');
  await s.toast(/the sample project into vtrans-sample/).waitFor({ state: 'visible', timeout: 60_000 });
  for (const f of ['model/config.json', 'model/model.safetensors', 'model/tokenizer.json', 'data/train.jsonl', 'README.md'])
    assert.ok(fs.existsSync(path.join(WS, 'vtrans-sample', f)), `vtrans-sample/${f}`);
  await sleep(1500);
  await s.shot('sample-opened');

  s.log('step 4: compress it');
  await openWalkthrough(s);
  await stepDone(s, 'sample');
  let since = Date.now();
  await stepButton(s, 'compress', 'Compress the Sample');
  const preview = await chooseData(s, { train: 'train.jsonl', eval: 'dev.jsonl', test: 'test.jsonl', shot: 'sample-data-preview' });
  s.softCheck(
    preview.some((r) => /1,200 rows/.test(r)),
    'the preview counts the 1,200 training rows',
  );
  s.softCheck(
    preview.some((r) => /^ham\s*873 \(72\.8%\)/.test(r)) && preview.some((r) => /^spam\s*327 \(27\.3%\)/.test(r)),
    'the preview counts the labels',
  );
  const confirmRows = await confirm(s, 'sample-confirm');
  for (const what of ['Model: vtrans-sample', 'Data: train.jsonl', 'Method:', 'Budget: keep', 'Device:', 'Output:'])
    s.softCheck(
      confirmRows.some((r) => r.includes(what)),
      `the confirm step shows "${what}"`,
    );
  s.softCheck(
    confirmRows.some((r) => /Device: .*CPU/.test(r)),
    'the device is named (CPU here)',
  );
  // While it runs: progress in the Runs view and the status bar.
  await s.statusItem().waitFor({ state: 'visible', timeout: 60_000 });
  s.log('status bar during the run:', await s.statusText());
  const sampleRun = await waitForResult(s, since);
  s.log('sample run:', path.basename(sampleRun.dir));
  s.softCheck(
    fs.existsSync(path.join(sampleRun.dir, 'log.txt')) && fs.existsSync(path.join(sampleRun.dir, '.gitignore')),
    'log.txt and .gitignore in the run',
  );

  s.log('step 5: the views');
  await openWalkthrough(s);
  await stepDone(s, 'compress');
  await stepButton(s, 'views', 'Runs View');
  const rows = s.page.locator('.part.sidebar .monaco-list-row');
  await rows.first().waitFor({ state: 'visible', timeout: 30_000 });
  const rowText = (await rows.first().innerText()).replace(/\s+/g, ' ');
  s.log('Runs view:', rowText);
  s.softCheck(/vtrans-sample · Fast-VTrans \d+% params/.test(rowText), `the run is named by model, method and budget (${rowText})`);
  await s.shot('runs-view');
  await stepDone(s, 'views');
  await s.closeEditors();
  await s.runCommand('VTrans: Show Training Curves');
  await s.webview().locator('[data-chart="loss"] svg.vt-plot').waitFor({ timeout: 60_000 });
  await s.shot('sample-training');
  await s.closeEditors();

  s.log('a CSV with the columns sentence,label, with the editor UI only');
  since = Date.now();
  await s.runCommand('VTrans: Compress Model');
  await s.pick(/data for /, 'Choose other data');
  const csvPreview = await chooseData(s, {
    train: 'messages-train.csv',
    eval: 'messages-dev.csv',
    test: 'No test file',
    shot: 'csv-preview',
  });
  s.softCheck(
    csvPreview.some((r) => r.includes('Text column: sentence')),
    `the text column is sentence (${csvPreview.join(' | ')})`,
  );
  s.softCheck(
    csvPreview.some((r) => r.includes('Label column: label')),
    'the label column is label',
  );
  // This run keeps 50 % (the setting says 30 %): changed in the confirm step, for this run only.
  await s.pickRows(/confirm \(3\/3\)/, /Budget: keep 30\.0%/);
  await s.pick(/confirm \(3\/3\)/, /Budget: keep/);
  await s.page.locator('.quick-input-widget .quick-input-title', { hasText: /Fraction to keep, this run/ }).waitFor({ timeout: 15_000 });
  await s.page.locator('.quick-input-widget input').fill('0.5');
  await s.page.keyboard.press('Enter');
  await s.pick(/Budget counted in/, 'parameters');
  const csvConfirm = await confirm(s, 'csv-confirm');
  s.softCheck(
    csvConfirm.some((r) => /Budget: keep 50\.0% of the parameters.*this run only/.test(r)),
    `the confirm step says the budget is for this run only (${csvConfirm.join(' | ')})`,
  );
  const csvRun = await waitForResult(s, since);
  s.softCheck(csvRun.report.budget.keep === 0.5, `the run kept 50% (${csvRun.report.budget.keep})`);
  const settingsFile = path.join(WS, '.vscode', 'settings.json');
  s.softCheck(
    !fs.existsSync(settingsFile) || !/budget/.test(fs.readFileSync(settingsFile, 'utf8')),
    'nothing was written to the workspace settings',
  );
  const info = JSON.parse(fs.readFileSync(path.join(csvRun.dir, 'run.json'), 'utf8')) as { settings: { trainShards: string } };
  const meta = JSON.parse(fs.readFileSync(path.join(info.settings.trainShards, 'meta.json'), 'utf8')) as {
    source: string;
    examples: number;
  };
  s.log('CSV run shards:', meta.source, meta.examples);
  assert.match(meta.source, /messages-train\.csv$/, 'the run trained on the CSV');
  const log = fs.readFileSync(path.join(csvRun.dir, 'log.txt'), 'utf8');
  s.softCheck(/columns \{"text":"sentence","label":"label"\}/.test(log), 'the log records the column mapping');
  assert.ok(csvRun.report.student?.metric, 'the CSV run has a metric');

  s.log('compare the two runs');
  await s.runCommand('View: Show VTrans');
  const runRows = s.page.locator('.part.sidebar .monaco-list-row');
  await runRows.nth(1).waitFor({ state: 'visible', timeout: 30_000 });
  await runRows.nth(0).click();
  await runRows.nth(1).click({ modifiers: ['Control'] });
  // The context menu of a multi-selection offers Compare Runs; the view's title bar has the same action.
  await runRows.nth(1).click({ button: 'right' });
  const compareItem = s.page.locator('.monaco-menu .action-item .action-label', { hasText: 'Compare Runs' }).first();
  await compareItem.waitFor({ state: 'visible', timeout: 10_000 });
  s.softCheck((await compareItem.count()) > 0, 'Compare Runs in the context menu of two selected runs');
  await s.page.keyboard.press('Escape');
  // The title bar's actions show while the pointer is over the view.
  await runRows.nth(1).hover();
  const titleAction = s.page
    .locator('.pane-header .action-label[aria-label="Compare Runs"], .composite.title .action-label[aria-label="Compare Runs"]')
    .first();
  await titleAction.hover({ force: true });
  await titleAction.click({ force: true });
  const chart = s.webview().locator('[data-testid="compare-chart"] svg.vt-plot');
  await chart.waitFor({ timeout: 60_000 });
  const curves = await chart.getAttribute('data-curves');
  s.log('compare curves:', curves);
  assert.equal(curves, '2', 'two tradeoff curves in one chart');
  const heads = (await s.webview().locator('.vt-compare-table thead th').allInnerTexts()).map((t) => t.trim());
  s.log('compare table:', heads.join(' | '));
  assert.equal(heads.length, 3, 'a column per run');
  s.softCheck(heads[1] !== heads[2], `the runs have different names (${heads.join(' | ')})`);
  await sleep(500);
  await s.shot('compare');
});
