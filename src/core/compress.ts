/**
 * One compression, end to end, shared by the CLI and the extension: tokenize the data into shards, have the
 * backend train / prune / fine-tune / sweep, measure both ONNX models in onnxruntime-node and hand those figures
 * to the backend (report.json's one writer), then write report.html + report.md into the run directory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CancellationTokenSource, type CancellationToken } from 'vscode-jsonrpc/node';
import { type Backend, CancelledError } from './backend';
import {
  COMPRESS_DEFAULTS,
  RUN_CLIENT_FILES,
  type BudgetKind,
  type HowToLoad,
  type Method,
  type OutputShape,
  type RunReport,
  type ShardMeta,
} from './contracts';
import { displayPath, type Fields } from './data';
import { UserError } from './errors';
import { labelNames, readConfig, readModelShape, type Task } from './modelShape';
import { measureOnnx } from './onnxEval';
import {
  Requests,
  type CompressParams,
  type CompressResult,
  type DistillParams,
  type EstimateResult,
  type ProgressParams,
  type RethresholdResult,
} from './protocol';
import { renderReportHtml, renderReportMarkdown } from './reportHtml';
import { appendRunLog, CACHE_DIR, ignoreInGit, newRunId, readReport, readRunInfo, runsDir, workspaceOfRun, writeTextAtomic } from './runs';
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
  /** Unset: the backend's default (src/core/contracts.ts COMPRESS_DEFAULTS). */
  keep?: number;
  budget?: BudgetKind;
  method?: Method;
  /** The output shape of model/ (docs/model-format.md); unset: the backend's default, heterogeneous. */
  shape?: OutputShape;
  device?: CompressParams['device'];
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
  /** Something suspicious in the data (empty texts, bytes that are not UTF-8): the run goes on. */
  onWarning?: (message: string) => void;
  onTokenize?: (file: string, p: ShardProgress) => void;
  onProgress?: (p: ProgressParams) => void;
  token?: CancellationToken;
}

/** The CLI's `--json` object (documented in README): the backend's result, with the measured summaries and the report's location. */
export interface CompressOutcome extends CompressResult {
  reportHtml: string;
  /** How to load model/ and model.onnx without VTrans (report.json's `load`). */
  load?: HowToLoad;
}

function checkKeep(keep: number | undefined): void {
  if (keep !== undefined && !(keep > 0 && keep <= 1)) {
    throw new UserError(`--keep must be a fraction in (0, 1], got ${keep}.`, 'For example --keep 0.3 keeps 30 % of the budget.');
  }
}

export interface PreparedData {
  train: string;
  eval: string;
  test?: string;
  specialTokenIds: number[];
  withTokenTypes: boolean;
  task: Task;
  maxLen: number;
}

/** Tokens per example: the option, else the backend's default, capped by the model's position table. */
function maxLength(opts: CompressOptions, maxPositions: number, family: string): number {
  return opts.maxLen ?? Math.min(COMPRESS_DEFAULTS.maxLength, maxPositions - (family === 'roberta' ? 2 : 0));
}

/** Tokenizes train / eval / test data into cached shards (a held-out part of train when no eval data is given). */
export async function prepareData(opts: CompressOptions, hooks: CompressHooks = {}): Promise<PreparedData> {
  const shape = readModelShape(opts.modelDir, opts.task);
  const task = opts.task ?? shape.task;
  const cfg = readConfig(opts.modelDir);
  const cacheDir = path.join(opts.workspace, CACHE_DIR, 'tokens');
  ignoreInGit(path.join(opts.workspace, CACHE_DIR));
  const maxLen = maxLength(opts, shape.maxPositions, shape.family);
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
      for (const w of r.meta.warnings) hooks.onWarning?.(w);
      return r;
    };
    const trainShards = await shard(opts.data);
    refuseOneClass(trainShards.meta, opts.data);
    let train = trainShards.dir;
    let evalDir: string;
    if (opts.evalData) {
      evalDir = (await shard(opts.evalData)).dir;
    } else {
      const parts = splitShards(train, opts.holdout ?? 0.1);
      train = parts.train;
      evalDir = parts.eval;
    }
    const test = opts.testData ? (await shard(opts.testData)).dir : undefined;
    const tok = loadTokenizer(opts.modelDir);
    const specials = [...tok.tokenizer.get_added_tokens_decoder().entries()].filter(([, t]) => t.special).map(([id]) => id);
    return {
      train,
      eval: evalDir,
      test,
      specialTokenIds: specials,
      withTokenTypes: readShards(train).meta.pairs && tok.usesTokenTypes,
      task,
      maxLen,
    };
  } catch (e) {
    if (abort.signal.aborted) throw new CancelledError('Compression cancelled while tokenizing.');
    throw e;
  } finally {
    sub?.dispose();
  }
}

/** Training data with a single class cannot teach a classifier anything: refused before any training. */
function refuseOneClass(meta: ShardMeta, file: string): void {
  const present = (meta.labelCounts ?? []).filter((n) => n > 0).length;
  if (meta.task === 'classification' && present === 1 && meta.examples > 1) {
    throw new UserError(
      `${displayPath(file)}: every training example has the same label ("${meta.labels?.[meta.labelCounts!.findIndex((n) => n > 0)]}").`,
      'A classifier needs examples of at least two classes; check the label field or the file.',
    );
  }
}

/**
 * Where runs may be written: never inside, at or around the source model (its folder is only read), and not
 * into a folder of the user's that is not a run. The backend checks again under the run's lock.
 */
export function checkOutput(outDir: string, modelDir: string, opts: { resume?: boolean } = {}): void {
  const out = realpathOrSelf(outDir);
  const src = realpathOrSelf(modelDir);
  const inside = (a: string, b: string) => a === b || a.startsWith(b.endsWith(path.sep) ? b : b + path.sep);
  if (inside(out, src))
    throw new UserError(
      `${outDir}: is inside the source model ${modelDir}, which VTrans never writes to.`,
      'Pick an output folder elsewhere.',
    );
  if (inside(src, out))
    throw new UserError(
      `${outDir}: contains the source model ${modelDir}; a run there would mix with it.`,
      'Pick an output folder elsewhere.',
    );
  if (!fs.existsSync(out)) return;
  if (!fs.statSync(out).isDirectory()) throw new UserError(`${outDir}: is a file, not a folder.`, 'Pick a new output folder.');
  const isRun = fs.existsSync(path.join(out, 'run.json'));
  if (opts.resume) {
    if (!isRun) throw new UserError(`${outDir}: not a run directory (no run.json), so there is nothing to resume.`);
    return;
  }
  if (isRun) throw new UserError(`${outDir}: a run already exists there.`, 'Choose another --out directory, or resume that run.');
  const ours = new Set<string>(['.lock', ...Object.values(RUN_CLIENT_FILES)]);
  const files = fs.readdirSync(out).filter((f) => !ours.has(f));
  if (files.length)
    throw new UserError(
      `${outDir}: exists and holds files that are not a VTrans run (${files.slice(0, 3).join(', ')}${files.length > 3 ? ', …' : ''}).`,
      'Pick a new or empty folder.',
    );
}

/** The folder whose `.vtrans/` holds runs and caches: the given one, unless it is the model or inside it (the
 * model's folder is only read), then the folder above the model. */
export function workspaceFor(workspace: string, modelDir: string): string {
  const ws = realpathOrSelf(workspace);
  const src = realpathOrSelf(modelDir);
  return ws === src || ws.startsWith(src + path.sep) ? path.dirname(src) : workspace;
}

function realpathOrSelf(p: string): string {
  const abs = path.resolve(p);
  try {
    return fs.realpathSync(abs);
  } catch {
    // Not there yet: resolve the nearest existing parent, so links above it are followed.
    const parent = path.dirname(abs);
    return parent === abs ? abs : path.join(realpathOrSelf(parent), path.basename(abs));
  }
}

/**
 * Sends a request with the hooks' progress handler attached for its duration; with `runDir`, the backend's log
 * lines meanwhile go to the run's log.txt (the client writes it; run.json stays the backend's).
 */
async function withProgress<R>(backend: Backend, hooks: CompressHooks, send: () => Promise<R>, runDir?: string): Promise<R> {
  const progress = hooks.onProgress ? backend.onProgress(hooks.onProgress) : undefined;
  const log = runDir ? backend.onLog((line) => appendRunLog(runDir, line)) : undefined;
  try {
    return await send();
  } finally {
    progress?.dispose();
    log?.dispose();
  }
}

/** The compress request's params for prepared data: the options, with the backend's defaults where unset. */
function compressParams(opts: CompressOptions, data: PreparedData, runDir: string): CompressParams {
  const given = <K extends keyof CompressParams>(key: K, value: CompressParams[K] | undefined) =>
    value === undefined ? {} : { [key]: value };
  return {
    ...opts.extra,
    modelDir: path.resolve(opts.modelDir),
    trainShards: data.train,
    evalShards: data.eval,
    ...given('testShards', data.test),
    runDir,
    workspace: path.resolve(opts.workspace),
    task: data.task,
    maxLength: data.maxLen,
    specialTokenIds: data.specialTokenIds,
    withTokenTypes: data.withTokenTypes,
    ...given('method', opts.method),
    ...given('shape', opts.shape),
    ...given('keep', opts.keep),
    ...given('budget', opts.budget),
    ...given('device', opts.device),
    ...given('dataFraction', opts.dataFraction),
    ...given('roundTo', opts.roundTo),
    ...given('distill', opts.distill),
  };
}

/**
 * The warm-up estimate of a compression before it starts: the data tokenized (cached, so the run reuses the
 * shards), then a few real training steps timed by the backend; the run directory is not created.
 */
export async function estimateCompression(
  backend: Backend,
  options: CompressOptions,
  hooks: CompressHooks & { steps?: number } = {},
): Promise<EstimateResult & { data: PreparedData }> {
  checkKeep(options.keep);
  const opts = { ...options, workspace: workspaceFor(options.workspace, options.modelDir) };
  const data = await prepareData(opts, hooks);
  const runDir = opts.runDir ?? path.join(runsDir(opts.workspace), newRunId(opts.method ?? COMPRESS_DEFAULTS.method));
  const settings = compressParams(opts, data, runDir);
  const result = await backend.request(Requests.estimate, { settings, steps: hooks.steps ?? 4 }, hooks.token);
  return { ...result, data };
}

export async function compress(backend: Backend, options: CompressOptions, hooks: CompressHooks = {}): Promise<CompressOutcome> {
  checkKeep(options.keep);
  const opts = { ...options, workspace: workspaceFor(options.workspace, options.modelDir) };
  const runDir = opts.runDir ?? path.join(runsDir(opts.workspace), newRunId(opts.method ?? COMPRESS_DEFAULTS.method));
  const resume = opts.extra?.resume === true;
  checkOutput(runDir, opts.modelDir, { resume });
  const data = await prepareData(opts, hooks);
  checkOutput(runDir, opts.modelDir, { resume }); // again: tokenizing took a while
  // The run directory and its .gitignore before the backend writes run.json there: nothing of a run is tracked.
  ignoreInGit(runDir);
  const params = compressParams(opts, data, runDir);
  appendRunLog(runDir, [
    `compress ${params.modelDir}`,
    `data ${path.resolve(opts.data)}${opts.evalData ? `, eval ${path.resolve(opts.evalData)}` : `, eval: ${Math.round(100 * (opts.holdout ?? 0.1))}% held out`}${opts.testData ? `, test ${path.resolve(opts.testData)}` : ''}`,
    ...(opts.fields ? [`columns ${JSON.stringify(opts.fields)}`] : []),
  ]);
  hooks.onStage?.('train', runDir);
  const result = await withProgress(backend, hooks, () => backend.request(Requests.compress, params, hooks.token), runDir);
  return outcome(result, await finalizeRun(backend, runDir, { evalShards: data.eval, hooks }));
}

/** The backend's result with the report's summaries, which carry the onnxruntime-node figures. */
function outcome(result: CompressResult, report: RunReport): CompressOutcome {
  return {
    ...result,
    teacher: report.teacher,
    student: report.student ?? result.student,
    reportHtml: path.join(result.runDir, 'report.html'),
    ...(report.load ? { load: report.load } : {}),
  };
}

/**
 * Measures teacher.onnx and model.onnx in onnxruntime-node (size, latency, the metric from the eval shards),
 * decodes the probe keywords, has the backend record both in report.json, and writes report.html and report.md.
 */
export async function finalizeRun(
  backend: Backend,
  runDir: string,
  opts: { evalShards?: string; threads?: number; hooks?: CompressHooks } = {},
): Promise<RunReport> {
  const report = readReport(runDir);
  if (!report)
    throw new UserError(`${path.join(runDir, 'report.json')}: missing or unreadable.`, 'The run did not finish; resume or rerun it.');
  const settings = readRunInfo(runDir)?.settings;
  const evalDir = opts.evalShards ?? settings?.evalShards;
  const shards = evalDir && fs.existsSync(evalDir) ? readShards(evalDir) : undefined;
  opts.hooks?.onStage?.('measure', runDir);
  appendRunLog(runDir, 'measuring teacher.onnx and model.onnx in onnxruntime-node');
  const token = opts.hooks?.token;
  // Latency at sequence length 128, or the longest the model's position table allows.
  const shape = readModelShape(path.join(runDir, 'model'));
  const seqLen = Math.min(128, shape.maxPositions - (shape.family === 'roberta' ? 2 : 0));
  const measure = async (file: string) => {
    if (token?.isCancellationRequested) throw new CancelledError();
    const full = path.join(runDir, file);
    const limit = settings?.evalExamples ?? undefined;
    return fs.existsSync(full)
      ? measureOnnx(full, file, report.model.vocab, { shards, threads: opts.threads, latency: { seqLen }, limit })
      : undefined;
  };
  const teacher = await measure('teacher.onnx');
  const student = await measure('model.onnx');
  const modelDir = settings?.modelDir ?? report.model.dir;
  let keywords: string[] | undefined;
  if (report.probes?.keywordIds?.length && fs.existsSync(path.join(modelDir, 'tokenizer.json'))) {
    const tok = loadTokenizer(modelDir).tokenizer;
    keywords = report.probes.keywordIds.map((id) => tok.decode([id]).trim() || (tok.id_to_token(id) ?? String(id)));
  }
  opts.hooks?.onStage?.('report', runDir);
  const recorded = await backend.request(Requests.recordMeasurements, { runDir, teacher, student, keywords }, token);
  writeReportFiles(runDir, recorded);
  appendRunLog(runDir, `wrote report.json, report.html and report.md`);
  return recorded;
}

/** report.html (self-contained, opens without VS Code) and report.md. */
export function writeReportFiles(runDir: string, report: RunReport): void {
  const dist = path.resolve(__dirname, fs.existsSync(path.resolve(__dirname, 'webview.js')) ? '.' : '../../dist');
  const js = fs.readFileSync(path.join(dist, 'webview.js'), 'utf8');
  const css = fs.readFileSync(path.resolve(dist, '..', 'media', 'webview.css'), 'utf8');
  writeTextAtomic(path.join(runDir, 'report.html'), renderReportHtml(report, js, css));
  writeTextAtomic(path.join(runDir, 'report.md'), renderReportMarkdown(report));
}

/**
 * A run's masks cut at another budget, as a new run directory with its ONNX figures and report. Without an
 * `outDir` the new run goes to the runs folder of the workspace the run was made in (run.json records it).
 */
export async function exportAtBudget(
  backend: Backend,
  opts: { runDir: string; keep: number; budget?: BudgetKind; shape?: OutputShape; outDir?: string; retuneSteps?: number },
  hooks: CompressHooks = {},
): Promise<RethresholdResult & { reportHtml: string; load?: HowToLoad }> {
  checkKeep(opts.keep);
  const outDir = opts.outDir ?? path.join(runsDir(workspaceOfRun(opts.runDir)), newRunId('rethreshold'));
  const modelDir = readRunInfo(opts.runDir)?.modelDir;
  if (modelDir) checkOutput(outDir, modelDir);
  ignoreInGit(outDir);
  appendRunLog(outDir, `cut ${opts.runDir} at keep ${opts.keep}${opts.budget ? ` of ${opts.budget}` : ''}`);
  const result = await withProgress(
    backend,
    hooks,
    () =>
      backend.request(
        Requests.rethreshold,
        { runDir: opts.runDir, keep: opts.keep, budget: opts.budget, shape: opts.shape, outDir, retuneSteps: opts.retuneSteps },
        hooks.token,
      ),
    outDir,
  );
  const report = readReport(outDir) ? await finalizeRun(backend, outDir, { hooks }) : undefined;
  return { ...result, reportHtml: path.join(outDir, 'report.html'), ...(report?.load ? { load: report.load } : {}) };
}

/** Continues a failed, cancelled or interrupted run from its last checkpoint, then finishes its report. */
export async function resumeRun(backend: Backend, runDir: string, hooks: CompressHooks = {}): Promise<CompressOutcome> {
  const info = readRunInfo(runDir);
  if (!info) throw new UserError(`${runDir}: not a run directory (no run.json).`, 'Pick a folder under .vtrans/runs.');
  if (info.status === 'done') throw new UserError(`${runDir}: the run is already done.`);
  hooks.onStage?.('train', runDir);
  const params: CompressParams = { ...info.settings, runDir, resume: true };
  ignoreInGit(runDir);
  appendRunLog(runDir, 'resume from the last checkpoint');
  const result = await withProgress(backend, hooks, () => backend.request(Requests.compress, params, hooks.token), runDir);
  return outcome(result, await finalizeRun(backend, runDir, { hooks }));
}

export { CancellationTokenSource };
