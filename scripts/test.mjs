// `npm test`: every layer, in order, each with its own runner's summary, then one line per layer.
// `npm test -- --only unit,backend` runs a subset (layers: typecheck lint unit backend exthost e2e).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bootstrap, log, ROOT } from './bootstrap.mjs';
import { ensureSystemPackages, ensureTools } from '../test/vscode/lib/tools.mjs';

const onlyArg = process.argv.find((a) => a.startsWith('--only'));
const only = onlyArg ? (onlyArg.includes('=') ? onlyArg.split('=')[1] : process.argv[process.argv.indexOf(onlyArg) + 1]).split(',') : null;

function unitTestFiles() {
  const dir = path.join(ROOT, 'test', 'unit');
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.test.ts'))
    .sort()
    .map((f) => path.join('test', 'unit', f));
}

const npx = (bin) => path.join(ROOT, 'node_modules', '.bin', bin);

function layers(python) {
  const env = { ...process.env, VTRANS_PYTHON: python.executable, OMP_WAIT_POLICY: 'PASSIVE' };
  return [
    { name: 'typecheck', cmd: npx('tsc'), args: ['-p', '.', '--noEmit'] },
    { name: 'lint', cmd: process.execPath, args: ['scripts/lint.mjs'], env },
    {
      name: 'unit',
      cmd: process.execPath,
      args: ['--import', 'tsx', '--test', '--test-reporter', 'spec', '--test-concurrency', '1', ...unitTestFiles()],
      env,
    },
    {
      name: 'backend',
      cmd: python.executable,
      args: ['-m', 'pytest', 'backend/tests', '-q', '-p', 'no:cacheprovider'],
      env: { ...env, PYTHONPATH: path.join(ROOT, 'backend') },
    },
    ...(fs.existsSync(path.join(ROOT, 'test', 'vscode', 'run.mjs'))
      ? [
          { name: 'exthost', cmd: process.execPath, args: ['test/vscode/run.mjs', 'exthost'], env },
          { name: 'e2e', cmd: process.execPath, args: ['test/vscode/run.mjs', 'e2e'], env },
        ]
      : []),
  ];
}

/**
 * Everything any selected layer needs, installed before the first one runs: Debian's chromium (the webview
 * unit tests and the VS Code layers) and, for the VS Code layers, ripgrep and code-server.
 */
function installLayerTools(selected) {
  const names = new Set(selected.map((l) => l.name));
  if (names.has('exthost') || names.has('e2e')) ensureTools();
  else if (names.has('unit')) ensureSystemPackages(false);
}

function main() {
  const python = bootstrap();
  const selected = layers(python).filter((layer) => !only || only.includes(layer.name));
  installLayerTools(selected);
  const results = [];
  for (const layer of selected) {
    log(`--- ${layer.name}`);
    const t0 = Date.now();
    const r = spawnSync(layer.cmd, layer.args, { cwd: ROOT, stdio: 'inherit', env: layer.env ?? process.env });
    results.push({ name: layer.name, ok: r.status === 0, seconds: (Date.now() - t0) / 1000 });
  }
  console.log('\nlayer       result  seconds');
  for (const r of results) console.log(`${r.name.padEnd(11)} ${r.ok ? 'pass' : 'FAIL'}    ${r.seconds.toFixed(1)}`);
  const failed = results.filter((r) => !r.ok).map((r) => r.name);
  console.log(failed.length ? `\nFAILED: ${failed.join(', ')}` : `\nall ${results.length} layers passed`);
  process.exit(failed.length ? 1 : 0);
}

try {
  main();
} catch (e) {
  log(e.message);
  process.exit(1);
}
