/**
 * "VTrans: Compress Model": pick the model project and the data, confirm budget and method (from the
 * settings, changeable on the spot), then run with a cancellable progress notification and the status bar.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import { BackendCrashedError, CancelledError } from '../core/backend';
import { compress, resumeRun, type CompressOutcome } from '../core/compress';
import { errorMessage, isUserError } from '../core/errors';
import { formatCount, inspectModel } from '../core/inspect';
import { FAMILIES } from '../core/modelShape';
import { PHASE_LABEL, progressDetail } from '../core/progressText';
import type { ProgressParams } from '../core/protocol';
import { BUDGET_KINDS, METHODS, OUTPUT_SHAPES } from '../core/contracts';
import { newRunId, readRunInfo, runsDir } from '../core/runs';
import type { CompressArgs } from './api';
import type { BackendManager } from './backendManager';
import { readSettings } from './config';
import { BUDGET_KIND_LABEL, METHOD_LABEL, SHAPE_DETAIL, SHAPE_LABEL } from '../core/labels';
import type { StatusBar } from './statusBar';
import { requireTrust } from './trust';

const EXCLUDE = '{**/node_modules/**,**/.vtrans/**,**/.git/**,**/.venv/**,**/dist/**}';
const DATA_GLOB = '**/*.{jsonl,ndjson,csv,tsv,txt}';

interface Active {
  runDir: string;
  cancel: CancellationTokenSource;
  progress?: ProgressParams;
  done: Promise<unknown>;
}

export type Finished = CompressOutcome | { error: string; cancelled: boolean };

function workspaceFolderFor(p: string): string {
  const folder = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(p)) ?? vscode.workspace.workspaceFolders?.[0];
  return folder ? folder.uri.fsPath : path.dirname(p);
}

function resolvePath(p: string): string {
  if (path.isAbsolute(p)) return p;
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? process.cwd();
  return path.join(root, p);
}

/** Workspace folders holding a config.json of a supported family, with their size (from headers only). */
async function findModelProjects(): Promise<Array<vscode.QuickPickItem & { dir: string }>> {
  const configs = await vscode.workspace.findFiles('**/config.json', EXCLUDE, 200);
  const items: Array<vscode.QuickPickItem & { dir: string }> = [];
  for (const uri of configs) {
    const dir = path.dirname(uri.fsPath);
    try {
      const cfg = JSON.parse(fs.readFileSync(uri.fsPath, 'utf8')) as { model_type?: string };
      if (!(FAMILIES as readonly string[]).includes(cfg.model_type ?? '')) continue;
      const r = inspectModel(dir);
      items.push({
        dir,
        label: path.basename(dir),
        description: `${r.family} · ${formatCount(r.params.total)} params · ${r.task}`,
        detail: vscode.workspace.asRelativePath(dir),
      });
    } catch {
      // Not loadable (no weights yet, other format): not offered.
    }
  }
  return items.sort((a, b) => a.detail!.localeCompare(b.detail!));
}

async function pickModel(): Promise<string | undefined> {
  const items = await findModelProjects();
  if (!items.length) {
    void vscode.window.showErrorMessage(
      'No model project found in the workspace: VTrans needs a folder with config.json (model_type bert, roberta, gpt2 or llama), the weights (model.safetensors) and tokenizer.json.',
    );
    return undefined;
  }
  if (items.length === 1) return items[0].dir;
  return (
    await vscode.window.showQuickPick(items, {
      title: 'VTrans: model to compress (1/3)',
      placeHolder: 'A folder with config.json and weights',
      matchOnDetail: true,
    })
  )?.dir;
}

async function pickData(title: string, preferred: RegExp, extra: vscode.QuickPickItem[] = []): Promise<string | null | undefined> {
  const files = await vscode.workspace.findFiles(DATA_GLOB, EXCLUDE, 500);
  const items: Array<vscode.QuickPickItem & { file?: string }> = files
    .map((u) => ({ file: u.fsPath, label: path.basename(u.fsPath), description: vscode.workspace.asRelativePath(path.dirname(u.fsPath)) }))
    .sort(
      (a, b) =>
        Number(preferred.test(b.label)) - Number(preferred.test(a.label)) ||
        a.description.localeCompare(b.description) ||
        a.label.localeCompare(b.label),
    );
  const browse = { label: '$(folder-opened) Browse…', alwaysShow: true };
  const choice = await vscode.window.showQuickPick([...extra, ...items, browse], {
    title,
    placeHolder: '.jsonl / .csv / .tsv with text and label, or .txt for language modelling',
    matchOnDescription: true,
  });
  if (!choice) return undefined;
  if (extra.includes(choice)) return null;
  if (choice === browse) {
    const picked = await vscode.window.showOpenDialog({
      canSelectMany: false,
      filters: { Data: ['jsonl', 'ndjson', 'csv', 'tsv', 'txt'] },
    });
    return picked?.[0]?.fsPath;
  }
  return (choice as unknown as { file: string }).file;
}

/** The confirmation step: the settings as they will be used, each changeable here. */
async function confirm(modelDir: string): Promise<boolean> {
  for (;;) {
    const s = readSettings(vscode.Uri.file(modelDir));
    const start = {
      label: `$(rocket) Start: ${METHOD_LABEL[s.method]} to ${+(100 * s.budget.keep).toFixed(1)}% of the ${BUDGET_KIND_LABEL[s.budget.kind]}, ${s.shape} shape`,
      detail: `device ${s.device}${s.method !== 'vtrans' ? `, ${+(100 * s.dataFraction).toFixed(1)}% of the data` : ''}, distillation ${s.distill.enabled ? 'on' : 'off'}`,
    };
    const budget = { label: '$(settings) Change budget…', description: `${+(100 * s.budget.keep).toFixed(1)}% ${s.budget.kind}` };
    const method = { label: '$(settings) Change method…', description: METHOD_LABEL[s.method] };
    const shape = { label: '$(settings) Change output shape…', description: `${SHAPE_LABEL[s.shape]}: ${SHAPE_DETAIL[s.shape]}` };
    const all = { label: '$(gear) All VTrans settings…' };
    const choice = await vscode.window.showQuickPick([start, budget, method, shape, all], { title: 'VTrans: confirm (3/3)' });
    if (!choice) return false;
    if (choice === start) return true;
    const target = vscode.ConfigurationTarget.Workspace;
    const cfg = vscode.workspace.getConfiguration('vtrans');
    if (choice === budget) {
      const value = await vscode.window.showInputBox({
        title: 'Fraction to keep',
        value: String(s.budget.keep),
        prompt: `Fraction of the ${BUDGET_KIND_LABEL[s.budget.kind]} to keep, in (0, 1]`,
        validateInput: (v) => (Number(v) > 0 && Number(v) <= 1 ? undefined : 'A number in (0, 1], e.g. 0.3'),
      });
      if (value) await cfg.update('budget.keep', Number(value), target);
      const kind = await vscode.window.showQuickPick([...BUDGET_KINDS], {
        title: 'Budget counted in',
        placeHolder: s.budget.kind,
      });
      if (kind) await cfg.update('budget.kind', kind, target);
    } else if (choice === method) {
      const m = await vscode.window.showQuickPick(
        METHODS.map((id) => ({ id, label: METHOD_LABEL[id] })),
        { title: 'Compression method' },
      );
      if (m) await cfg.update('method', m.id, target);
    } else if (choice === shape) {
      const picked = await vscode.window.showQuickPick(
        OUTPUT_SHAPES.map((id) => ({ id, label: SHAPE_LABEL[id], detail: SHAPE_DETAIL[id] })),
        { title: 'Output shape of the compressed model' },
      );
      if (picked) await cfg.update('shape', picked.id, target);
    } else {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'vtrans');
      return false;
    }
  }
}

export class CompressFlow {
  private active: Active | undefined;
  private readonly finished = new vscode.EventEmitter<Finished>();
  readonly onDidFinish = this.finished.event;

  constructor(
    private readonly backends: BackendManager,
    private readonly status: StatusBar,
    private readonly log: vscode.LogOutputChannel,
    private readonly afterRun: (runDir: string | undefined) => void,
  ) {}

  get running(): { runDir?: string; progress?: ProgressParams } | undefined {
    return this.active && { runDir: this.active.runDir, progress: this.active.progress };
  }

  /** Interactive unless `args` names the model and data (tests, other extensions, the Explorer menu's folder). */
  async compress(arg?: vscode.Uri | CompressArgs): Promise<CompressOutcome | undefined> {
    if (this.active) {
      void vscode.window.showWarningMessage('A compression is already running; cancel it first (VTrans: Cancel Compression).');
      return undefined;
    }
    const args = arg && !(arg instanceof vscode.Uri) ? arg : undefined;
    let modelDir = args ? resolvePath(args.modelDir) : undefined;
    if (arg instanceof vscode.Uri) modelDir = fs.statSync(arg.fsPath).isDirectory() ? arg.fsPath : path.dirname(arg.fsPath);
    if (!(await requireTrust('compress a model'))) return undefined;
    modelDir ??= await pickModel();
    if (!modelDir) return undefined;
    const data = args ? resolvePath(args.data) : await pickData('VTrans: training data (2/3)', /train/i);
    if (!data) return undefined;
    let evalData: string | undefined;
    if (args) evalData = args.evalData ? resolvePath(args.evalData) : undefined;
    else {
      const holdout = { label: '$(split-horizontal) Hold out 10% of the training data', alwaysShow: true };
      const picked = await pickData('VTrans: evaluation data (2/3)', /dev|valid|eval|test/i, [holdout]);
      if (picked === undefined) return undefined;
      evalData = picked ?? undefined;
    }
    if (args?.keep !== undefined || args?.budget || args?.method) {
      // explicit arguments win over the settings
    } else if (args?.confirm !== false && !(await confirm(modelDir))) {
      return undefined;
    }
    const s = readSettings(vscode.Uri.file(modelDir));
    const backend = await this.backends.get();
    if (!backend) return undefined;
    const workspace = workspaceFolderFor(modelDir);
    const method = args?.method ?? s.method;
    const runDir = path.join(runsDir(workspace), newRunId(method));
    return this.runWithProgress(runDir, `Compressing ${path.basename(modelDir)}`, (cancel, onProgress) =>
      compress(
        backend,
        {
          workspace,
          modelDir,
          data,
          evalData,
          keep: args?.keep ?? s.budget.keep,
          budget: args?.budget ?? s.budget.kind,
          method,
          shape: args?.shape ?? s.shape,
          device: s.device,
          dataFraction: s.dataFraction,
          roundTo: s.roundTo,
          maxLen: s.maxLength,
          distill: s.distill,
          runDir,
          extra: { precision: s.precision, ...s.advanced, ...(s.gpus > 1 ? { gpus: s.gpus } : {}), ...(args?.extra ?? {}) },
        },
        {
          token: cancel.token,
          onProgress,
          onStage: (stage, detail) => this.log.info(`${stage}: ${detail}`),
          onTokenize: (file, p) =>
            onProgress(
              { id: 0, runDir, phase: 'load', step: p.examples, total: Math.max(p.examples, 1) },
              `tokenizing ${path.basename(file)}: ${p.examples} examples`,
            ),
        },
      ),
    );
  }

  async resume(runDir: string): Promise<CompressOutcome | undefined> {
    if (this.active) {
      void vscode.window.showWarningMessage('A compression is already running; cancel it first.');
      return undefined;
    }
    const backend = await this.backends.get();
    if (!backend) return undefined;
    return this.runWithProgress(runDir, `Resuming ${path.basename(runDir)}`, (cancel, onProgress) =>
      resumeRun(backend, runDir, { token: cancel.token, onProgress }),
    );
  }

  private async runWithProgress(
    runDir: string,
    title: string,
    work: (cancel: CancellationTokenSource, onProgress: (p: ProgressParams, message?: string) => void) => Promise<CompressOutcome>,
  ): Promise<CompressOutcome | undefined> {
    const cancel = new CancellationTokenSource();
    const tracked = this.backends.track(runDir);
    let resolveDone!: () => void;
    this.active = { runDir, cancel, done: new Promise<void>((r) => (resolveDone = r)) };
    await vscode.commands.executeCommand('setContext', 'vtrans.compressing', true);
    this.afterRun(undefined);
    try {
      const outcome = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title, cancellable: true },
        async (progress, token) => {
          token.onCancellationRequested(() => void this.cancel());
          let last = 0;
          return work(cancel, (p, message) => {
            if (this.active) this.active.progress = p;
            this.status.progress(p);
            const frac = p.total > 0 ? p.step / p.total : 0;
            const phaseShare =
              { load: 0, prune: 70, select: 70, finetune: 85, export: 92, sweep: 94, probe: 98, evaluate: 98 }[p.phase] ?? 0;
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
            if (choice === 'Show Log') this.log.show();
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
      this.afterRun(runDir);
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
      `VTrans: compressed to ${formatCount(o.student.params)} parameters (${(100 * o.achieved).toFixed(1)}% of the ${o.budget})${metric}${speed}.`,
      'Show Tradeoff',
      'Open Report',
      'Reveal Model',
    );
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
