/** The backend client against the real Python backend: started on demand, initialized, restartable. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import { backendProcesses, getApi, log, pidAlive, testMode, waitFor, waitForNotification } from './helpers';

describe('backend', () => {
  it('starts the backend with the configured interpreter and gets its initialize result', async () => {
    const api = await getApi();
    const before = api.backend()?.starts ?? 0;
    const t0 = Date.now();
    await vscode.commands.executeCommand('vtrans.restartBackend');
    const b = await waitFor('api.backend() after vtrans.restartBackend', () => api.backend()?.running && api.backend(), 60_000);
    log(`backend pid ${b.pid} (${b.python}), start #${b.starts}, ${Date.now() - t0} ms`);
    assert.ok(b.pid && pidAlive(b.pid), 'the backend process is alive');
    assert.equal(b.starts, before + 1, 'api.backend().starts counts the start');
    assert.equal(
      fs.realpathSync(b.python),
      fs.realpathSync(testMode().python),
      'the interpreter the runner configured (vtrans.pythonPath)',
    );
    if (process.platform === 'linux') {
      const cmd = fs.readFileSync(`/proc/${b.pid}/cmdline`, 'utf8').split('\0').join(' ');
      assert.match(cmd, /-m vtrans\.server/);
      assert.deepEqual(
        backendProcesses().map((p) => p.pid),
        [b.pid],
        'exactly one backend process',
      );
    }
    // The restart notification carries the initialize result (torch version and device).
    const text = await waitForNotification(/backend restarted \(torch \d+\.\d+/, t0);
    if (text !== undefined) {
      log(text);
      assert.match(text, /\b(cpu|cuda)\b/);
    }
  });

  it('restarts into a new process and leaves no old one behind', async () => {
    const api = await getApi();
    const old = api.backend();
    assert.ok(old?.pid, 'a backend runs');
    await vscode.commands.executeCommand('vtrans.restartBackend');
    const b = await waitFor('a new backend', () => api.backend()?.running && api.backend()!.pid !== old.pid && api.backend(), 60_000);
    assert.equal(b.starts, old.starts + 1);
    await waitFor(`the old backend (pid ${old.pid}) to exit`, () => !pidAlive(old.pid), 10_000);
    if (process.platform === 'linux')
      assert.deepEqual(
        backendProcesses().map((p) => p.pid),
        [b.pid],
      );
  });
});
