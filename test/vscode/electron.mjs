// The extension-host suite in desktop VS Code (Electron), for machines that can download it: the same
// test/vscode/suite as `run.mjs exthost`, run twice (trusted and untrusted workspace), the extension loaded
// from the checkout (extensionDevelopmentPath). @vscode/test-electron 2.5 downloads and caches VS Code.
//
//   node test/vscode/electron.mjs [--version stable|insiders|1.100.3] [--mode trusted|untrusted] [--grep re]
//
// Linux without a display: run under `xvfb-run -a` (done automatically when xvfb-run is installed).
// Not runnable on the project's CI machines (no VS Code downloads there); there code-server runs the suite.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { downloadAndUnzipVSCode } from '@vscode/test-electron';
import { build, ensurePython } from '../../scripts/bootstrap.mjs';
import { makeProfile } from './lib/codeServer.mjs';
import { bundleSuite, SUITE_INDEX, summarizeResults } from './lib/suite.mjs';
import { CACHE, ROOT, step } from './lib/tools.mjs';
import { makeTinyWorkspace } from './fixtures/make-workspace.mjs';

const { values: opts } = parseArgs({
  options: { version: { type: 'string' }, mode: { type: 'string' }, grep: { type: 'string' }, timeout: { type: 'string' } },
});
// engines.vscode is ^1.100.0: any stable release since 1.100 runs the suite.
const VERSION = opts.version ?? process.env.VSCODE_TEST_VERSION ?? 'stable';
const TIMEOUT_S = Number(opts.timeout ?? 900);

function xvfbWrap(cmd, args) {
  if (process.platform !== 'linux' || process.env.DISPLAY || process.env.WAYLAND_DISPLAY) return [cmd, args];
  if (spawnSync('sh', ['-c', 'command -v xvfb-run'], { stdio: 'ignore' }).status === 0) return ['xvfb-run', ['-a', cmd, ...args]];
  step('no DISPLAY and no xvfb-run: VS Code may fail to start (apt-get install xvfb, or run under a display)');
  return [cmd, args];
}

async function runMode(executable, python, mode) {
  const name = `electron-${mode}`;
  const runDir = path.join(CACHE, 'runs', name);
  fs.rmSync(runDir, { recursive: true, force: true });
  fs.mkdirSync(runDir, { recursive: true });
  const workspace = path.join(CACHE, 'workspaces', name);
  const results = path.join(runDir, 'results.json');
  makeTinyWorkspace(workspace, { mode, python, files: { results } });
  const profile = makeProfile(name, { trust: mode === 'untrusted' ? 'enabled' : 'disabled', settings: { 'vtrans.pythonPath': python } });
  // The arguments @vscode/test-electron's runTests() passes, except that it always adds --disable-workspace-trust,
  // which the untrusted run must not have; so VS Code is started here directly.
  const args = [
    workspace,
    '--no-sandbox',
    '--disable-gpu-sandbox',
    '--disable-updates',
    '--skip-welcome',
    '--skip-release-notes',
    '--disable-extensions',
    ...(mode === 'untrusted' ? [] : ['--disable-workspace-trust']),
    `--extensionDevelopmentPath=${ROOT}`,
    `--extensionTestsPath=${SUITE_INDEX}`,
    `--user-data-dir=${profile.userData}`,
    `--extensions-dir=${profile.extensions}`,
  ];
  const [cmd, argv] = xvfbWrap(executable, args);
  step(`${name}: ${path.basename(executable)} ${mode} workspace ${path.relative(ROOT, workspace)}`);
  const child = spawn(cmd, argv, {
    stdio: 'inherit',
    env: { ...process.env, VTRANS_PYTHON: python, OMP_WAIT_POLICY: 'PASSIVE', ...(opts.grep ? { VTRANS_TEST_GREP: opts.grep } : {}) },
  });
  let timer;
  const code = await Promise.race([
    new Promise((r) => child.on('exit', (c, s) => r(c ?? s))),
    new Promise((r) => (timer = setTimeout(() => r('timeout'), TIMEOUT_S * 1000))),
  ]);
  clearTimeout(timer);
  if (code === 'timeout') child.kill('SIGKILL');
  const r = summarizeResults(name, results, code);
  return code === 'timeout' ? { ok: false, summary: `${name}: timed out after ${TIMEOUT_S} s` } : r;
}

async function main() {
  build();
  const info = ensurePython();
  const python = process.env.VTRANS_PYTHON || info.executable;
  await bundleSuite();
  step(`VS Code ${VERSION} (@vscode/test-electron, cached in ${path.relative(ROOT, path.join(CACHE, 'vscode'))})`);
  const executable = await downloadAndUnzipVSCode({ version: VERSION, cachePath: path.join(CACHE, 'vscode') });
  const out = [];
  for (const mode of opts.mode ? [opts.mode] : ['trusted', 'untrusted']) out.push(await runMode(executable, python, mode));
  console.log('');
  for (const r of out) console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.summary}`);
  process.exit(out.every((r) => r.ok) ? 0 : 1);
}

main().catch((e) => {
  console.error(`electron: ${e.stack ?? e.message}`);
  process.exit(1);
});
