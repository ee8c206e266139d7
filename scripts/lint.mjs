// `npm test`'s lint layer (and `npm run lint`): every checker in check mode (mypy type-checks the backend
// package, configured in backend/pyproject.toml), each reported, all run even when one fails. `npm run format`
// writes what the formatters would change.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { log, ROOT, venvPython } from './bootstrap.mjs';

const bin = (name) => path.join(ROOT, 'node_modules', '.bin', name);
const python = process.env.VTRANS_PYTHON || venvPython();
const write = process.argv.includes('--write');
const backend = path.join(ROOT, 'backend');

const checks = write
  ? [
      { name: 'prettier', cmd: bin('prettier'), args: ['--write', '--log-level', 'warn', '.'] },
      { name: 'ruff format', cmd: python, args: ['-m', 'ruff', 'format', '.', '../examples/build'], cwd: backend },
      { name: 'ruff check --fix', cmd: python, args: ['-m', 'ruff', 'check', '--fix', '.', '../examples/build'], cwd: backend },
    ]
  : [
      { name: 'eslint', cmd: bin('eslint'), args: ['.'] },
      { name: 'prettier', cmd: bin('prettier'), args: ['--check', '--log-level', 'warn', '.'] },
      { name: 'ruff check', cmd: python, args: ['-m', 'ruff', 'check', '.', '../examples/build'], cwd: backend },
      { name: 'ruff format', cmd: python, args: ['-m', 'ruff', 'format', '--check', '.', '../examples/build'], cwd: backend },
      { name: 'mypy', cmd: python, args: ['-m', 'mypy'], cwd: backend },
    ];

const failed = [];
for (const c of checks) {
  const r = spawnSync(c.cmd, c.args, { cwd: c.cwd ?? ROOT, stdio: 'inherit' });
  if (r.status !== 0) failed.push(c.name);
  else log(`${c.name}: ok`);
}
if (failed.length) {
  log(`failed: ${failed.join(', ')}${write ? '' : ' (npm run format fixes what the formatters can)'}`);
  process.exit(1);
}
