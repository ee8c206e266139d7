#!/usr/bin/env node
/**
 * The headless VTrans CLI over src/core (no editor needed). User mistakes print one line and exit 2;
 * `--json` makes the last stdout line one JSON object; progress goes to stderr.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import { Backend, BackendCrashedError, CancelledError } from './core/backend';
import { compress, exportAtBudget, finalizeRun, prepareData, resumeRun, type CompressOutcome } from './core/compress';
import { iterateExamples } from './core/data';
import { errorMessage, isUserError, UserError } from './core/errors';
import { formatBytes, formatCount, formatInspect, inspectModel } from './core/inspect';
import { progressBar } from './core/progressText';
import { Requests, type ProgressParams } from './core/protocol';
import { defaultCandidates, findPython, formatSurvey, noPythonError, surveyPython } from './core/python';
import {
  BUDGET_KINDS,
  DEVICE_CHOICES,
  METHODS,
  OUTPUT_SHAPES,
  PARALLELS,
  TASKS,
  type HowToLoad,
  type Metric,
  type ModelSummary,
} from './core/contracts';
import { markStopped, runInfoProblem } from './core/runs';

const USAGE = `Usage: vtrans <command> [options]

Commands:
  inspect <modelDir> [--seq-len N] [--json]          architecture, parameter counts, FLOPs (headers only)
  compress <modelDir> --data <file> --keep <f>       compress a model with VTrans
      [--eval-data <file>] [--test-data <file>] [--task ${TASKS.join('|')}]
      [--budget ${BUDGET_KINDS.join('|')}] [--method ${METHODS.join('|')}] [--shape ${OUTPUT_SHAPES.join('|')}]
      [--device ${DEVICE_CHOICES.join('|')}] [--gpus n] [--parallel ${PARALLELS.join('|')}]
      [--data-fraction f] [--round-to n] [--max-len n] [--lr x] [--epochs n] [--batch-size n]
      [--steps n] [--finetune-steps n] [--no-distill] [--sweep 0.9,0.5,...] [--seed n] [--out <runDir>] [--json]
      [--text-field name] [--label-field name] [--pair-field name]
  add-head <pretrainedDir> --out <dir> (--labels a,b,... | --data <file> [--label-field name]) [--seed n] [--json]
                                                      a classification project on a pretrained body (e.g. MiniLM)
  resume <runDir> [--json]                            continue a failed or interrupted run from its checkpoint
  export <runDir> --keep <f> [--budget kind] [--shape ${OUTPUT_SHAPES.join('|')}] [--retune-steps n] [--out <runDir>] [--json]
                                                      cut the run's masks at another budget (no retraining)
  sweep <runDir> --budgets 0.8,0.5,0.2 [--json]       evaluate re-thresholded budgets into the tradeoff
  eval <modelDir> --data <file> [--task t] [--json]   the model's metric on a data file
  probe <modelDir> --data <file> [--examples n] [--json]
                                                      attention probes per layer × head
  doctor [--json]                                     which Python runs the backend, and why

Run artifacts go to ./.vtrans/runs/<id>/ unless --out is given. --shape: heterogeneous (default; per-layer
sizes, transformers loads model/ with trust_remote_code=True) or uniform (every layer the same size, the family's
standard config: stock transformers loads it). Exit codes: 0 ok, 1 internal error, 2 bad input, 130 cancelled.`;

type Values = Record<string, string | boolean | undefined>;

function parse(args: string[], options: ParseArgsConfig['options'], command: string): { values: Values; positionals: string[] } {
  const all = { ...options, json: { type: 'boolean' as const }, help: { type: 'boolean' as const } };
  try {
    const r = parseArgs({ args: attachDashValues(args, all), options: all, allowPositionals: true });
    return { values: r.values as Values, positionals: r.positionals };
  } catch (e) {
    throw new UserError(
      `${command}: ${argumentProblem(e as Error & { code?: string }, args, Object.keys(all))}`,
      `Run 'vtrans ${command} --help' for the options.`,
    );
  }
}

/** `--keep -1` as `--keep=-1`, so a negative number reaches the flag's own check instead of reading as an option. */
function attachDashValues(args: string[], options: ParseArgsConfig['options']): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith('--') ? args[i].slice(2) : '';
    if (options?.[name]?.type === 'string' && /^-\d|^-\./.test(args[i + 1] ?? '')) out.push(`${args[i]}=${args[++i]}`);
    else out.push(args[i]);
  }
  return out;
}

/** node:util's parse errors, said in one plain sentence (with the nearest known flag for a typo). */
function argumentProblem(e: Error & { code?: string }, args: string[], known: string[]): string {
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const flag = /'(-[^']*)'/.exec(e.message)?.[1] ?? args.find((a) => a.startsWith('-')) ?? '';
    const bare = flag.replace(/^-+/, '').split('=')[0];
    const near = known.find((k) => editDistance(k, bare) <= 2);
    return `unknown option ${flag}${near ? ` (did you mean --${near}?)` : ''}.`;
  }
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const flag = /'(--?[\w-]+)/.exec(e.message)?.[1];
    return flag ? `${flag} needs a value${/boolean/.test(e.message) ? ' and takes none' : ''}.` : e.message.split('.')[0] + '.';
  }
  if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return `unexpected argument ${/'([^']*)'/.exec(e.message)?.[1] ?? ''}.`;
  return e.message.split('\n')[0];
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

/** A decimal number as people write them (no hex, no empty string, no whitespace). */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function num(values: Values, name: string, opts: { int?: boolean; min?: number; max?: number } = {}): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const v = DECIMAL.test(String(raw)) ? Number(raw) : NaN;
  const bad =
    !Number.isFinite(v) ||
    (opts.int && !Number.isInteger(v)) ||
    (opts.min !== undefined && v < opts.min) ||
    (opts.max !== undefined && v > opts.max);
  if (bad)
    throw new UserError(
      `--${name} must be ${opts.int ? 'an integer' : 'a number'}${opts.min !== undefined ? ` ≥ ${opts.min}` : ''}${opts.max !== undefined ? ` ≤ ${opts.max}` : ''}, got "${raw}".`,
    );
  return v;
}

/** The flag's value checked against the backend's enum (src/core/contracts.ts); undefined when not given, so
 * the backend applies its own default. */
function oneOf<T extends string>(values: Values, name: string, allowed: readonly T[]): T | undefined {
  const v = values[name] as string | undefined;
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T)) throw new UserError(`--${name} must be one of ${allowed.join(', ')}, got "${v}".`);
  return v as T;
}

function fileArg(values: Values, name: string, required: boolean): string | undefined {
  const v = values[name] as string | undefined;
  if (v === undefined) {
    if (required) throw new UserError(`--${name} <file> is required.`);
    return undefined;
  }
  if (!fs.existsSync(v)) throw new UserError(`${v}: file not found (--${name}).`);
  if (fs.statSync(v).isDirectory())
    throw new UserError(`${v}: is a folder, not a data file (--${name}).`, 'Pick a .jsonl, .csv, .tsv or .txt file.');
  return path.resolve(v);
}

function keepArg(values: Values): number {
  if (values.keep === undefined) throw new UserError('--keep <fraction> is required, e.g. --keep 0.3.');
  const keep = DECIMAL.test(String(values.keep)) ? Number(values.keep) : NaN;
  if (!(keep > 0 && keep <= 1))
    throw new UserError(`--keep must be a fraction in (0, 1], got "${values.keep}".`, 'For example --keep 0.3 keeps 30 % of the budget.');
  return keep;
}

/** The progress bar on stderr: redrawn in place on a terminal, a line per phase and tenth otherwise. */
function progressPrinter(): (p: ProgressParams) => void {
  const tty = process.stderr.isTTY;
  let last = '';
  return (p) => {
    if (tty) {
      process.stderr.write(
        `\r${progressBar(p)
          .slice(0, (process.stderr.columns ?? 120) - 1)
          .padEnd(Math.min(process.stderr.columns ?? 120, 140) - 1)}`,
      );
      if (p.step === p.total) process.stderr.write('\n');
      return;
    }
    const key = `${p.phase}:${Math.floor((10 * p.step) / Math.max(p.total, 1))}`;
    if (key !== last) process.stderr.write(progressBar(p) + '\n');
    last = key;
  };
}

/** What a command tells `withBackend` about its run, so that an exit it cannot finish is still recorded. */
interface Session {
  runDir?: string;
}

/**
 * The backend for one command. Ctrl-C (or SIGTERM) cancels the request; a second Ctrl-C kills the backend.
 * When the backend dies or is killed while it writes a run, the run is recorded as failed or cancelled, with
 * why (run.json keeps its one writer: the backend's run module does it).
 */
async function withBackend<T>(fn: (backend: Backend, token: CancellationTokenSource, session: Session) => Promise<T>): Promise<T> {
  const python = await findPython(defaultCandidates());
  const backend = await Backend.start({
    python: python.executable,
    onLog: (line) => {
      if (process.env.VTRANS_VERBOSE || /\b(ERROR|WARNING)\b/.test(line)) process.stderr.write(`[backend] ${line}\n`);
    },
  });
  const cancel = new CancellationTokenSource();
  const session: Session = {};
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts++;
    const second = interrupts > 1 || signal === 'SIGTERM' ? '' : ' (Ctrl-C again to kill)';
    process.stderr.write(interrupts === 1 ? `\nvtrans: cancelling${second}…\n` : '\nvtrans: killed\n');
    if (interrupts === 1) cancel.cancel();
    else backend.kill();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await fn(backend, cancel, session);
  } catch (e) {
    if (session.runDir && (interrupts > 1 || e instanceof BackendCrashedError)) {
      const status = interrupts > 1 ? 'cancelled' : 'failed';
      const why = interrupts > 1 ? 'Cancelled; the backend was killed (a second Ctrl-C).' : `${(e as Error).message}`;
      await markStopped(python.executable, session.runDir, status, why);
    }
    if (e instanceof BackendCrashedError) {
      throw new CrashReport(
        `${e.message}${session.runDir ? ` The run ${session.runDir} is marked failed; resume it with: vtrans resume ${session.runDir}` : ''}`,
        e,
      );
    }
    throw interrupts > 1 ? new CancelledError('Cancelled: the backend was killed.') : e;
  } finally {
    // The handlers stay: a Ctrl-C while the command winds down must not kill it before it says how it ended.
    await backend.dispose();
  }
}

/** The backend died: one line for the user; its last log lines go to the log file. */
class CrashReport extends Error {
  constructor(
    message: string,
    readonly crash: BackendCrashedError,
  ) {
    super(message);
  }
}

function summaryTable(o: { teacher: ModelSummary; student: ModelSummary }): string {
  const rows: Array<[string, string, string, string]> = [['', 'teacher', 'student', 'change']];
  const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}x` : '');
  rows.push([
    'parameters',
    formatCount(o.teacher.params),
    formatCount(o.student.params),
    `${((100 * o.student.params) / o.teacher.params).toFixed(1)}%`,
  ]);
  rows.push([
    'encoder params',
    formatCount(o.teacher.encoderParams),
    formatCount(o.student.encoderParams),
    `${((100 * o.student.encoderParams) / Math.max(o.teacher.encoderParams, 1)).toFixed(1)}%`,
  ]);
  rows.push([
    'FLOPs/token',
    formatCount(o.teacher.flopsPerToken),
    formatCount(o.student.flopsPerToken),
    `${ratio(o.teacher.flopsPerToken, o.student.flopsPerToken)} fewer`,
  ]);
  const tm = o.teacher.metric;
  const sm = o.student.metric;
  if (tm && sm) {
    const pct = tm.name === 'accuracy';
    const f = (v: number) => (pct ? `${(100 * v).toFixed(2)}%` : v.toFixed(2));
    rows.push([
      tm.name,
      f(tm.value),
      f(sm.value),
      pct ? `${(100 * (sm.value - tm.value)).toFixed(2)} pts` : `${(sm.value - tm.value).toFixed(2)}`,
    ]);
  }
  for (const b of ['1', '32']) {
    const t = o.teacher.onnx?.latencyMs[b];
    const s = o.student.onnx?.latencyMs[b];
    if (t !== undefined && s !== undefined) rows.push([`latency b${b} (ms)`, t.toFixed(2), s.toFixed(2), `${ratio(t, s)} faster`]);
  }
  if (o.teacher.onnx && o.student.onnx)
    rows.push([
      'model.onnx',
      formatBytes(o.teacher.onnx.bytes),
      formatBytes(o.student.onnx.bytes),
      ratio(o.teacher.onnx.bytes, o.student.onnx.bytes) + ' smaller',
    ]);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('   ')).join('\n');
}

function printOutcome(o: CompressOutcome, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(o));
    return;
  }
  console.log(summaryTable(o));
  const test = o.test;
  if (test) {
    const f = (m: Metric) => (m.name === 'accuracy' ? `${(100 * m.value).toFixed(2)}%` : m.value.toFixed(2));
    console.log(
      `\ntest ${test.teacher.name}: teacher ${f(test.teacher)}, student ${f(test.student)} (${test.student.count} ${test.student.name === 'accuracy' ? 'examples' : 'tokens'}; model selection used the eval data only)`,
    );
  }
  console.log(`\nrun:       ${o.runDir}\nmodel:     ${o.modelDir}\nonnx:      ${o.onnxPath}\nreport:    ${o.reportHtml}`);
  if (o.teacher.onnx)
    console.log(`(latency: onnxruntime-node, sequence ${o.teacher.onnx.seqLen}, ${o.teacher.onnx.threads} threads, median)`);
  printLoad(o.load);
}

/** The output shape and the Python lines that load model/ without VTrans (from report.json). */
function printLoad(load: HowToLoad | undefined): void {
  if (!load) return;
  const how = load.trustRemoteCode ? 'transformers loads it with trust_remote_code=True' : 'stock transformers loads it';
  console.log(`\nshape:     ${load.shape} (${how}):\n\n${load.python.replace(/^(?=.)/gm, '    ')}`);
}

async function compressCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      data: { type: 'string' },
      'eval-data': { type: 'string' },
      'test-data': { type: 'string' },
      task: { type: 'string' },
      keep: { type: 'string' },
      budget: { type: 'string' },
      method: { type: 'string' },
      shape: { type: 'string' },
      device: { type: 'string' },
      gpus: { type: 'string' },
      parallel: { type: 'string' },
      'data-fraction': { type: 'string' },
      'round-to': { type: 'string' },
      'max-len': { type: 'string' },
      lr: { type: 'string' },
      epochs: { type: 'string' },
      'finetune-epochs': { type: 'string' },
      'batch-size': { type: 'string' },
      'no-distill': { type: 'boolean' },
      sweep: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      steps: { type: 'string' },
      'finetune-steps': { type: 'string' },
      'text-field': { type: 'string' },
      'label-field': { type: 'string' },
      'pair-field': { type: 'string' },
    },
    'compress',
  );
  if (positionals.length !== 1)
    throw new UserError('compress takes one model directory.', 'Usage: vtrans compress <modelDir> --data <file> --keep <f>');
  const modelDir = path.resolve(positionals[0]);
  inspectModel(modelDir); // validates the directory with the same one-line errors as inspect
  const keep = keepArg(values);
  const data = fileArg(values, 'data', true)!;
  const task = oneOf(values, 'task', TASKS);
  const sweep =
    values.sweep === undefined
      ? undefined
      : String(values.sweep)
          .split(',')
          .map((x) => {
            const v = DECIMAL.test(x) ? Number(x) : NaN;
            if (!(v > 0 && v <= 1)) throw new UserError(`--sweep budgets must be fractions in (0, 1], got "${x}".`);
            return v;
          });
  const extra = {
    ...(values.lr !== undefined ? { lr: num(values, 'lr', { min: 0 }) } : {}),
    ...(values.epochs !== undefined ? { pruneEpochs: num(values, 'epochs', { min: 0 }) } : {}),
    ...(values['finetune-epochs'] !== undefined ? { finetuneEpochs: num(values, 'finetune-epochs', { min: 0 }) } : {}),
    ...(values.steps !== undefined ? { pruneEpochs: 0, minPruneSteps: num(values, 'steps', { int: true, min: 1 }) } : {}),
    ...(values['finetune-steps'] !== undefined
      ? { finetuneEpochs: 0, minFinetuneSteps: num(values, 'finetune-steps', { int: true, min: 0 }) }
      : {}),
    ...(values['batch-size'] !== undefined ? { batchSize: num(values, 'batch-size', { int: true, min: 1 }) } : {}),
    ...(values.seed !== undefined ? { seed: num(values, 'seed', { int: true, min: 0 }) } : {}),
    ...(sweep ? { sweep } : {}),
    ...(values.gpus !== undefined ? { gpus: num(values, 'gpus', { int: true, min: 1, max: 64 }) } : {}),
    ...(values.parallel !== undefined ? { parallel: oneOf(values, 'parallel', PARALLELS) } : {}),
  };
  const outcome = await withBackend((backend, cancel, session) =>
    compress(
      backend,
      {
        workspace: process.cwd(),
        modelDir,
        data,
        evalData: fileArg(values, 'eval-data', false),
        testData: fileArg(values, 'test-data', false),
        task,
        keep,
        budget: oneOf(values, 'budget', BUDGET_KINDS),
        method: oneOf(values, 'method', METHODS),
        shape: oneOf(values, 'shape', OUTPUT_SHAPES),
        device: oneOf(values, 'device', DEVICE_CHOICES),
        dataFraction: num(values, 'data-fraction', { min: 0.0001, max: 1 }),
        roundTo: num(values, 'round-to', { int: true, min: 1 }),
        maxLen: num(values, 'max-len', { int: true, min: 2 }),
        distill: values['no-distill'] ? { enabled: false } : undefined,
        runDir: values.out ? path.resolve(String(values.out)) : undefined,
        extra,
        fields: {
          text: values['text-field'] as string | undefined,
          label: values['label-field'] as string | undefined,
          textPair: values['pair-field'] as string | undefined,
        },
        pairs: values['pair-field'] !== undefined ? true : undefined,
      },
      {
        onStage: (stage, detail) => {
          if (stage === 'train') session.runDir = detail;
          process.stderr.write(`vtrans: ${stage} ${path.relative(process.cwd(), detail) || detail}\n`);
        },
        onWarning: (message) => process.stderr.write(`vtrans: warning: ${message}\n`),
        onProgress: progressPrinter(),
        token: cancel.token,
      },
    ),
  );
  printOutcome(outcome, values.json === true);
  return 0;
}

/** The label names of a data file, sorted (numbers as written), for a new classification head. */
async function labelsOf(file: string, field: string | undefined): Promise<string[]> {
  const seen = new Set<string>();
  for await (const ex of iterateExamples(file, { task: 'classification', fields: { label: field } })) seen.add(String(ex.label));
  return [...seen].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

async function addHeadCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      out: { type: 'string' },
      labels: { type: 'string' },
      data: { type: 'string' },
      'label-field': { type: 'string' },
      seed: { type: 'string' },
    },
    'add-head',
  );
  if (positionals.length !== 1)
    throw new UserError(
      'add-head takes one pretrained model directory.',
      'Usage: vtrans add-head <pretrainedDir> --out <dir> --labels a,b',
    );
  const modelDir = path.resolve(positionals[0]);
  inspectModel(modelDir);
  if (!values.out) throw new UserError('--out <dir> is required: the new model project is written there.');
  if ((values.labels === undefined) === (values.data === undefined))
    throw new UserError('add-head needs either --labels a,b,... or --data <file> (labels read from the data).');
  const labels =
    values.labels !== undefined
      ? String(values.labels)
          .split(',')
          .map((x) => x.trim())
      : await labelsOf(fileArg(values, 'data', true)!, values['label-field'] as string | undefined);
  const result = await withBackend((backend, cancel) =>
    backend.request(
      Requests.addHead,
      { modelDir, outDir: path.resolve(String(values.out)), labels, seed: num(values, 'seed', { int: true, min: 0 }) ?? 0 },
      cancel.token,
    ),
  );
  if (values.json) console.log(JSON.stringify(result));
  else
    console.log(
      `wrote ${result.modelDir}: ${result.family} with a new ${result.labels.length}-label head (${result.labels.join(', ')}), ${formatCount(result.params)} parameters.\nFine-tune it on your task before compressing: the head is untrained.`,
    );
  return 0;
}

async function resumeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {}, 'resume');
  if (positionals.length !== 1) throw new UserError('resume takes one run directory.', 'Usage: vtrans resume <runDir>');
  const runDir = path.resolve(positionals[0]);
  const problem = runInfoProblem(runDir);
  if (problem) throw new UserError(problem, 'Usage: vtrans resume <runDir>');
  const outcome = await withBackend((backend, cancel, session) => {
    session.runDir = runDir;
    return resumeRun(backend, runDir, { onProgress: progressPrinter(), token: cancel.token });
  });
  printOutcome(outcome, values.json === true);
  return 0;
}

async function exportCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      keep: { type: 'string' },
      budget: { type: 'string' },
      shape: { type: 'string' },
      'retune-steps': { type: 'string' },
      out: { type: 'string' },
    },
    'export',
  );
  const runDir = path.resolve(positionals[0] ?? '');
  const problem = runInfoProblem(runDir);
  if (problem) throw new UserError(problem, 'Usage: vtrans export <runDir> --keep <f>');
  const keep = keepArg(values);
  const budget = oneOf(values, 'budget', BUDGET_KINDS);
  const shape = oneOf(values, 'shape', OUTPUT_SHAPES);
  const result = await withBackend((backend, cancel) =>
    exportAtBudget(
      backend,
      {
        runDir,
        keep,
        budget,
        shape,
        outDir: values.out ? path.resolve(String(values.out)) : undefined,
        retuneSteps: num(values, 'retune-steps', { int: true, min: 0 }),
      },
      { onProgress: progressPrinter(), token: cancel.token },
    ),
  );
  if (values.json) console.log(JSON.stringify(result));
  else {
    console.log(
      `exported ${formatCount(result.student.params)} parameters (${(100 * result.achieved).toFixed(1)}% of ${result.budget}, ${result.shape} shape) to ${result.runDir}\nreport: ${result.reportHtml}`,
    );
    printLoad(result.load);
  }
  return 0;
}

async function sweepCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { budgets: { type: 'string' }, budget: { type: 'string' } }, 'sweep');
  const runDir = path.resolve(positionals[0] ?? '');
  const problem = runInfoProblem(runDir);
  if (problem) throw new UserError(problem, 'Usage: vtrans sweep <runDir> --budgets 0.8,0.5');
  const budgets = String(values.budgets ?? '')
    .split(',')
    .filter(Boolean)
    .map(Number);
  if (!budgets.length || budgets.some((b) => !(b > 0 && b <= 1)))
    throw new UserError(`--budgets must list fractions in (0, 1], got "${values.budgets ?? ''}".`);
  const budget = oneOf(values, 'budget', BUDGET_KINDS);
  const result = await withBackend(async (backend, cancel) => {
    const sub = backend.onProgress(progressPrinter());
    try {
      return await backend.request(Requests.sweep, { runDir, budgets, budget }, cancel.token);
    } finally {
      sub.dispose();
    }
  });
  await withBackend((backend) => finalizeRun(backend, runDir)).catch(() => undefined);
  if (values.json) console.log(JSON.stringify(result));
  else
    for (const p of result.points)
      console.log(
        `keep ${p.keep.toFixed(2)}  ${(p.shape ?? '').padEnd(13)}  params ${formatCount(p.params).padStart(8)}  FLOPs/token ${formatCount(p.flopsPerToken).padStart(8)}  metric ${p.metric?.toFixed(4)}`,
      );
  return 0;
}

async function evalCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { data: { type: 'string' }, task: { type: 'string' }, device: { type: 'string' } }, 'eval');
  if (positionals.length !== 1) throw new UserError('eval takes one model directory.', 'Usage: vtrans eval <modelDir> --data <file>');
  const modelDir = path.resolve(positionals[0]);
  inspectModel(modelDir);
  const data = fileArg(values, 'data', true)!;
  const task = oneOf(values, 'task', TASKS);
  const metric = await withBackend(async (backend, cancel) => {
    const prepared = await prepareData({ workspace: process.cwd(), modelDir, data, evalData: data, task }, { token: cancel.token });
    return backend.request(
      Requests.evaluate,
      { modelDir, shards: prepared.eval, device: values.device as string | undefined },
      cancel.token,
    );
  });
  if (values.json) console.log(JSON.stringify({ modelDir, data, metric }));
  else
    console.log(
      `${metric.name}: ${metric.name === 'accuracy' ? `${(100 * metric.value).toFixed(2)}%` : metric.value.toFixed(3)}${metric.f1 !== undefined ? `  (macro F1 ${(100 * metric.f1).toFixed(2)}%)` : ''}  on ${metric.count} ${metric.name === 'accuracy' ? 'examples' : 'tokens'}`,
    );
  return 0;
}

async function probeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    { data: { type: 'string' }, task: { type: 'string' }, examples: { type: 'string' }, run: { type: 'string' } },
    'probe',
  );
  if (positionals.length !== 1) throw new UserError('probe takes one model directory.', 'Usage: vtrans probe <modelDir> --data <file>');
  const modelDir = path.resolve(positionals[0]);
  inspectModel(modelDir);
  const data = fileArg(values, 'data', true)!;
  const task = oneOf(values, 'task', TASKS);
  const result = await withBackend(async (backend, cancel) => {
    const prepared = await prepareData({ workspace: process.cwd(), modelDir, data, evalData: data, task }, { token: cancel.token });
    return backend.request(
      Requests.probe,
      {
        modelDir,
        shards: prepared.eval,
        examples: num(values, 'examples', { int: true, min: 1 }) ?? 128,
        specialTokenIds: prepared.specialTokenIds,
        runDir: values.run ? path.resolve(String(values.run)) : undefined,
      },
      cancel.token,
    );
  });
  if (values.json) {
    console.log(JSON.stringify(result));
    return 0;
  }
  console.log(
    `attention probes on ${result.examples} examples (mean length ${result.seqLen.toFixed(1)}); columns: special, current, previous, keywords, entropy`,
  );
  result.layers.forEach((heads, l) =>
    heads.forEach((h, i) =>
      console.log(
        `layer ${String(l).padStart(2)} head ${String(i).padStart(2)}  ${[h.special, h.current, h.previous, h.keywords].map((v) => v.toFixed(3)).join('  ')}  ${h.entropy.toFixed(2)}${h.kept === undefined ? '' : h.kept ? '  kept' : '  pruned'}`,
      ),
    ),
  );
  return 0;
}

function inspect(args: string[]): number {
  const { values, positionals } = parse(args, { 'seq-len': { type: 'string' }, task: { type: 'string' } }, 'inspect');
  if (positionals.length !== 1)
    throw new UserError('inspect takes one model directory.', 'Usage: vtrans inspect <modelDir> [--seq-len N] [--json]');
  const seqLen = num(values, 'seq-len', { int: true, min: 1 }) ?? 128;
  const task = oneOf(values, 'task', TASKS);
  const result = inspectModel(positionals[0], { seqLen, task });
  console.log(values.json ? JSON.stringify(result) : formatInspect(result));
  return 0;
}

async function doctor(args: string[]): Promise<number> {
  const { values } = parse(args, {}, 'doctor');
  const { found, reports } = await surveyPython(defaultCandidates());
  if (values.json) {
    if (!found) throw noPythonError(reports);
    console.log(JSON.stringify({ ...found, candidates: reports }));
    return 0;
  }
  console.log(formatSurvey(reports, found));
  return found ? 0 : 2;
}

const COMMANDS: Record<string, (args: string[]) => number | Promise<number>> = {
  inspect,
  doctor,
  compress: compressCommand,
  'add-head': addHeadCommand,
  resume: resumeCommand,
  export: exportCommand,
  sweep: sweepCommand,
  eval: evalCommand,
  probe: probeCommand,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  const run = COMMANDS[command];
  if (!run) throw new UserError(`Unknown command "${command}".`, `Run 'vtrans --help' for the list.`);
  if (rest.includes('--help')) {
    console.log(USAGE);
    return 0;
  }
  return run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof CancelledError) {
      console.error(`vtrans: ${e.message}`);
      process.exitCode = 130;
    } else if (isUserError(e)) {
      console.error(`vtrans: ${errorMessage(e)}`);
      process.exitCode = 2;
    } else {
      // The stack and the backend's last lines go to a log file; the user gets one line and where it is.
      const log = path.join(os.tmpdir(), `vtrans-error-${process.pid}.log`);
      const detail = e instanceof CrashReport ? e.crash.lastLog.join('\n') : e instanceof Error ? (e.stack ?? e.message) : String(e);
      fs.writeFileSync(log, `${new Date().toISOString()} vtrans ${process.argv.slice(2).join(' ')}\n${detail}\n`);
      const message = e instanceof CrashReport ? e.message : `internal error: ${e instanceof Error ? e.message : String(e)}`;
      console.error(`vtrans: ${message} (details: ${log})`);
      process.exitCode = 1;
    }
  },
);
