// `npm run bench`: bootstrap, then the benchmark harness (bench/run.ts). Arguments pass through, e.g.
// `npm run bench -- --tasks spam --budgets 0.3`.
import { spawnSync } from 'node:child_process';
import { bootstrapOrExit, ROOT } from './bootstrap.mjs';

const python = bootstrapOrExit();
const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...process.argv.slice(2)], {
  cwd: ROOT,
  stdio: 'inherit',
  env: { ...process.env, VTRANS_PYTHON: python.executable, OMP_WAIT_POLICY: 'PASSIVE' },
});
process.exit(r.status ?? 1);
