/**
 * One compression, end to end, shared by the CLI and the extension: tokenize the data into shards, have the
 * backend train / prune / fine-tune / sweep, then measure both ONNX models in onnxruntime-node, finish
 * report.json and write report.html + report.md into the run directory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CancellationTokenSource, type CancellationToken } from 'vscode-jsonrpc/node';
import { type Backend, CancelledError } from './backend';
import { UserError } from './errors';
import { measureOnnx } from './onnxEval';
import { labelNames, readConfig, readModelShape, type Task } from './modelShape';
import {
  Requests,
  type CompressParams,
  type CompressResult,
  type DistillParams,
  type ProgressParams,
  type RethresholdResult,
} from './protocol';
import { renderReportHtml, renderReportMarkdown } from './reportHtml';
import type { BudgetKind, Method, RunReport } from './report';
import { CACHE_DIR, newRunId, readReport, readRunInfo, runsDir, writeJsonAtomic, writeTextAtomic } from './runs';
import type { Fields } from './data';
import { prepareShards, readShards, splitShards, type ShardProgress } from './shards';
import { loadTokenizer } from './tokenize';

export interface CompressOptions {
  /** The folder that holds `.vtrans/` (the workspace, or the CLI's working directory). */
  workspace: string;
  modelDir: string;
  data: string;
  evalData?: string;
  testData?: string;
  task?: Task;
  keep: number;
  budget: BudgetKind;
  method: Method;
  device?: string;
  dataFraction?: number;
  roundTo?: number;
  maxLen?: number;
  distill?: DistillParams;
  /** Any other backend setting (see CompressParams). */
  extra?: Partial<CompressParams>;
  runDir?: string;
  /** Share of the training data held out for evaluation when no eval data is given. */
  holdout?: number;
  /** Column / field names of the data files (default text, label, text_pair). */
  fields?: Fields;
  /** True requires text pairs (the pair field must be present), false ignores it; unset detects. */
  pairs?: boolean;
}

export type Stage = 'tokenize' | 'train' | 'measure' | 'report';

export interface CompressHooks {
  onStage?: (stage: Stage, detail: string) => void;
  onTokenize?: (file: string, p: ShardProgress) => void;
  onProgress?: (p: ProgressParams) => void;
  token?: CancellationToken;
}

/** The CLI's `--json` object (documented in README): the backend's result, completed here. */
export interface CompressOutcome extends CompressResult {
  reportHtml: string;
}

function checkKeep(keep: number): void {
  if (!(keep > 0 && keep <= 1))
    throw new UserError(`--keep must be a fraction in (0, 1], got ${keep}.`, 'For example --keep 0.3 keeps 30 % of the budget.');
}

export interface PreparedData {
  train: string;
  eval: string;
  test?: string;
  specialTokenIds: number[];
  withTokenTypes: boolean;
  task: Task;
}

/** Tokenizes train / eval / test data into cached shards (a held-out part of train when no eval data is given). */
export async function prepareData(opts: CompressOptions, hooks: CompressHooks = {}): Promise<PreparedData> {
  const shape = readModelShape(opts.modelDir, opts.task);
  const task = opts.task ?? shape.task;
  const cfg = readConfig(opts.modelDir);
  const cacheDir = path.join(opts.workspace, CACHE_DIR, 'tokens');
  const maxLen = opts.maxLen ?? Math.min(128, shape.maxPositions - (shape.family === 'roberta' ? 2 : 0));
  const abort = new AbortController();
  const sub = hooks.token?.onCancellationRequested(() => abort.abort());
  try {
    const shard = async (file: string) => {
      hooks.onStage?.('tokenize', file);
      const r = await prepareShards({
        modelDir: opts.modelDir,
        dataFile: file,
        task,
        maxLen,
        cacheDir,
        labelNames: labelNames(cfg),
        fields: opts.fields,
        pairs: opts.pairs,
        onProgress: (p) => hooks.onTokenize?.(file, p),
        signal: abort.signal,
      });
      return r.dir;
    };
    let train = await shard(opts.data);
    let evalDir: string;
    if (opts.evalData) {
      evalDir = await shard(opts.evalData);
    } else {
      const parts = splitShards(train, opts.holdout ?? 0.1);
      train = parts.train;
      evalDir = parts.eval;
    }
    const test = opts.testData ? await shard(opts.testData) : undefined;
    const tok = loadTokenizer(opts.modelDir);
    const specials = [...tok.tokenizer.get_added_tokens_decoder().entries()].filter(([, t]) => t.special).map(([id]) => id);
    return {
      train,
      eval: evalDir,
      test,
      specialTokenIds: specials,
      withTokenTypes: readShards(train).meta.pairs && tok.usesTokenTypes,
      task,
    };
  } catch (e) {
    if (abort.signal.aborted) throw new CancelledError('Compression cancelled while tokenizing.');
    throw e;
  } finally {
    sub?.dispose();
  }
}

export async function compress(backend: Backend, opts: CompressOptions, hooks: CompressHooks = {}): Promise<CompressOutcome> {
  checkKeep(opts.keep);
  const t0 = Date.now();
  const data = await prepareData(opts, hooks);
  const runDir = opts.runDir ?? path.join(runsDir(opts.workspace), newRunId(opts.method));
  const resume = opts.extra?.resume === true;
  if (!resume && fs.existsSync(path.join(runDir, 'run.json'))) {
    throw new UserError(`${runDir}: a run already exists there.`, 'Choose another --out directory, or resume that run.');
  }
  fs.mkdirSync(path.dirname(runDir), { recursive: true });
  const params: CompressParams = {
    ...opts.extra,
    modelDir: path.resolve(opts.modelDir),
    trainShards: data.train,
    evalShards: data.eval,
    testShards: data.test,
    runDir,
    method: opts.method,
    keep: opts.keep,
    budget: opts.budget,
    task: data.task,
    device: opts.device ?? 'auto',
    specialTokenIds: data.specialTokenIds,
    withTokenTypes: data.withTokenTypes,
    ...(opts.dataFraction !== undefined ? { dataFraction: opts.dataFraction } : {}),
    ...(opts.roundTo !== undefined ? { roundTo: opts.roundTo } : {}),
    ...(opts.distill ? { distill: opts.distill } : {}),
  };
  hooks.onStage?.('train', runDir);
  const progress = hooks.onProgress ? backend.onProgress(hooks.onProgress) : undefined;
  let result: CompressResult;
  try {
    result = await backend.request(Requests.compress, params, hooks.token);
  } finally {
    progress?.dispose();
  }
  const report = await finalizeRun(runDir, { evalShards: data.eval, hooks });
  return {
    status: 'done',
    runDir,
    method: opts.method,
    budget: opts.budget,
    keep: opts.keep,
    achieved: result.achieved,
    teacher: report.teacher,
    student: report.student!,
    units: result.units,
    wallSeconds: (Date.now() - t0) / 1000,
    modelDir: result.modelDir,
    onnxPath: result.onnxPath,
    reportHtml: path.join(runDir, 'report.html'),
    test: result.test,
  };
}

/**
 * Completes a run's report.json with the onnxruntime-node figures of teacher.onnx and model.onnx (size, latency,
 * metric from the eval shards), decodes the probe keywords, and writes report.html and report.md.
 */
export async function finalizeRun(
  runDir: string,
  opts: { evalShards?: string; threads?: number; hooks?: CompressHooks } = {},
): Promise<RunReport> {
  const report = readReport(runDir);
  if (!report)
    throw new UserError(`${path.join(runDir, 'report.json')}: missing or unreadable.`, 'The run did not finish; resume or rerun it.');
  const info = readRunInfo(runDir);
  const settings = (info?.settings ?? {}) as { eval_shards?: string; model_dir?: string; eval_examples?: number | null };
  const evalDir = opts.evalShards ?? settings.eval_shards;
  const shards = evalDir && fs.existsSync(evalDir) ? readShards(evalDir) : undefined;
  opts.hooks?.onStage?.('measure', runDir);
  const token = opts.hooks?.token;
  // Latency at sequence length 128, or the longest the model's position table allows.
  const shape = readModelShape(path.join(runDir, 'model'));
  const seqLen = Math.min(128, shape.maxPositions - (shape.family === 'roberta' ? 2 : 0));
  const measure = async (file: string) => {
    if (token?.isCancellationRequested) throw new CancelledError();
    const full = path.join(runDir, file);
    const limit = settings.eval_examples ?? undefined;
    return fs.existsSync(full)
      ? measureOnnx(full, file, report.model.vocab, { shards, threads: opts.threads, latency: { seqLen }, limit })
      : undefined;
  };
  const teacherOnnx = await measure('teacher.onnx');
  if (teacherOnnx) report.teacher.onnx = teacherOnnx;
  const studentOnnx = await measure('model.onnx');
  if (studentOnnx && report.student) report.student.onnx = studentOnnx;
  for (const p of report.tradeoff) {
    if (p.source === 'teacher' && teacherOnnx) p.latencyMs = teacherOnnx.latencyMs;
    if (p.source === 'finetuned' && studentOnnx) p.latencyMs = studentOnnx.latencyMs;
  }
  const modelDir = settings.model_dir ?? report.model.dir;
  if (report.probes?.keywordIds?.length && fs.existsSync(path.join(modelDir, 'tokenizer.json'))) {
    const tok = loadTokenizer(modelDir).tokenizer;
    report.probes.keywords = report.probes.keywordIds.map((id) => tok.decode([id]).trim() || (tok.id_to_token(id) ?? String(id)));
  }
  opts.hooks?.onStage?.('report', runDir);
  writeJsonAtomic(path.join(runDir, 'report.json'), report);
  writeReportFiles(runDir, report);
  return report;
}

/** report.html (self-contained, opens without VS Code) and report.md. */
export function writeReportFiles(runDir: string, report: RunReport): void {
  const dist = path.resolve(__dirname, fs.existsSync(path.resolve(__dirname, 'webview.js')) ? '.' : '../../dist');
  const js = fs.readFileSync(path.join(dist, 'webview.js'), 'utf8');
  const css = fs.readFileSync(path.resolve(dist, '..', 'media', 'webview.css'), 'utf8');
  writeTextAtomic(path.join(runDir, 'report.html'), renderReportHtml(report, js, css));
  writeTextAtomic(path.join(runDir, 'report.md'), renderReportMarkdown(report));
}

/** A run's masks cut at another budget, as a new run directory with its ONNX figures and report. */
export async function exportAtBudget(
  backend: Backend,
  opts: { runDir: string; keep: number; budget?: BudgetKind; workspace: string; outDir?: string; retuneSteps?: number },
  hooks: CompressHooks = {},
): Promise<RethresholdResult & { reportHtml: string }> {
  checkKeep(opts.keep);
  const outDir = opts.outDir ?? path.join(runsDir(opts.workspace), newRunId('rethreshold'));
  fs.mkdirSync(path.dirname(outDir), { recursive: true });
  const progress = hooks.onProgress ? backend.onProgress(hooks.onProgress) : undefined;
  let result: RethresholdResult;
  try {
    result = await backend.request(
      Requests.rethreshold,
      { runDir: opts.runDir, keep: opts.keep, budget: opts.budget, outDir, retuneSteps: opts.retuneSteps },
      hooks.token,
    );
  } finally {
    progress?.dispose();
  }
  if (readReport(outDir)) await finalizeRun(outDir, { hooks });
  return { ...result, reportHtml: path.join(outDir, 'report.html') };
}

/** Continues a failed, cancelled or interrupted run from its last checkpoint, then finishes its report. */
export async function resumeRun(backend: Backend, runDir: string, hooks: CompressHooks = {}): Promise<CompressOutcome> {
  const info = readRunInfo(runDir);
  if (!info) throw new UserError(`${runDir}: not a run directory (no run.json).`, 'Pick a folder under .vtrans/runs.');
  if (info.status === 'done') throw new UserError(`${runDir}: the run is already done.`);
  const settings = info.settings ?? {};
  // run.json keeps the backend's snake_case settings; the protocol speaks camelCase.
  const params = Object.fromEntries(
    Object.entries(settings).map(([k, v]) => [k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()), v]),
  ) as unknown as CompressParams;
  const t0 = Date.now();
  hooks.onStage?.('train', runDir);
  const progress = hooks.onProgress ? backend.onProgress(hooks.onProgress) : undefined;
  let result: CompressResult;
  try {
    result = await backend.request(Requests.compress, { ...params, runDir, resume: true }, hooks.token);
  } finally {
    progress?.dispose();
  }
  const report = await finalizeRun(runDir, { hooks });
  return {
    status: 'done',
    runDir,
    method: result.method,
    budget: result.budget,
    keep: result.keep,
    achieved: result.achieved,
    teacher: report.teacher,
    student: report.student!,
    units: result.units,
    wallSeconds: (Date.now() - t0) / 1000,
    modelDir: result.modelDir,
    onnxPath: result.onnxPath,
    reportHtml: path.join(runDir, 'report.html'),
    test: result.test,
  };
}

export { CancellationTokenSource };
