/** Activation, the manifest's contract (commands, settings, views) and the workspace trust state. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import * as path from 'node:path';
import { backendProcesses, EXTENSION_ID, getApi, manifest, sleep, testMode } from './helpers';

describe('activation and contributions', () => {
  it('activates and returns the test API (src/extension/api.ts)', async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext, `${EXTENSION_ID} is installed`);
    const api = await getApi();
    assert.equal(ext.isActive, true);
    for (const fn of ['backend', 'activeRun', 'statusBar', 'lastPrediction', 'whenPredictionsSettled', 'runs'] as const) {
      assert.equal(typeof api[fn], 'function', `api.${fn}()`);
    }
    assert.equal(typeof api.onDidPredict, 'function', 'api.onDidPredict is an event');
    assert.equal(typeof api.onDidFinishCompression, 'function', 'api.onDidFinishCompression is an event');
  });

  it('is the extension from the checkout (the development path), not an installed copy', () => {
    const expected = testMode().extensionPath;
    assert.ok(expected, 'the runner names the checkout');
    const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
    assert.equal(fs.realpathSync(ext.extensionUri.fsPath), fs.realpathSync(expected));
  });

  it('registers every command of contributes.commands', async () => {
    await getApi();
    const registered = new Set(await vscode.commands.getCommands(true));
    const declared = manifest().contributes.commands.map((c) => c.command);
    assert.ok(declared.length >= 8, `package.json declares ${declared.length} commands`);
    const missing = declared.filter((c) => !registered.has(c));
    assert.deepEqual(missing, [], `declared in package.json but not registered: ${missing.join(', ')}`);
  });

  it('declares every setting with its default readable through the configuration API', () => {
    const props = manifest().contributes.configuration.properties;
    for (const key of [
      'vtrans.budget.keep',
      'vtrans.budget.kind',
      'vtrans.method',
      'vtrans.dataFraction',
      'vtrans.device',
      'vtrans.gpus',
      'vtrans.roundTo',
      'vtrans.pythonPath',
    ]) {
      assert.ok(props[key], `${key} is declared`);
    }
    for (const [key, schema] of Object.entries(props)) {
      const inspected = vscode.workspace.getConfiguration().inspect(key);
      assert.ok(inspected, `${key} is known to the configuration service`);
      assert.deepEqual(inspected.defaultValue, schema.default, `${key} default`);
    }
  });

  it('contributes the Runs view', async () => {
    await getApi();
    assert.ok(manifest().contributes.views.vtrans?.some((v) => v.id === 'vtrans.runs'));
    // The view's focus command exists once the view is registered; opening it must not throw.
    await vscode.commands.executeCommand('vtrans.runs.focus');
  });

  it('is quiet: no backend at activation; a status item only where a run exists', async () => {
    const api = await getApi();
    await api.whenPredictionsSettled();
    await sleep(500);
    assert.equal(api.backend(), undefined, 'no backend was started');
    assert.deepEqual(backendProcesses(), [], 'no backend process');
    const hasRun = api.runs().some((r) => r.info.status === 'done');
    assert.equal(api.statusBar().visible, hasRun, `status item visible: ${api.statusBar().visible}, finished runs: ${hasRun}`);
    if (hasRun) assert.match(api.statusBar().text, /%/, 'the budget from report.json');
  });

  it('activates on its commands, views and runs only, and marks the model folders for the Explorer menu', async () => {
    const pkg = manifest() as unknown as {
      activationEvents: string[];
      contributes: { menus: Record<string, { command: string; when: string }[]>; walkthroughs: { id: string; steps: { id: string }[] }[] };
    };
    assert.ok(!pkg.activationEvents.some((e) => /config\.json/.test(e)), pkg.activationEvents.join(', '));
    assert.ok(pkg.activationEvents.includes('workspaceContains:.vtrans/runs/*/run.json'));
    const menu = pkg.contributes.menus['explorer/context'].find((m) => m.command === 'vtrans.compress');
    assert.equal(menu?.when, 'explorerResourceIsFolder && resourcePath in vtrans.modelFolders');
    const api = await getApi();
    const model = testMode().modelDir;
    await waitForFolders(api, model);
    assert.ok(api.modelFolders().includes(model), `${model} in ${api.modelFolders().join(', ')}`);
    assert.ok(!api.modelFolders().includes(path.dirname(testMode().data)), 'the data folder is not a model folder');
    assert.deepEqual(
      pkg.contributes.walkthroughs[0].steps.map((s) => s.id),
      ['interpreter', 'environment', 'sample', 'compress', 'views'],
    );
  });

  it('sees the workspace trust the runner set up', () => {
    const mode = testMode().mode;
    assert.equal(vscode.workspace.isTrusted, mode !== 'untrusted', `vscode.workspace.isTrusted in the ${mode} workspace`);
  });
});

async function waitForFolders(api: { modelFolders(): string[] }, dir: string): Promise<void> {
  for (let i = 0; i < 50 && !api.modelFolders().includes(dir); i++) await sleep(100);
}
