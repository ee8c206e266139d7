// `npm run demo`: the main job on the bundled demo. Bootstraps (node modules, bundle, PyTorch), builds the
// SpamAssassin BERT classifier if it is missing (its data prepared, its weights the committed teacher/), compresses it with Fast-VTrans to 30 % of its
// parameters, sweeps the tradeoff, measures both ONNX models in onnxruntime-node and prints the summary.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { bootstrapOrExit, log, ROOT } from './bootstrap.mjs';

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', ...opts });
  if (r.status !== 0) {
    log(`${path.basename(args[0] ?? cmd)} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
}

const t0 = Date.now();
const python = bootstrapOrExit();
const env = { ...process.env, VTRANS_PYTHON: python.executable, OMP_WAIT_POLICY: 'PASSIVE' };
const demo = path.join(ROOT, 'examples', 'spam-classifier');
log('demo model: examples/spam-classifier (its data prepared once, its weights the committed teacher/)');
run(process.execPath, ['--import', 'tsx', 'examples/build/model.ts', 'spam'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
log('compressing with Fast-VTrans to 30% of the parameters');
run(
  process.execPath,
  [
    path.join(ROOT, 'dist', 'cli.js'),
    'compress',
    path.join(demo, 'model'),
    '--data',
    path.join(demo, 'data', 'train.jsonl'),
    '--eval-data',
    path.join(demo, 'data', 'dev.jsonl'),
    '--test-data',
    path.join(demo, 'data', 'test.jsonl'),
    '--method',
    'fast',
    '--keep',
    '0.3',
    '--budget',
    'params',
  ],
  { env, cwd: demo },
);
log(`demo finished in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
