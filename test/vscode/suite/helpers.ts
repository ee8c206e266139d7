/** Shared helpers of the extension-host tests (bundled into each test file). */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { CompressArgs, VTransApi } from '../../../src/extension/api';
import type { RunInfo } from '../../../src/core/runs';

export const EXTENSION_ID = 'vtrans.vtrans';

export interface TestMode {
  mode: 'trusted' | 'untrusted' | 'e2e';
  python: string;
  /** Where the extension under test must be loaded from (the checkout). */
  extensionPath?: string;
  modelDir: string;
  data: string;
  evalData: string;
  /** Untrusted mode: a finished run made with the CLI before the editor opened. */
  seededRun?: string;
  /** Where index.ts writes the results. */
  results?: string;
  /** JSON lines the runner appends for every notification it sees in the workbench. */
  notifications?: string;
}

export function workspaceRoot(): string {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) throw new Error('the tests need a workspace folder (test/vscode/run.mjs opens one)');
  return folder.uri.fsPath;
}

export function testMode(): TestMode {
  const file = path.join(workspaceRoot(), 'vtrans-test-mode.json');
  if (!fs.existsSync(file))
    throw new Error(`${file} is missing: run the suite through test/vscode/run.mjs (or electron.mjs), which writes it`);
  return JSON.parse(fs.readFileSync(file, 'utf8')) as TestMode;
}

export function manifest(): {
  contributes: {
    commands: { command: string; title: string }[];
    configuration: { properties: Record<string, { default?: unknown }> };
    views: Record<string, { id: string }[]>;
  };
} {
  const ext = vscode.extensions.getExtension(EXTENSION_ID);
  if (!ext) throw new Error(`extension ${EXTENSION_ID} is not installed`);
  return ext.packageJSON;
}

export async function getApi(): Promise<VTransApi> {
  const ext = vscode.extensions.getExtension<VTransApi>(EXTENSION_ID);
  if (!ext) throw new Error(`extension ${EXTENSION_ID} is not installed`);
  const api = await ext.activate();
  if (!api || typeof api.backend !== 'function') throw new Error('activate() did not return the VTransApi object (src/extension/api.ts)');
  return api;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `fn` gives a value other than undefined/false; fails naming what it waited for. */
export async function waitFor<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  ms = 30_000,
  every = 200,
): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end)
      throw new Error(`timed out after ${ms / 1000} s waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(every);
  }
}

/** The next event that passes `filter`, or a timeout error. */
export function nextEvent<T>(event: vscode.Event<T>, what: string, filter: (e: T) => boolean = () => true, ms = 30_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.dispose();
      reject(new Error(`timed out after ${ms / 1000} s waiting for ${what}`));
    }, ms);
    const sub = event((e) => {
      if (!filter(e)) return;
      clearTimeout(timer);
      sub.dispose();
      resolve(e);
    });
  });
}

export function runInfo(runDir: string): RunInfo | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')) as RunInfo;
  } catch {
    return undefined;
  }
}

export function pidAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0); it is not serving anything.
  try {
    return !/^\d+ \(.*\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return process.platform !== 'linux';
  }
}

/** Live `python -m vtrans.server` processes started by this extension host (Linux /proc). */
export function backendProcesses(): { pid: number; cmd: string }[] {
  if (process.platform !== 'linux') return [];
  const out: { pid: number; cmd: string }[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z' || Number(fields[1]) !== process.pid) continue;
      const cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmd.includes('vtrans.server')) out.push({ pid: Number(name), cmd });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Notifications the runner saw in the workbench since `since` (ms epoch). */
export function notificationsSince(since: number): { t: number; text: string; severity: string }[] {
  const file = testMode().notifications;
  if (!file || !fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { t: number; text: string; severity: string })
    .filter((n) => n.t >= since);
}

/**
 * The text of the first notification matching `re` shown since `since`, as the runner saw it in the workbench.
 * Undefined (with a visible note) under a runner that does not watch the workbench (electron.mjs).
 */
export async function waitForNotification(re: RegExp, since: number, ms = 20_000): Promise<string | undefined> {
  if (!testMode().notifications) {
    log(`notification ${re} not checked: this runner does not watch the workbench's notifications`);
    return undefined;
  }
  const n = await waitFor(`a notification matching ${re}`, () => notificationsSince(since).find((x) => re.test(x.text)), ms, 250).catch(
    (e: Error) => {
      const seen = notificationsSince(since).map((x) => x.text);
      throw new Error(`${e.message}; seen: ${seen.length ? seen.map((s) => JSON.stringify(s)).join(', ') : 'none'}`);
    },
  );
  return n.text;
}

/** CompressArgs of a quick run on the tiny model (seconds on 2 CPU cores). */
export function quickArgs(extra: Record<string, unknown> = {}): CompressArgs {
  const m = testMode();
  return {
    modelDir: m.modelDir,
    data: m.data,
    evalData: m.evalData,
    keep: 0.5,
    method: 'faster',
    extra: { minPruneSteps: 20, pruneEpochs: 0, sweep: [0.8, 0.6], probeExamples: 8, ...extra },
    confirm: false,
  };
}

/** A finished run in the workspace (made with a quick compression when there is none yet). */
export async function ensureFinishedRun(api: VTransApi): Promise<string> {
  const done = api.runs().find((r) => r.info.status === 'done' && r.report);
  if (done) return done.dir;
  const outcome = (await vscode.commands.executeCommand('vtrans.compress', quickArgs())) as { runDir?: string } | undefined;
  assert.ok(outcome?.runDir, 'vtrans.compress with CompressArgs returned no outcome');
  await waitFor(
    'the Runs view to list the new run',
    () => api.runs().some((r) => r.dir === outcome.runDir && r.info.status === 'done'),
    10_000,
  );
  return outcome.runDir;
}

export async function setKeep(keep: number | undefined): Promise<void> {
  await vscode.workspace.getConfiguration('vtrans').update('budget.keep', keep, vscode.ConfigurationTarget.Workspace);
}

export function log(msg: string): void {
  console.log(`      · ${msg}`);
}
