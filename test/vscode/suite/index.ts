/**
 * The extension-host test suite's entry (`extensionTestsPath`): VS Code calls `run()` inside the extension
 * host once the workbench is up; resolving means success, rejecting makes the host exit with code 1.
 * Which tests run depends on the workspace's `vtrans-test-mode.json` (written by test/vscode/run.mjs):
 *   *.both.test.js       every mode
 *   *.trusted.test.js    the trusted workspace (backend, compress, settings, cancel, crash)
 *   *.untrusted.test.js  the untrusted workspace (restricted mode)
 * Mocha's spec reporter prints to the extension host's console (forwarded to the runner's stdout); the
 * results also go to the marker's `results` file so the runner can summarise them without the console.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';
import { testMode } from './helpers';

export function run(): Promise<void> {
  const mode = testMode();
  const mocha = new Mocha({
    ui: 'bdd',
    color: false,
    reporter: 'spec',
    timeout: 120_000,
    slow: 15_000,
    grep: process.env.VTRANS_TEST_GREP,
  });
  const suffixes = ['.both.test.js', `.${mode.mode}.test.js`];
  const files = fs
    .readdirSync(__dirname)
    .filter((f) => suffixes.some((s) => f.endsWith(s)))
    .sort();
  for (const f of files) mocha.addFile(path.join(__dirname, f));
  console.log(`[vtrans-suite] mode ${mode.mode}: ${files.join(', ')}`);
  const results: { title: string; state: string; ms?: number; error?: string }[] = [];
  const write = (extra: Record<string, unknown>) => {
    if (mode.results) fs.writeFileSync(mode.results, JSON.stringify({ mode: mode.mode, files, results, ...extra }, null, 2));
  };
  return new Promise((resolve, reject) => {
    try {
      const runner = mocha.run((failures) => {
        write({ failures, done: true });
        console.log(`[vtrans-suite] ${mode.mode}: ${results.filter((r) => r.state === 'passed').length} passed, ${failures} failed`);
        if (failures > 0) reject(new Error(`${failures} test(s) failed`));
        else resolve();
      });
      runner.on('pass', (t) => {
        results.push({ title: t.fullTitle(), state: 'passed', ms: t.duration });
        write({ done: false });
      });
      runner.on('pending', (t) => {
        results.push({ title: t.fullTitle(), state: 'pending' });
        write({ done: false });
      });
      runner.on('fail', (t, err: Error) => {
        results.push({ title: t.fullTitle(), state: 'failed', error: String(err?.stack ?? err) });
        write({ done: false });
      });
    } catch (e) {
      reject(e);
    }
  });
}
