/**
 * `npm run bench`: VTrans, Fast-VTrans and Faster-VTrans against peers run by the same harness (random, magnitude,
 * Taylor importance, CoFi's L0 masks, Kwon et al.'s retraining-free pruning, Torch-Pruning), on the demo tasks, at
 * 0.5 / 0.3 / 0.1 / 0.05 of the encoder parameters. Writes bench/results.json (updated after every run, so an interrupted bench resumes
 * where it stopped), SVG plots in bench/plots/ and BENCHMARKS.md.
 *
 *   node --import tsx bench/run.ts [--tasks spam,sotu,party] [--methods vtrans,fast,...] [--budgets 0.5,0.3] [--force] [--report-only]
 *     (--force runs the chosen entries again; the other passes run where their figures are missing: step costs
 *     again with --algorithm)
 *   node --import tsx bench/run.ts --algorithm [--tasks spam,party]  (step costs per task, the cut at 7B scale,
 *                                                  predict, phase 1's size gap)
 *   node --import tsx bench/run.ts --shapes       (uniform against heterogeneous at every budget, from one run)
 *   node --import tsx bench/run.ts --memory       (peak memory per parameter on a 7B-shaped slice; 7B masks costs)
 *   node --import tsx bench/run.ts --gpu [--dry]  (the GPU benchmark, under 10 minutes on one H100/H200; --dry: tiny
 *                                                  shapes on the CPU, written to bench/work/gpu-dry.json instead)
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildDemoModel, DEMO_MAX_LEN, type DemoName } from '../examples/build/model';
import { Backend } from '../src/core/backend';
import { compress, type CompressOutcome } from '../src/core/compress';
import { backendEnv, defaultCandidates, findPython } from '../src/core/python';
import type { CompressParams, InitializeResult } from '../src/core/protocol';
import type { Method } from '../src/core/report';
import { readRunInfo } from '../src/core/runs';
import { heatmapRenderTimes, predictLatency } from './interactive';
import { remeasureRun, ROUNDS } from './latency';
import {
  BUDGETS,
  COMMON,
  currentSettings,
  isCurrent,
  METHOD_SETTINGS,
  METHODS,
  revisionOf,
  RUNS_ON,
  SEEDS,
  settingsFor,
  TASK_SETTINGS,
  TASKS,
  teacherOf,
  type BenchMethod,
} from './plan';
import { buildOf, splitByBuild, testsOfDigests, weightsDigest } from './builds';
import { writeBenchmarksMd } from './report';
import type { ExampleScores } from './stats';

const ROOT = path.resolve(__dirname, '..');
const RESULTS = path.join(ROOT, 'bench', 'results.json');
const WORK = path.join(ROOT, 'bench', 'work');

/** The data files' extension: the LM task reads plain text. */
const dataExt = (task: DemoName): string => (task === 'sotu' ? 'txt' : 'jsonl');

export interface Entry {
  task: DemoName;
  method: BenchMethod;
  keep: number;
  /** The run's seed (older entries: 0). */
  seed?: number;
  /** The student's score on every test example (the run's test-scores.json), for paired bootstrap intervals. */
  scores?: ExampleScores;
  status: 'done' | 'failed';
  error?: string;
  runDir: string;
  /** Whole command: tokenization (cached), training, export, ONNX measurement. */
  totalSeconds: number;
  /** The backend's compression (training + export), without the ONNX measurement. */
  compressSeconds: number;
  achieved: number;
  params: number;
  encoderParams: number;
  flopsPerToken: number;
  /** The teacher's, from the same run: the FLOPs reduction is teacher ÷ student. */
  teacherFlopsPerToken?: number;
  /** The settings it ran with (on top of the method's defaults); an entry whose settings are not the current ones is stale. */
  settings?: Partial<CompressParams>;
  /** The teacher it compressed (plan.teacherOf); an entry from another is stale. */
  teacher?: string;
  /** The digest of that teacher's weights (builds.buildOf): entries of different builds of one recipe are reported apart. */
  teacherDigest?: string;
  /** The revision of the method's code it ran with (REVISIONS); absent: 1. */
  revision?: number;
  stale?: boolean;
  /** Steps of each phase, as the run planned them. */
  steps?: Record<string, number>;
  /** The run's sweep points (the masks cut again at each budget, no retraining), on the dev split. */
  sweep?: { keep: number; value: number }[];
  dev: { name: string; value: number } | null;
  test: { name: string; value: number } | null;
  teacherTest: { name: string; value: number } | null;
  latencyMs: { teacher: Record<string, number>; student: Record<string, number> } | null;
  /** Set once the final latency pass has replaced the figures taken during the compression. */
  latencyPass?: { rounds: number; at: string };
  onnxBytes: { teacher: number; student: number } | null;
  units: CompressOutcome['units'] | null;
}

export interface Results {
  machine: {
    cpu: string;
    cores: number;
    memoryGiB: number;
    node: string;
    platform: string;
    python?: string;
    torch?: string;
    backendThreads?: number;
    onnxThreads?: number;
    device?: string;
  };
  settings: {
    budgets: number[];
    kind: 'encoder-params';
    methods: Record<string, Partial<CompressParams>>;
    tasks: Record<string, Partial<CompressParams>>;
    common: Partial<CompressParams>;
  };
  tasks: Partial<Record<DemoName, { modelDir: string; training: Record<string, unknown> }>>;
  entries: Entry[];
  /** Step costs per task (`--algorithm`, or a task's first grid pass): the process with the median VTrans ratio of
   * `repeats` (each its own process, plain, VTrans and Faster-VTrans steps interleaved within it). */
  overhead: Partial<Record<DemoName, StepCosts>>;
  gpu: Record<string, unknown> | null;
  interactive?: { heatmaps?: Awaited<ReturnType<typeof heatmapRenderTimes>>; predict?: Awaited<ReturnType<typeof predictLatency>> };
  algorithm?: AlgorithmResults;
  /** `--shapes`: one VTrans run's masks cut at every budget in both output shapes (python -m vtrans.benchmarks shapes). */
  shapes?: Record<string, unknown>;
  /** `--memory`: measured peaks against the estimate (python -m vtrans.benchmarks memory). */
  memory?: Record<string, unknown> & { at: string; torch: string };
  updatedAt: string;
}

/** One process's seconds per step (python -m vtrans.benchmarks overhead), or its error. */
export type StepCost = Record<string, number | string>;

export interface StepCosts {
  at: string;
  /** The process with the median VTrans ratio. */
  median: StepCost;
  repeats: StepCost[];
}

/** `--algorithm`: the costs and the cut of the VTrans algorithm itself, each measured in one process (ratios within it). */
export interface AlgorithmResults {
  at: string;
  torch: string;
  python: string;
  /** The exact cut of a LLaMA-2-7B shape (ranking once, then one keep-set per budget), roundTo 1 and 8. */
  select: Record<string, unknown>[];
  /** The `predict` request on LLaMA-2-7B-shaped masks through the server's handler. */
  predict: Record<string, unknown>;
  /** Expected and thresholded size at the end of phase 1 against the target, per method's default recipe. */
  phase1: Record<string, unknown>[];
}

/**
 * The stored results, each entry stamped with the settings it ran with (older files kept them only in `settings`,
 * for the whole run) and marked stale where those are not the current ones; `settings` itself becomes the current.
 */
function load(): Results {
  if (fs.existsSync(RESULTS)) {
    const r = JSON.parse(fs.readFileSync(RESULTS, 'utf8')) as Results;
    for (const e of r.entries) e.settings ??= { ...r.settings.common, ...r.settings.tasks[e.task], ...r.settings.methods[e.method] };
    r.settings = currentSettings();
    markStale(r);
    for (const [task, o] of Object.entries(r.overhead)) if (!o?.median) delete r.overhead[task as DemoName]; // older code's figures
    return r;
  }
  return {
    machine: {
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
    },
    settings: currentSettings(),
    tasks: {},
    entries: [],
    overhead: {},
    gpu: null,
    updatedAt: new Date().toISOString(),
  };
}

function markStale(r: Results): void {
  for (const e of r.entries) {
    if (isCurrent(e)) delete e.stale;
    else e.stale = true;
  }
}

function save(r: Results): void {
  markStale(r);
  r.updatedAt = new Date().toISOString();
  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.writeFileSync(RESULTS, JSON.stringify(r, null, 2) + '\n');
  writeBenchmarksMd(r, ROOT);
}

/** Say so when the teacher built here is not the one BENCHMARKS.md shows: this machine's runs are reported apart. */
function warnOtherBuild(r: Results, task: DemoName, digest: string): void {
  const builds = splitByBuild(r.entries.filter((e) => e.task === task));
  if (builds.shown === undefined || builds.shown === digest) return;
  const here = builds.others.find((o) => o.build === digest);
  process.stderr.write(
    `bench: ${task}: the teacher built here (weights ${digest}${here ? `, test ${here.teacherTest}` : ''}) is another build than the one ${builds.entries.length} stored entries compressed; its ${here?.entries.length ?? 0} entries are reported apart until this build holds the most.\n`,
  );
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function runEntry(
  backend: Backend,
  task: DemoName,
  modelDir: string,
  dataDir: string,
  method: BenchMethod,
  keep: number,
  seed: number,
  teacherDigest: string,
): Promise<Entry> {
  const workspace = path.join(WORK, task);
  const runDir = path.join(workspace, 'runs', `${method}-${keep}${seed ? `-seed${seed}` : ''}`);
  fs.rmSync(runDir, { recursive: true, force: true });
  const ext = dataExt(task);
  const settings = settingsFor(task, method, keep, seed);
  const t0 = Date.now();
  const base: Entry = {
    task,
    method,
    keep,
    seed,
    status: 'failed',
    runDir: path.relative(ROOT, runDir),
    totalSeconds: 0,
    compressSeconds: 0,
    achieved: 0,
    params: 0,
    encoderParams: 0,
    flopsPerToken: 0,
    dev: null,
    test: null,
    teacherTest: null,
    latencyMs: null,
    onnxBytes: null,
    units: null,
    settings,
    teacher: teacherOf(task),
    teacherDigest,
    revision: revisionOf(method),
  };
  const steps: Record<string, number> = {};
  try {
    const o = await compress(
      backend,
      {
        workspace,
        modelDir,
        data: path.join(dataDir, `train.${ext}`),
        evalData: path.join(dataDir, `dev.${ext}`),
        testData: path.join(dataDir, `test.${ext}`),
        keep,
        maxLen: DEMO_MAX_LEN[task],
        budget: 'encoder-params',
        method: method as Method,
        runDir,
        device: 'auto',
        extra: settings,
      },
      {
        onProgress: (p) => {
          steps[p.phase] = Math.max(steps[p.phase] ?? 0, p.total);
          if (p.step === p.total || p.step % 50 === 0)
            process.stderr.write(`  ${task} ${method} ${keep}: ${p.phase} ${p.step}/${p.total}\r`);
        },
      },
    );
    const info = readRunInfo(runDir);
    const result = (info?.result ?? {}) as { wallSeconds?: number };
    // Heavy intermediate files are not needed once measured.
    fs.rmSync(path.join(runDir, 'checkpoints'), { recursive: true, force: true });
    return {
      ...base,
      status: 'done',
      totalSeconds: (Date.now() - t0) / 1000,
      compressSeconds: result.wallSeconds ?? 0,
      achieved: o.achieved,
      params: o.student.params,
      encoderParams: o.student.encoderParams,
      flopsPerToken: o.student.flopsPerToken,
      teacherFlopsPerToken: o.teacher.flopsPerToken,
      steps,
      sweep: sweepPoints(runDir),
      scores: testScores(runDir),
      dev: o.student.metric && { name: o.student.metric.name, value: o.student.metric.value },
      test: o.test ? { name: o.test.student.name, value: o.test.student.value } : null,
      teacherTest: o.test ? { name: o.test.teacher.name, value: o.test.teacher.value } : null,
      latencyMs: o.teacher.onnx && o.student.onnx ? { teacher: o.teacher.onnx.latencyMs, student: o.student.onnx.latencyMs } : null,
      onnxBytes: o.teacher.onnx && o.student.onnx ? { teacher: o.teacher.onnx.bytes, student: o.student.onnx.bytes } : null,
      units: o.units,
    };
  } catch (e) {
    return { ...base, totalSeconds: (Date.now() - t0) / 1000, error: (e as Error).message };
  }
}

/** The heterogeneous sweep points of a run's report (its own budget's trained model is listed apart, as "finetuned"). */
function sweepPoints(runDir: string): Entry['sweep'] {
  const report = JSON.parse(fs.readFileSync(path.join(runDir, 'report.json'), 'utf8')) as {
    tradeoff: { source: string; keep: number; metric: number | null }[];
  };
  const points = report.tradeoff.filter((t) => t.source === 'sweep' && t.metric !== null);
  return points.length ? points.map((t) => ({ keep: t.keep, value: t.metric! })) : undefined;
}

/** The student's per-example test scores from the run's test-scores.json, compacted for results.json. */
function testScores(runDir: string): ExampleScores | undefined {
  const file = path.join(runDir, 'test-scores.json');
  if (!fs.existsSync(file)) return undefined;
  const s = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    metric: string;
    student: { correct?: number[]; nll?: number[]; tokens?: number[] };
  };
  if (s.metric === 'accuracy') return { kind: 'accuracy', correct: s.student.correct!.join('') };
  return { kind: 'perplexity', nll: s.student.nll!.map((x) => Number(x.toFixed(4))), tokens: s.student.tokens! };
}

/** One `python -m vtrans.benchmarks` command: its JSON line, or the error it ended with. */
function benchmark(python: string, args: string[]): Record<string, number | string> {
  const r = spawnSync(python, ['-m', 'vtrans.benchmarks', ...args], { env: backendEnv(), encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) return { error: (r.stderr || '').trim().split('\n').pop() ?? `exit ${r.status}` };
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/** Processes of the step-cost measurement: one process's ratio moves by several percent from run to run here. */
const OVERHEAD_REPEATS = 3;

/** Interleaved steps per process: enough for a stable median where a step is cheap, few where it is seconds. */
const OVERHEAD_STEPS: Record<DemoName, number> = { spam: 20, sotu: 10, party: 8 };

/** The demo model's step costs: OVERHEAD_REPEATS processes, the one with the median VTrans ratio kept with all of them. */
async function stepCosts(python: string, task: DemoName): Promise<StepCosts> {
  const built = await buildDemoModel(task);
  const shards = trainShardsOf(built.modelDir, task);
  const steps = String(OVERHEAD_STEPS[task]);
  const repeats = Array.from({ length: OVERHEAD_REPEATS }, (_, i) => {
    process.stderr.write(`bench: step costs on ${task} (process ${i + 1} of ${OVERHEAD_REPEATS})\n`);
    return benchmark(python, ['overhead', '--model', built.modelDir, '--shards', shards, '--steps', steps]);
  });
  const ok = repeats.filter((o) => !('error' in o)).sort((a, b) => Number(a.vtransOverhead) - Number(b.vtransOverhead));
  return { at: new Date().toISOString(), median: ok.length ? ok[Math.floor(ok.length / 2)] : repeats[0], repeats };
}

/** The newest token shards of a demo's training file, as its build tokenized them. */
function trainShardsOf(modelDir: string, task: DemoName): string {
  const tokens = path.join(path.dirname(modelDir), '.build', 'tokens');
  const found = fs
    .readdirSync(tokens)
    .map((d) => path.join(tokens, d))
    .filter((d) => fs.existsSync(path.join(d, 'meta.json')))
    .filter((d) => JSON.parse(fs.readFileSync(path.join(d, 'meta.json'), 'utf8')).source.endsWith(`train.${dataExt(task)}`))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  if (!found.length) throw new Error(`no training shards under ${tokens}`);
  return found[0];
}

/** A VTrans run on the spam demo at keep 0.3 (the benchmark's settings), then its masks cut at each budget in both shapes. */
async function shapesPass(results: Results, python: string, backend: Backend, info: InitializeResult): Promise<void> {
  const built = await buildDemoModel('spam');
  const workspace = path.join(WORK, 'spam');
  const runDir = path.join(workspace, 'runs', 'shapes-vtrans-0.3');
  fs.rmSync(runDir, { recursive: true, force: true });
  process.stderr.write('bench: shapes: a VTrans run at keep 0.3\n');
  await compress(backend, {
    workspace,
    modelDir: built.modelDir,
    data: path.join(built.dataDir, 'train.jsonl'),
    evalData: path.join(built.dataDir, 'dev.jsonl'),
    testData: path.join(built.dataDir, 'test.jsonl'),
    keep: 0.3,
    maxLen: DEMO_MAX_LEN.spam,
    budget: 'encoder-params',
    method: 'vtrans',
    runDir,
    device: 'auto',
    extra: { ...COMMON, ...TASK_SETTINGS.spam, ...METHOD_SETTINGS.vtrans, sweep: BUDGETS }, // snapshots for the budgets above 0.3
  });
  process.stderr.write('bench: shapes: both shapes at every budget\n');
  const cut = benchmark(python, ['shapes', '--run', runDir, '--budgets', BUDGETS.join(','), '--json']);
  results.shapes = { at: new Date().toISOString(), torch: info.torch, run: path.relative(ROOT, runDir), ...cut };
  save(results);
}

async function algorithmPass(results: Results, python: string, info: InitializeResult, tasks: DemoName[]): Promise<void> {
  for (const task of tasks) {
    results.overhead[task] = await stepCosts(python, task);
    save(results);
  }
  const built = await buildDemoModel('spam');
  const shards = trainShardsOf(built.modelDir, 'spam');
  process.stderr.write('bench: algorithm: the cut of a 7B shape\n');
  const select = ['1', '8'].map((r) => benchmark(python, ['select', '--round-to', r]));
  process.stderr.write('bench: algorithm: predict on 7B masks\n');
  const predict = benchmark(python, ['predict']);
  const phase1 = (['faster', 'fast', 'vtrans'] as const).map((method) => {
    process.stderr.write(`bench: algorithm: phase 1 of ${method}\n`);
    return benchmark(python, ['phase1', '--model', built.modelDir, '--shards', shards, '--method', method, '--keep', '0.3']);
  });
  results.algorithm = {
    at: new Date().toISOString(),
    torch: info.torch,
    python: info.python,
    select,
    predict,
    phase1,
  };
  save(results);
}

/** `--memory`: Faster-VTrans and VTrans on a 7B-shaped slice, each in its own process, and the 7B masks file's costs. */
function memoryPass(results: Results, python: string): void {
  process.stderr.write('bench: memory: a LLaMA-2-7B-shaped slice, Faster-VTrans and VTrans\n');
  const m = benchmark(python, ['memory']);
  results.memory = { at: new Date().toISOString(), torch: String(m.torch ?? results.algorithm?.torch ?? ''), ...m };
  save(results);
}

/**
 * `--gpu`: `python -m vtrans.benchmarks gpu` on the machine's CUDA device, recorded with the card's name. `--dry` runs
 * the same command with tiny shapes on whatever device there is and writes bench/work/gpu-dry.json, leaving
 * results.json alone (the figures of a dry run are no benchmark).
 */
export function gpuPass(results: Results, python: string, dry: boolean): Record<string, unknown> {
  const out = dry ? path.join(WORK, 'gpu-dry.json') : undefined;
  if (out) fs.mkdirSync(path.dirname(out), { recursive: true });
  const args = ['gpu', ...(dry ? ['--dry'] : []), ...(out ? ['--out', out] : [])];
  process.stderr.write(`bench: gpu${dry ? ' (dry, tiny shapes)' : ''}\n`);
  const r = benchmark(python, args);
  if (!dry) {
    results.gpu = { at: new Date().toISOString(), command: 'npm run bench -- --gpu', ...r };
    save(results);
  }
  return r;
}

/** Re-measures every finished entry's teacher and student, interleaved, once no training runs beside them. */
async function latencyPass(results: Results): Promise<void> {
  for (const entry of results.entries) {
    if (entry.status !== 'done' || !entry.latencyMs || entry.latencyPass) continue;
    const runDir = path.join(ROOT, entry.runDir);
    if (!fs.existsSync(path.join(runDir, 'model.onnx'))) continue;
    process.stderr.write(`bench: latency ${entry.task} ${entry.method} ${entry.keep}\n`);
    entry.latencyMs = await remeasureRun(runDir);
    entry.latencyPass = { rounds: ROUNDS, at: new Date().toISOString() };
    save(results);
  }
}

async function main(): Promise<void> {
  const results = load();
  if (process.argv.includes('--report-only')) {
    save(results);
    return;
  }
  if (process.argv.includes('--memory') || process.argv.includes('--gpu')) {
    const python = await findPython(defaultCandidates());
    if (process.argv.includes('--memory')) memoryPass(results, python.executable);
    if (process.argv.includes('--gpu')) {
      const r = gpuPass(results, python.executable, process.argv.includes('--dry'));
      if ('error' in r) throw new Error(`gpu benchmark: ${String(r.error)}`);
    }
    return;
  }
  if (process.argv.includes('--algorithm') || process.argv.includes('--shapes')) {
    const python = await findPython(defaultCandidates());
    const backend = await Backend.start({ python: python.executable });
    try {
      const info = backend.info as InitializeResult;
      if (process.argv.includes('--algorithm'))
        await algorithmPass(results, python.executable, info, (arg('tasks')?.split(',') as DemoName[] | undefined) ?? ['spam', 'party']);
      if (process.argv.includes('--shapes')) await shapesPass(results, python.executable, backend, info);
    } finally {
      await backend.dispose();
    }
    return;
  }
  const tasks = (arg('tasks')?.split(',') as DemoName[] | undefined) ?? TASKS;
  const methods = (arg('methods')?.split(',') as BenchMethod[] | undefined) ?? [...METHODS];
  const budgets = arg('budgets')?.split(',').map(Number) ?? BUDGETS;
  const seeds = arg('seeds')?.split(',').map(Number) ?? SEEDS;
  const force = process.argv.includes('--force');
  const python = await findPython(defaultCandidates());
  const backend = await Backend.start({ python: python.executable });
  const info = backend.info as InitializeResult;
  Object.assign(results.machine, {
    python: info.python,
    torch: info.torch,
    backendThreads: info.threads,
    onnxThreads: os.availableParallelism?.() ?? os.cpus().length,
    device: info.gpuName ?? info.device,
  });
  try {
    for (const task of tasks) {
      const built = await buildDemoModel(task);
      const digest = weightsDigest(built.modelDir);
      results.tasks[task] = { modelDir: path.relative(ROOT, built.modelDir), training: built.training };
      // Seeds outermost: a partial benchmark has every method and budget once before it has any twice.
      for (const seed of seeds)
        for (const keep of budgets)
          for (const method of methods.filter((m) => RUNS_ON[m]?.includes(task) ?? true)) {
            // Only this build's entry stands for this run; another build's is kept beside it (builds.buildOf).
            const tests = testsOfDigests(results.entries.filter((e) => e.task === task));
            const existing = results.entries.find(
              (e) => e.task === task && e.method === method && e.keep === keep && (e.seed ?? 0) === seed && buildOf(e, tests) === digest,
            );
            if (existing?.status === 'done' && !existing.stale && !force) continue;
            process.stderr.write(`bench: ${task} ${method} keep ${keep} seed ${seed}\n`);
            const entry = await runEntry(backend, task, built.modelDir, built.dataDir, method, keep, seed, digest);
            results.entries = results.entries.filter((e) => e !== existing).concat(entry);
            save(results);
            process.stderr.write(
              `\nbench: ${task} ${method} ${keep} seed ${seed}: ${entry.status}${entry.error ? ` (${entry.error})` : ''} test ${entry.test?.value?.toFixed(4)} in ${entry.totalSeconds.toFixed(0)} s\n`,
            );
          }
      warnOtherBuild(results, task, digest);
      if (!results.overhead[task]) {
        results.overhead[task] = await stepCosts(python.executable, task);
        save(results);
      }
    }
    await latencyPass(results);
    const spamRun = results.entries.find((e) => e.task === 'spam' && e.method === 'fast' && e.keep === 0.3 && e.status === 'done');
    if (spamRun && !results.interactive?.predict) {
      results.interactive = { ...results.interactive, predict: await predictLatency(backend, path.join(ROOT, spamRun.runDir)) };
      save(results);
    }
    if (!results.interactive?.heatmaps) {
      results.interactive = { ...results.interactive, heatmaps: await heatmapRenderTimes() };
      save(results);
    }
    if (info.cuda) gpuPass(results, python.executable, false);
  } finally {
    await backend.dispose();
  }
}

main().catch((e: Error) => {
  console.error(`bench: ${e.stack ?? e.message}`);
  process.exit(1);
});
