/**
 * "VTrans: Compress Model": pick the model project, choose the data like a user would (files by content, a
 * preview, the columns, eval and test files; remembered per project), confirm what will happen (model, data,
 * method, budget, device, output, and the time and memory a measured warm-up predicts), then run with progress
 * in the Runs view and the status bar, the live training panel one click away, and the run's log.txt.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CancellationTokenSource, type CancellationToken } from 'vscode-jsonrpc/node';
import { BackendCrashedError, CancelledError } from '../core/backend';
import { compress, estimateCompression, resumeRun, type CompressOptions, type CompressOutcome } from '../core/compress';
import { errorMessage, isUserError } from '../core/errors';
import { fmtCount } from '../core/findings';
import { PHASE_LABEL, progressDetail } from '../core/progressText';
import type { CompressParams, ProgressParams } from '../core/protocol';
import { modelName, newRunId, readRunInfo, runsDir } from '../core/runs';
import type { CompressArgs } from './api';
import type { BackendManager } from './backendManager';
import { readSettings } from './config';
import { confirmPlan, type Devices, type RunPlan } from './confirm';
import { chooseData, HOLDOUT, type DataChoices } from './dataChoice';
import { describeProject, findModelProjects, modelProject, type ModelProject } from './modelProjects';
import type { StatusBar } from './statusBar';
import { requireTrust } from './trust';

interface Active {
  runDir: string;
  cancel: CancellationTokenSource;
  progress?: ProgressParams;
  done: Promise<unknown>;
}

export type Finished = CompressOutcome | { error: string; cancelled: boolean };

/** What the flow tells the rest of the extension while a run goes on. */
export interface FlowListener {
  /** A run started (runDir) or ended (runDir, done). */
  onRun(runDir: string | undefined, ended: boolean): void;
  onProgress(runDir: string, p: ProgressParams): void;
}

function workspaceFolderFor(p: string): string {
  const folder = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(p)) ?? vscode.workspace.workspaceFolders?.[0];
  return folder ? folder.uri.fsPath : path.dirname(p);
}

/** The model's name as a piece of a run id: "20250101-120000-spam-classifier-fast-1a2b". */
function safeName(modelDir: string): string {
  return (
    modelName(modelDir)
      .replace(/[^A-Za-z0-9._-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 40) || 'model'
  );
}

function resolvePath(p: string): string {
  if (path.isAbsolute(p)) return p;
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? process.cwd();
  return path.join(root, p);
}

async function pickModel(steps: number): Promise<ModelProject | undefined> {
  const items = (await findModelProjects()).map((p) => ({
    project: p,
    label: path.basename(p.dir),
    description: describeProject(p),
    detail: vscode.workspace.asRelativePath(p.dir),
  }));
  if (!items.length) {
    const sample = 'Open the Sample Project';
    void vscode.window
      .showErrorMessage(
        'No model project found in the workspace: VTrans needs a folder with config.json (model_type bert, roberta, gpt2 or llama), the weights (model.safetensors, sharded, or pytorch_model.bin) and tokenizer.json.',
        sample,
      )
      .then((c) => c === sample && vscode.commands.executeCommand('vtrans.openSample'));
    return undefined;
  }
  if (items.length === 1) return items[0].project;
  return (
    await vscode.window.showQuickPick(items, {
      title: `VTrans: model to compress (1/${steps})`,
      placeHolder: 'A folder with config.json, the weights and tokenizer.json',
      matchOnDetail: true,
      ignoreFocusOut: true,
    })
  )?.project;
}

/** The compress options of a plan: the settings, with the plan's method, budget and device for this run. */
export function optionsOf(plan: RunPlan, runDir: string | undefined, extra: Partial<CompressParams> = {}): CompressOptions {
  const s = plan.settings;
  return {
    workspace: workspaceFolderFor(plan.project.dir),
    modelDir: plan.project.dir,
    data: plan.data.train,
    evalData: plan.data.eval,
    testData: plan.data.test,
    holdout: HOLDOUT,
    task: plan.data.task,
    fields: Object.keys(plan.data.fields).length ? plan.data.fields : undefined,
    keep: plan.budget.keep,
    budget: plan.budget.kind,
    method: plan.method,
    shape: plan.shape,
    device: plan.device as CompressParams['device'],
    dataFraction: s.dataFraction,
    roundTo: s.roundTo,
    maxLen: s.maxLength,
    distill: s.distill,
    runDir,
    extra: { precision: s.precision, ...s.advanced, ...(s.gpus > 1 ? { gpus: s.gpus, parallel: s.parallel } : {}), ...extra },
  };
}

export class CompressFlow {
  private active: Active | undefined;
  private readonly finished = new vscode.EventEmitter<Finished>();
  readonly onDidFinish = this.finished.event;

  constructor(
    private readonly backends: BackendManager,
    private readonly status: StatusBar,
    private readonly log: vscode.LogOutputChannel,
    private readonly memory: DataChoices,
    private readonly listener: FlowListener,
  ) {}

  get running(): { runDir?: string; progress?: ProgressParams } | undefined {
    return this.active && { runDir: this.active.runDir, progress: this.active.progress };
  }

  private devices(): Devices | undefined {
    const py = this.backends.pythonInfo();
    const info = this.backends.running()?.info;
    if (!py && !info) return undefined;
    const names = py?.gpuNames.length ? py.gpuNames : info?.gpuName ? [info.gpuName] : [];
    return { cuda: py?.cuda ?? info?.cuda ?? false, gpuNames: names, threads: info?.threads };
  }

  private async estimate(plan: RunPlan, token: CancellationToken, note: (text: string) => void) {
    const backend = await this.backends.get();
    if (!backend) throw new Error('the backend could not start (see the notification)');
    note('tokenizing the data');
    const r = await estimateCompression(backend, optionsOf(plan, undefined), {
      token,
      onTokenize: (file, p) => note(`tokenizing ${path.basename(file)}: ${p.examples.toLocaleString('en-US')} examples`),
      onStage: (stage) => stage === 'tokenize' || note('timing training steps'),
    });
    this.log.info(
      `estimate for ${plan.project.dir}: ${r.secondsPerStep.toFixed(3)} s/step on ${r.deviceName}, ${r.pruneSteps}+${r.finetuneSteps} steps, about ${r.estimatedSeconds.toFixed(0)} s, peak ${r.peakMemoryBytes} bytes (${r.memory})`,
    );
    return r;
  }

  /** Interactive unless `args` names the model and data (tests, other extensions); a Uri is the model folder. */
  async compress(arg?: vscode.Uri | CompressArgs): Promise<CompressOutcome | undefined> {
    if (this.active) {
      void vscode.window.showWarningMessage('A compression is already running; cancel it first (VTrans: Cancel Compression).');
      return undefined;
    }
    if (!(await requireTrust('compress a model'))) return undefined;
    if (arg && !(arg instanceof vscode.Uri)) return this.compressWith(arg);
    let project: ModelProject | undefined;
    if (arg instanceof vscode.Uri) {
      const dir = fs.statSync(arg.fsPath).isDirectory() ? arg.fsPath : path.dirname(arg.fsPath);
      project = modelProject(dir);
      if (!project) {
        void vscode.window.showErrorMessage(
          `${vscode.workspace.asRelativePath(dir)} is not a model project VTrans can load: it needs config.json with model_type bert, roberta, gpt2 or llama, the weights and tokenizer.json.`,
        );
        return undefined;
      }
    } else project = await pickModel(3);
    if (!project) return undefined;
    const data = await chooseData(project, this.memory, { of: 3 });
    if (!data) return undefined;
    const s = readSettings(vscode.Uri.file(project.dir));
    const workspace = workspaceFolderFor(project.dir);
    const plan = await confirmPlan(
      { project, data, method: s.method, budget: s.budget, shape: s.shape, device: s.device, settings: s },
      {
        estimate: (p, token, note) => this.estimate(p, token, note),
        devices: () => this.devices(),
        chooseData: () => chooseData(project, this.memory, { of: 3 }),
        output: vscode.workspace.asRelativePath(path.join(runsDir(workspace), '<run>')),
      },
      'VTrans: confirm (3/3)',
    );
    if (!plan) return undefined;
    const backend = await this.backends.get();
    if (!backend) return undefined;
    const runDir = path.join(runsDir(workspace), newRunId(`${safeName(project.dir)}-${plan.method}`));
    return this.runWithProgress(runDir, path.basename(project.dir), (cancel, onProgress) =>
      compress(backend, optionsOf(plan, runDir), this.hooks(runDir, cancel, onProgress)),
    );
  }

  private hooks(runDir: string, cancel: CancellationTokenSource, onProgress: (p: ProgressParams, message?: string) => void) {
    return {
      token: cancel.token,
      onProgress,
      onStage: (stage: string, detail: string) => this.log.info(`${stage}: ${detail}`),
      onTokenize: (file: string, p: { examples: number }) =>
        onProgress(
          { id: 0, runDir, phase: 'load', step: p.examples, total: Math.max(p.examples, 1) },
          `tokenizing ${path.basename(file)}: ${p.examples} examples`,
        ),
    };
  }

  /** A compression named by arguments: no pickers; the settings fill in what the arguments leave out. */
  private async compressWith(args: CompressArgs): Promise<CompressOutcome | undefined> {
    const modelDir = resolvePath(args.modelDir);
    const s = readSettings(vscode.Uri.file(modelDir));
    const backend = await this.backends.get();
    if (!backend) return undefined;
    const workspace = workspaceFolderFor(modelDir);
    const method = args.method ?? s.method;
    const runDir = path.join(runsDir(workspace), newRunId(`${safeName(modelDir)}-${method}`));
    const opts: CompressOptions = {
      workspace,
      modelDir,
      data: resolvePath(args.data),
      evalData: args.evalData ? resolvePath(args.evalData) : undefined,
      testData: args.testData ? resolvePath(args.testData) : undefined,
      task: args.task,
      fields: args.fields,
      keep: args.keep ?? s.budget.keep,
      budget: args.budget ?? s.budget.kind,
      method,
      shape: args.shape ?? s.shape,
      device: s.device,
      dataFraction: s.dataFraction,
      roundTo: s.roundTo,
      maxLen: s.maxLength,
      distill: s.distill,
      runDir,
      extra: {
        precision: s.precision,
        ...s.advanced,
        ...(s.gpus > 1 ? { gpus: s.gpus, parallel: s.parallel } : {}),
        ...(args.extra ?? {}),
      },
    };
    return this.runWithProgress(runDir, path.basename(modelDir), (cancel, onProgress) =>
      compress(backend, opts, this.hooks(runDir, cancel, onProgress)),
    );
  }

  async resume(runDir: string): Promise<CompressOutcome | undefined> {
    if (this.active) {
      void vscode.window.showWarningMessage('A compression is already running; cancel it first.');
      return undefined;
    }
    const backend = await this.backends.get();
    if (!backend) return undefined;
    return this.runWithProgress(runDir, path.basename(readRunInfo(runDir)?.modelDir ?? runDir), (cancel, onProgress) =>
      resumeRun(backend, runDir, { token: cancel.token, onProgress }),
    );
  }

  /**
   * Runs the work with its progress where a long run can be watched: a progress bar on the Runs view (its item
   * shows the phase and ETA), the status bar, and the live training panel; a short note says so.
   */
  private async runWithProgress(
    runDir: string,
    model: string,
    work: (cancel: CancellationTokenSource, onProgress: (p: ProgressParams, message?: string) => void) => Promise<CompressOutcome>,
  ): Promise<CompressOutcome | undefined> {
    const cancel = new CancellationTokenSource();
    const tracked = this.backends.track(runDir);
    let resolveDone!: () => void;
    this.active = { runDir, cancel, done: new Promise<void>((r) => (resolveDone = r)) };
    await vscode.commands.executeCommand('setContext', 'vtrans.compressing', true);
    this.listener.onRun(runDir, false);
    void vscode.commands.executeCommand('vtrans.runs.focus').then(undefined, () => undefined);
    void vscode.window
      .showInformationMessage(`VTrans is compressing ${model}: progress in the Runs view and the status bar.`, 'Show Training', 'Cancel')
      .then((c) => {
        if (c === 'Show Training') void vscode.commands.executeCommand('vtrans.showTraining', runDir);
        if (c === 'Cancel') void this.cancel();
      });
    try {
      const outcome = await vscode.window.withProgress(
        { location: { viewId: 'vtrans.runs' }, title: `Compressing ${model}`, cancellable: false },
        async (progress) => {
          let last = 0;
          return work(cancel, (p, message) => {
            if (this.active) this.active.progress = p;
            this.status.progress(p);
            this.listener.onProgress(runDir, p);
            const frac = p.total > 0 ? p.step / p.total : 0;
            const phaseShare =
              { load: 0, prune: 2, select: 70, finetune: 70, export: 92, sweep: 94, probe: 98, evaluate: 98 }[p.phase] ?? 0;
            const nextShare =
              { load: 2, prune: 70, select: 70, finetune: 92, export: 94, sweep: 98, probe: 99, evaluate: 99 }[p.phase] ?? 0;
            const overall = phaseShare + (nextShare - phaseShare) * frac;
            progress.report({
              message:
                message ?? `${PHASE_LABEL[p.phase] ?? p.phase} ${p.step}/${p.total}${progressDetail(p) ? ` · ${progressDetail(p)}` : ''}`,
              increment: Math.max(0, overall - last),
            });
            last = Math.max(last, overall);
          });
        },
      );
      this.finished.fire(outcome);
      void this.announce(outcome);
      return outcome;
    } catch (e) {
      const cancelled = e instanceof CancelledError || cancel.token.isCancellationRequested;
      if (cancelled) {
        if (readRunInfo(runDir)?.status === 'running') await this.backends.markStopped(runDir, 'cancelled', 'Cancelled.');
        void vscode.window.showInformationMessage(
          `Compression cancelled. ${readRunInfo(runDir) ? 'The run keeps its checkpoints: resume it from the Runs view.' : ''}`,
        );
      } else if (isUserError(e)) {
        void vscode.window.showErrorMessage(errorMessage(e));
      } else {
        this.log.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
        const crashed = e instanceof BackendCrashedError;
        if (crashed) this.log.error(`last backend log lines:\n${e.lastLog.slice(-10).join('\n')}`);
        void vscode.window
          .showErrorMessage(
            crashed
              ? `${e.message} The run is marked failed; its checkpoints are kept for Resume.`
              : `Compression failed: ${errorMessage(e)}`,
            'Show Log',
            ...(crashed ? ['Resume'] : []),
          )
          .then((choice) => {
            if (choice === 'Show Log') {
              const file = path.join(runDir, 'log.txt');
              if (fs.existsSync(file)) void vscode.commands.executeCommand('vscode.open', vscode.Uri.file(file));
              else this.log.show();
            }
            if (choice === 'Resume') void this.resume(runDir);
          });
      }
      this.finished.fire({ error: errorMessage(e), cancelled });
      return undefined;
    } finally {
      tracked.dispose();
      cancel.dispose();
      this.active = undefined;
      resolveDone();
      await vscode.commands.executeCommand('setContext', 'vtrans.compressing', false);
      this.listener.onRun(runDir, true);
    }
  }

  private async announce(o: CompressOutcome): Promise<void> {
    const m = o.student.metric;
    const t = o.teacher.metric;
    const metric =
      m && t
        ? m.name === 'accuracy'
          ? `, accuracy ${(100 * m.value).toFixed(2)}% (teacher ${(100 * t.value).toFixed(2)}%)`
          : `, perplexity ${m.value.toFixed(2)} (teacher ${t.value.toFixed(2)})`
        : '';
    const l1 = o.teacher.onnx?.latencyMs['1'];
    const s1 = o.student.onnx?.latencyMs['1'];
    const speed = l1 && s1 ? `, ${(l1 / s1).toFixed(1)}x faster in onnxruntime` : '';
    const choice = await vscode.window.showInformationMessage(
      `VTrans: compressed to ${fmtCount(o.student.params)} parameters (${(100 * o.achieved).toFixed(1)}% of the ${o.budget})${metric}${speed}.`,
      'Show Tradeoff',
      'Open Report',
      'Show Training',
      'Reveal Model',
    );
    if (choice === 'Show Training') await vscode.commands.executeCommand('vtrans.showTraining', o.runDir);
    if (choice === 'Show Tradeoff') await vscode.commands.executeCommand('vtrans.showTradeoff', o.runDir);
    if (choice === 'Open Report') await vscode.commands.executeCommand('vtrans.showReport', o.runDir);
    if (choice === 'Reveal Model') await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(o.modelDir));
  }

  /** Cancels the running compression; if the backend does not stop within 10 s, it is killed. */
  async cancel(): Promise<void> {
    const active = this.active;
    if (!active) {
      void vscode.window.showInformationMessage('No compression is running.');
      return;
    }
    this.log.info(`cancelling ${active.runDir}`);
    active.cancel.cancel();
    const stopped = await Promise.race([active.done.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
    if (!stopped) {
      this.log.warn('the backend did not stop within 10 s; killing it');
      await this.backends.stop('cancelled', 'Cancelled; the backend did not stop within 10 s and was stopped.');
    }
  }

  dispose(): void {
    this.active?.cancel.cancel();
    this.finished.dispose();
  }
}
