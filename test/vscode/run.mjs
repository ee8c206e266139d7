// The VS Code test layers, in a real VS Code (code-server 4.100.3: VS Code 1.100.3 with a Node 20 extension host)
// driven by Debian's chromium through playwright-core. docs/testing.md explains them.
//
//   node test/vscode/run.mjs exthost   the mocha suite (test/vscode/suite) inside the extension host, twice:
//                                      a trusted workspace and an untrusted one (restricted mode)
//   node test/vscode/run.mjs e2e       the Playwright UI test (test/vscode/ui) against the installed .vsix
//   node test/vscode/run.mjs all       both
// Options: --mode trusted|untrusted (exthost: one of the two), --grep <re> (mocha), --no-package (reuse
// dist-vsix/), --timeout <s> (per suite run; default 900). Tools and profiles live in .vscode-test/.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { format, parseArgs } from 'node:util';
import { build, ensurePython } from '../../scripts/bootstrap.mjs';
import { packageTarget } from '../../scripts/package.mjs';
import { launch, consoleText, notificationTexts } from './lib/browser.mjs';
import { installVsix, makeProfile, startCodeServer } from './lib/codeServer.mjs';
import { bundleSuite, SUITE_INDEX, summarizeResults } from './lib/suite.mjs';
import { CACHE, ensureTools, LOGS, ROOT, step } from './lib/tools.mjs';
import { makeCsvWorkspace, makeDemoWorkspace, makeQuietWorkspace, makeTinyWorkspace } from './fixtures/make-workspace.mjs';

export const TEST_OUTPUT = path.join(ROOT, 'test-output');

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    mode: { type: 'string' },
    grep: { type: 'string' },
    'no-package': { type: 'boolean' },
    timeout: { type: 'string' },
    help: { type: 'boolean' },
  },
});
const what = positionals[0] ?? 'all';
if (opts.help || !['exthost', 'e2e', 'all'].includes(what)) {
  console.log('Usage: node test/vscode/run.mjs <exthost|e2e|all> [--mode trusted|untrusted] [--grep re] [--no-package] [--timeout s]');
  process.exit(opts.help ? 0 : 2);
}
const SUITE_TIMEOUT_S = Number(opts.timeout ?? process.env.VTRANS_VSCODE_TIMEOUT ?? 900);

/** The linux-x64 (current platform) .vsix; vsce's prepublish leaves a production dist/, so the dev build follows. */
function packageVsix() {
  const target = `${process.platform}-${process.arch}`;
  const existing = path.join(
    ROOT,
    'dist-vsix',
    `vtrans-${target}-${JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version}.vsix`,
  );
  if (opts['no-package'] && fs.existsSync(existing)) {
    step(`reusing ${path.relative(ROOT, existing)}`);
    return existing;
  }
  step(`packaging the extension (${target})`);
  const vsix = packageTarget(target, { quiet: true });
  build();
  return vsix;
}

function pythonFor() {
  const info = ensurePython();
  return process.env.VTRANS_PYTHON || info.executable;
}

/** Polls the workbench's notifications and appends new ones (as JSON lines) to `file`, for the suite to read. */
function watchNotifications(page, file, log) {
  const seen = new Set();
  let stopped = false;
  const tick = async () => {
    while (!stopped) {
      for (const n of await notificationTexts(page)) {
        if (!n.text || seen.has(n.text)) continue;
        seen.add(n.text);
        fs.appendFileSync(file, JSON.stringify({ t: Date.now(), ...n }) + '\n');
        log?.(`[notification${n.severity ? ` ${n.severity}` : ''}] ${n.text}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const done = tick();
  return async () => {
    stopped = true;
    await done;
  };
}

function profileSettings(python, extra = {}) {
  return { 'vtrans.pythonPath': python, ...extra };
}

/** Leaves nothing linted or loaded from the profile: the installed copy of the extension is removed after a run. */
function cleanProfile(profile) {
  fs.rmSync(profile.extensions, { recursive: true, force: true });
}

/** One extension-host suite run in code-server; resolves to { ok, summary }. */
async function runSuite({ tools, python, vsix, mode }) {
  const name = `exthost-${mode}`;
  const runDir = path.join(CACHE, 'runs', name);
  fs.rmSync(runDir, { recursive: true, force: true });
  fs.mkdirSync(runDir, { recursive: true });
  const workspace = path.join(CACHE, 'workspaces', name);
  const files = { results: path.join(runDir, 'results.json'), notifications: path.join(runDir, 'notifications.jsonl') };
  step(`${name}: workspace ${path.relative(ROOT, workspace)} (tiny BERT${mode === 'untrusted' ? ', a run made with the CLI' : ''})`);
  makeTinyWorkspace(workspace, { mode, python, files });
  const profile = makeProfile(name, { trust: mode === 'untrusted' ? 'enabled' : 'disabled', settings: profileSettings(python) });
  const installed = installVsix(tools.codeServer, profile, vsix, tools.env);
  step(`${name}: installed ${installed.join(', ')}`);
  const server = await startCodeServer(tools.codeServer, profile, {
    folder: workspace,
    env: { ...tools.env, VTRANS_PYTHON: python, OMP_WAIT_POLICY: 'PASSIVE', ...(opts.grep ? { VTRANS_TEST_GREP: opts.grep } : {}) },
  });
  const browserLog = path.join(LOGS, `${name}-browser.log`);
  const logStream = fs.createWriteStream(browserLog);
  const recent = [];
  const remember = (line) => {
    logStream.write(line + '\n');
    recent.push(line);
    if (recent.length > 60) recent.shift();
  };
  const browser = await launch();
  let code;
  let chain = Promise.resolve();
  let stopWatch = async () => {};
  try {
    const { page } = browser;
    const exited = new Promise((resolve) => void page.exposeFunction('codeAutomationExit', (c) => resolve(c)));
    // The extension host's console arrives as ['%c INFO', 'color: …', format, ...args]; the suite's lines are the
    // ones between its start and end markers (index.ts), formatted here in arrival order.
    let inSuite = false;
    page.on('console', (m) => {
      chain = chain.then(async () => {
        const args = await Promise.all(m.args().map((a) => a.jsonValue().catch(() => undefined)));
        const ext = typeof args[0] === 'string' && /^%c\s*(TRACE|DEBUG|INFO|WARN|ERROR)\b/.test(args[0]) && args.length >= 3;
        const text = ext ? format(...args.slice(2)) : consoleText(m);
        remember(`[${m.type()}] ${text}`);
        if (text.startsWith('[vtrans-suite] mode')) inSuite = true;
        if (inSuite && ext) console.log(text);
        if (/^\[vtrans-suite\] \w+: \d+ passed/.test(text)) inSuite = false;
      });
    });
    page.on('pageerror', (e) => remember(`[pageerror] ${e.message}`));
    const authority = `127.0.0.1:${server.port}`;
    const payload = JSON.stringify([
      ['extensionDevelopmentPath', `vscode-remote://${authority}${ROOT}`],
      ['extensionTestsPath', `vscode-remote://${authority}${SUITE_INDEX}`],
    ]);
    step(`${name}: running the suite (timeout ${SUITE_TIMEOUT_S} s)`);
    await page.goto(`${server.base}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(payload)}`, {
      waitUntil: 'domcontentloaded',
      timeout: 60_000,
    });
    stopWatch = watchNotifications(page, files.notifications, remember);
    let timer;
    code = await Promise.race([exited, new Promise((r) => (timer = setTimeout(() => r('timeout'), SUITE_TIMEOUT_S * 1000)))]);
    clearTimeout(timer);
    await Promise.race([chain, new Promise((r) => setTimeout(r, 5000))]);
    fs.mkdirSync(TEST_OUTPUT, { recursive: true });
    await page.screenshot({ path: path.join(TEST_OUTPUT, `${name}-end.png`) }).catch(() => {});
  } finally {
    await stopWatch();
    await browser.close();
    const left = await server.stop();
    logStream.end();
    cleanProfile(profile);
    if (left.length)
      step(`${name}: stopped processes left by code-server: ${left.map((p) => `${p.pid} ${p.cmd.slice(0, 80)}`).join('; ')}`);
  }
  if (code === 'timeout' || !fs.existsSync(files.results)) {
    console.log(
      `\n${name}: ${code === 'timeout' ? `TIMED OUT after ${SUITE_TIMEOUT_S} s` : `no results (exit code ${code})`}. Last log lines (${path.relative(ROOT, browserLog)}):`,
    );
    for (const l of recent.slice(-40)) console.log(`  ${l.slice(0, 400)}`);
  }
  if (code === 'timeout') {
    const partial = fs.existsSync(files.results) ? JSON.parse(fs.readFileSync(files.results, 'utf8')).results : [];
    const count = (state) => partial.filter((x) => x.state === state).length;
    return {
      ok: false,
      summary: `${name}: TIMED OUT after ${SUITE_TIMEOUT_S} s (${count('passed')} passed, ${count('failed')} failed before; last log lines above)`,
    };
  }
  return summarizeResults(name, files.results, code);
}

async function exthost(ctx) {
  const modes = opts.mode ? [opts.mode] : ['trusted', 'untrusted'];
  await bundleSuite();
  const out = [];
  for (const mode of modes) out.push(await runSuite({ ...ctx, mode }));
  return out;
}

const E2E_THEMES = {
  'workbench.colorTheme': 'Default Light Modern',
  'workbench.preferredLightColorTheme': 'Default Light Modern',
  'workbench.preferredDarkColorTheme': 'Default Dark Modern',
};

/**
 * The UI scenarios, each in its own code-server with a fresh profile and workspace, the packaged .vsix installed
 * and no development path:
 *   quiet        a workspace with a model project and no runs: no backend, no status item; the Explorer menu
 *   walkthrough  no interpreter configured: the walkthrough from its first step, the sample, a CSV, Compare
 *   compress     the spam-classifier demo through the pickers, the live training panel, the views
 */
const SCENARIOS = [
  {
    name: 'quiet',
    script: 'quiet.e2e.ts',
    make: (workspace, python) => {
      makeQuietWorkspace(workspace, { python });
      return { settings: profileSettings(python, E2E_THEMES), env: { VTRANS_PYTHON: python } };
    },
  },
  {
    name: 'walkthrough',
    script: 'walkthrough.e2e.ts',
    // A fresh user: no vtrans.pythonPath, no VTRANS_PYTHON; the walkthrough picks the interpreter.
    make: (workspace) => {
      makeCsvWorkspace(workspace);
      return { settings: { ...E2E_THEMES, 'vtrans.device': 'cpu' }, env: {} };
    },
  },
  {
    name: 'compress',
    script: 'compress.e2e.ts',
    make: (workspace, python) => {
      makeDemoWorkspace(workspace, {
        python,
        log: step,
        settings: {
          'vtrans.budget.keep': 0.5,
          'vtrans.budget.kind': 'params',
          'vtrans.method': 'faster',
          'vtrans.device': 'cpu',
          // Quick run on 2 CPU cores: short sequences, and a small share of the data for the mask training.
          'vtrans.maxLength': 32,
          'vtrans.dataFraction': 0.03,
        },
      });
      return { settings: profileSettings(python, E2E_THEMES), env: { VTRANS_PYTHON: python } };
    },
  },
];

/** One UI scenario in a fresh code-server, profile and workspace: its exit status and, on failure, why. */
async function runScenario(sc, { tools, python, vsix }) {
  const name = `e2e-${sc.name}`;
  const workspace = path.join(CACHE, 'workspaces', name);
  step(`${name}: workspace ${path.relative(ROOT, workspace)}`);
  const { settings, env } = sc.make(workspace, python);
  const profile = makeProfile(name, { trust: 'disabled', settings });
  const installed = installVsix(tools.codeServer, profile, vsix, tools.env);
  step(`${name}: installed ${installed.join(', ')} (the packaged extension, not the checkout)`);
  const serverEnv = { ...tools.env, OMP_WAIT_POLICY: 'PASSIVE', ...env };
  if (!env.VTRANS_PYTHON) delete serverEnv.VTRANS_PYTHON;
  const server = await startCodeServer(tools.codeServer, profile, { folder: workspace, env: serverEnv });
  const failureFile = path.join(TEST_OUTPUT, 'e2e', `${sc.name}-failure.txt`);
  fs.rmSync(failureFile, { force: true });
  let status;
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test', 'vscode', 'ui', sc.script)], {
      cwd: ROOT,
      stdio: 'inherit',
      env: {
        ...process.env,
        VTRANS_E2E_BASE: server.base,
        VTRANS_E2E_WORKSPACE: workspace,
        VTRANS_E2E_OUT: TEST_OUTPUT,
        VTRANS_E2E_TIMEOUT: String(SUITE_TIMEOUT_S),
        VTRANS_E2E_MARKER: server.marker,
        VTRANS_E2E_PYTHON: python,
        VTRANS_VSCODE_CACHE: CACHE,
      },
    });
    let timer;
    status = await Promise.race([
      new Promise((r) => child.on('exit', (c, sig) => r(c ?? sig))),
      new Promise((r) => (timer = setTimeout(() => r('timeout'), (SUITE_TIMEOUT_S + 60) * 1000))),
    ]);
    clearTimeout(timer);
    if (status === 'timeout') child.kill('SIGKILL');
  } finally {
    const left = await server.stop();
    cleanProfile(profile);
    if (left.length)
      step(`${name}: stopped processes left by code-server: ${left.map((p) => `${p.pid} ${p.cmd.slice(0, 80)}`).join('; ')}`);
  }
  if (status === 'timeout') {
    const tail = fs.existsSync(server.logFile) ? fs.readFileSync(server.logFile, 'utf8').split('\n').slice(-20) : [];
    console.log(`${name}: TIMED OUT; last code-server log lines:\n  ${tail.join('\n  ')}`);
  }
  const reason = fs.existsSync(failureFile) ? fs.readFileSync(failureFile, 'utf8').trim() : '';
  return { status, reason };
}

function describeStatus(status) {
  return status === 0 ? 'passed' : status === 'timeout' ? 'timed out' : `failed (exit ${status})`;
}

/**
 * The UI tests run in their own Node process (tsx), against code-server with the .vsix installed. Under CI a
 * failed scenario runs once more from scratch (a browser driving a workbench on two busy cores loses a focus
 * race now and then); the summary keeps the first failure's reason either way.
 */
async function e2e(ctx) {
  const only = process.env.VTRANS_E2E_ONLY?.split(',');
  const tries = process.env.CI ? 2 : 1;
  const results = [];
  fs.mkdirSync(TEST_OUTPUT, { recursive: true });
  if (!only) fs.rmSync(path.join(TEST_OUTPUT, 'e2e'), { recursive: true, force: true });
  for (const sc of SCENARIOS.filter((x) => !only || only.includes(x.name))) {
    const t0 = Date.now();
    let status, reason;
    const failures = [];
    for (let attempt = 1; attempt <= tries; attempt++) {
      ({ status, reason } = await runScenario(sc, ctx));
      if (status === 0) break;
      failures.push(`try ${attempt}: ${describeStatus(status)}${reason ? ` — ${reason}` : ''}`);
      if (attempt < tries) step(`e2e-${sc.name}: ${failures.at(-1)}; running it once more`);
    }
    const secs = ((Date.now() - t0) / 1000).toFixed(0);
    const earlier = failures.length && status === 0 ? ` on try ${failures.length + 1} (${failures.join('; ')})` : '';
    const why = status !== 0 ? `\n       ${failures.join('\n       ')}` : '';
    results.push({
      ok: status === 0,
      summary: `e2e-${sc.name}: ${describeStatus(status)}${earlier} in ${secs} s — screenshots in ${path.relative(ROOT, TEST_OUTPUT)}/e2e/${why}`,
    });
  }
  return results;
}

async function main() {
  const t0 = Date.now();
  const tools = ensureTools();
  const python = pythonFor();
  if (!fs.existsSync(path.join(ROOT, 'dist', 'extension.js'))) build();
  const vsix = packageVsix();
  const ctx = { tools, python, vsix };
  const results = [];
  if (what === 'exthost' || what === 'all') results.push(...(await exthost(ctx)));
  if (what === 'e2e' || what === 'all') results.push(...(await e2e(ctx)));
  console.log('');
  for (const r of results) console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.summary}`);
  console.log(`vscode ${what}: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  process.exit(results.every((r) => r.ok) ? 0 : 1);
}

main().catch((e) => {
  console.error(`vscode ${what}: ${e.stack ?? e.message}`);
  process.exit(1);
});
