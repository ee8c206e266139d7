/**
 * Quiet by default (started by `node test/vscode/run.mjs e2e`): a workspace with a model project (a config.json)
 * and no runs. The packaged extension must start no backend and show no status item — before it is activated,
 * and after its view is opened (which activates it). The Explorer's "Compress Model" is on the model folder only.
 */
import * as assert from 'node:assert/strict';
import { need, openWorkbench, processesOf, scenario, sleep, type Session } from './lib';

const BASE = need('VTRANS_E2E_BASE');
const WS = need('VTRANS_E2E_WORKSPACE');
const MARKER = need('VTRANS_E2E_MARKER');

function noBackend(s: Session, when: string): void {
  const procs = processesOf(MARKER, /vtrans\.(server|runs)|python.*-c import json, sys/);
  s.softCheck(
    procs.length === 0,
    `${when}: no Python process of VTrans (found ${procs.map((p) => `${p.pid} ${p.cmd.slice(0, 60)}`).join('; ')})`,
  );
}

async function contextMenu(s: Session, folder: string): Promise<string[]> {
  const row = s.page.locator('.explorer-folders-view .monaco-list-row', { hasText: new RegExp(`^\\s*${folder}\\s*$`) }).first();
  await row.waitFor({ state: 'visible', timeout: 30_000 });
  await row.click({ button: 'right' });
  const items = s.page.locator('.monaco-menu .action-item .action-label');
  await items.first().waitFor({ state: 'visible', timeout: 10_000 });
  const texts = (await items.allInnerTexts()).map((t) => t.trim()).filter(Boolean);
  await s.page.keyboard.press('Escape');
  return texts;
}

void scenario('quiet', async (s) => {
  s.log('open a workspace with a model project and no runs');
  await openWorkbench(s, BASE, WS);
  await s.page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: 60_000 });
  // Long enough for a startup activation (workspaceContains, onStartupFinished) and a backend probe to show.
  await sleep(12_000);
  assert.equal(await s.statusItem().count(), 0, 'no VTrans status item in a workspace without runs');
  noBackend(s, 'after opening the workspace');
  const before = await contextMenu(s, 'spam-model');
  s.softCheck(!before.includes('Compress Model'), `before VTrans is used, no Compress Model in the menu (${before.join(', ')})`);
  await s.shot('workspace');

  s.log('open the VTrans view (activates the extension)');
  await s.runCommand('View: Show VTrans');
  const welcome = s.page.locator('.welcome-view-content', { hasText: 'config.json' }).first();
  await welcome.waitFor({ state: 'visible', timeout: 60_000 });
  const text = (await welcome.innerText()).replace(/\s+/g, ' ');
  s.log('welcome view:', text);
  for (const needle of ['config.json', 'tokenizer.json', '.jsonl, .csv or .tsv', '.txt for language modelling', 'PyTorch ≥ 2.1'])
    s.softCheck(text.includes(needle), `the welcome view explains "${needle}"`);
  for (const button of ['Compress Model', 'Get Started', 'Open the Sample Project'])
    s.softCheck(
      (await s.page.locator('.welcome-view-content .monaco-button', { hasText: button }).count()) > 0,
      `welcome button ${button}`,
    );
  await sleep(5000);
  assert.equal(await s.statusItem().count(), 0, 'still no status item once the extension is active');
  noBackend(s, 'after the extension activated');
  await s.shot('welcome-view');

  s.log('Explorer context menu: model folder vs data folder');
  await s.runCommand('View: Show Explorer');
  const onModel = await contextMenu(s, 'spam-model');
  const onData = await contextMenu(s, 'data');
  s.log('menu on spam-model:', onModel.join(' | '));
  s.softCheck(onModel.includes('Compress Model'), `Compress Model on the model folder (${onModel.join(', ')})`);
  s.softCheck(!onData.includes('Compress Model'), `no Compress Model on the data folder (${onData.join(', ')})`);
  noBackend(s, 'at the end');
});
