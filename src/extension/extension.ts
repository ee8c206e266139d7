/**
 * activate(): wires the editor to src/core — the backend lifecycle, the Runs view, the panels, inline budget
 * tuning, the walkthrough's steps and the commands. Everything created here is disposed with the extension.
 *
 * Quiet by default: the extension activates on its own commands and views and where runs exist
 * (package.json activationEvents). It shows no status item and starts no backend until the user asks (a
 * command, a budget change) or a run exists; a finished run's budget is shown from its report.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { exportAtBudget } from '../core/compress';
import { OUTPUT_SHAPES, type MetricsRecord, type OutputShape } from '../core/contracts';
import { errorMessage, isUserError } from '../core/errors';
import { SHAPE_DETAIL, SHAPE_LABEL } from '../core/labels';
import type { RunReport } from '../core/report';
import type { CompareRun, PredictedPoint, ReportPanelKind, TrainingState } from '../core/webviewProtocol';
import { deleteRun, readReport, readRunInfo, readRunNote, RUN_LOG, runsDir, runTitle, workspaceOfRun, writeRunNote } from '../core/runs';
import type { BudgetPrediction, VTransApi } from './api';
import { BackendManager } from './backendManager';
import { BudgetTuning, latestRun } from './budgetTuning';
import { CompressFlow } from './compressFlow';
import { affectsBackend, affectsBudget, readBudget, readSettings } from './config';
import { DataChoices } from './dataChoice';
import { checkEnvironment, openSample, sampleModel, selectInterpreter, WALKTHROUGH_ID } from './gettingStarted';
import { onInterpreterChange } from './interpreter';
import { ModelFolders } from './modelProjects';
import { ReportPanels } from './panels';
import { RunItem, RunsView } from './runsView';
import { StatusBar } from './statusBar';
import { requireTrust } from './trust';

let backends: BackendManager | undefined;

/** A run directory from a command argument: a tree item, a Uri, a path, or the newest finished run. */
/** The output shape to export in: the run's own first, the other beside it (docs/model-format.md). */
async function pickShape(runDir: string): Promise<OutputShape | undefined> {
  const own = readRunInfo(runDir)?.settings.shape ?? 'heterogeneous';
  const items = [...OUTPUT_SHAPES]
    .sort((a, b) => Number(b === own) - Number(a === own))
    .map((shape) => ({
      shape,
      label: SHAPE_LABEL[shape],
      description: shape === own ? "this run's shape" : undefined,
      detail: SHAPE_DETAIL[shape],
    }));
  const pick = await vscode.window.showQuickPick(items, { title: 'VTrans: export at the current budget, in which shape?' });
  return pick?.shape;
}

function runDirOf(arg: unknown): string | undefined {
  if (arg instanceof RunItem) return arg.run.dir;
  if (arg instanceof vscode.Uri) return arg.fsPath;
  if (typeof arg === 'string') return arg;
  if (arg && typeof arg === 'object' && 'run' in arg) return (arg as { run: { dir: string } }).run.dir;
  return latestRun()?.dir;
}

async function loadReport(runDir: string): Promise<RunReport> {
  const file = path.join(runDir, 'report.json');
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist yet: the run has not finished.`);
  const report = readReport(runDir);
  if (!report) throw new Error(`${file} is not valid JSON.`);
  return report;
}

/** metrics.jsonl's records (a line being written or unreadable is skipped). */
function readMetrics(runDir: string): MetricsRecord[] {
  const file = path.join(runDir, 'metrics.jsonl');
  if (!fs.existsSync(file)) return [];
  const out: MetricsRecord[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as MetricsRecord);
    } catch {
      // a line being written
    }
  }
  return out;
}

/** The training data file of a run (its token shards record their source). */
function trainingData(runDir: string): string | undefined {
  const shards = readRunInfo(runDir)?.settings?.trainShards;
  try {
    const meta = JSON.parse(fs.readFileSync(path.join(shards ?? '', 'meta.json'), 'utf8')) as { source?: string };
    return meta.source ? path.basename(meta.source) : undefined;
  } catch {
    return undefined;
  }
}

function titleOf(runDir: string): string {
  const info = readRunInfo(runDir);
  return info ? runTitle({ info, report: readReport(runDir) }) : path.basename(runDir);
}

export function activate(context: vscode.ExtensionContext): VTransApi {
  const log = vscode.window.createOutputChannel('VTrans', { log: true });
  backends = new BackendManager(log);
  const status = new StatusBar();
  const runs = new RunsView();
  const tree = vscode.window.createTreeView('vtrans.runs', { treeDataProvider: runs, canSelectMany: true, showCollapseAll: false });
  const memory = new DataChoices(context.workspaceState);
  const models = new ModelFolders();
  const panels: ReportPanels = new ReportPanels(
    context.extensionUri,
    {
      loadReport,
      currentBudget: () => readBudget(),
      latestRunDir: () => latestRun()?.dir,
      predictAtBudget: async (runDir, budget): Promise<PredictedPoint | undefined> => {
        const report = readReport(runDir);
        return report ? tuning.predict(runDir, report, budget, false) : undefined;
      },
      exportAtBudget: (runDir, budget) => exportRun(runDir, budget.keep, budget.kind, budget.shape),
      openRun: () => vscode.commands.executeCommand('vtrans.openRun'),
      loadMetrics: async (runDir) => {
        const info = readRunInfo(runDir);
        if (!info) throw new Error(`${path.join(runDir, 'run.json')} is missing: not a run directory`);
        const report = readReport(runDir);
        const active = flow.running?.runDir === runDir ? flow.running.progress : undefined;
        const state: TrainingState = {
          runDir,
          title: runTitle({ info, report }),
          status: info.status,
          target: info.budget ?? null,
          metricName: report?.metricName ?? null,
          progress: active ?? null,
        };
        return { state, records: readMetrics(runDir) };
      },
      loadCompare: async (runDirs): Promise<CompareRun[]> => {
        const runs = runDirs.map((runDir) => {
          const report = readReport(runDir);
          if (!report) throw new Error(`${titleOf(runDir)} has no report.json yet (it has not finished)`);
          return { runDir, title: titleOf(runDir), note: readRunNote(runDir), data: trainingData(runDir), report };
        });
        // Runs with the same name (model, method, budget) are told apart by their data, else by when they ran.
        for (const r of runs) {
          if (runs.filter((o) => o.title === r.title).length < 2) continue;
          const byData = runs.filter((o) => o.title === r.title && o.data === r.data).length === 1 && r.data;
          r.title = `${r.title} · ${byData ? r.data : path.basename(r.runDir).slice(0, 15)}`;
        }
        return runs;
      },
      runTitle: titleOf,
    },
    { commands: { compress: 'vtrans.compress', openRun: 'vtrans.openRun' } },
  );
  let lastMetricsPush = 0;
  const flow: CompressFlow = new CompressFlow(backends, status, log, memory, {
    onRun: (runDir, ended) => {
      if (ended && runDir) runs.setProgress(runDir, undefined);
      runs.refresh();
      if (runDir) void panels.metricsChanged(runDir);
      if (ended && runDir) {
        void panels.refresh(runDir);
        void tuning.update();
      }
    },
    onProgress: (runDir, p) => {
      runs.setProgress(runDir, p);
      // metrics.jsonl grows every 10 steps: the training panels look at most twice a second.
      const now = Date.now();
      if (now - lastMetricsPush > 500) {
        lastMetricsPush = now;
        void panels.metricsChanged(runDir);
      }
    },
  });
  const tuning: BudgetTuning = new BudgetTuning(backends, panels, status, log, () => flow.running !== undefined);
  panels.register(context);

  async function exportRun(runDir: string, keep: number, kind: RunReport['budget']['kind'], shape?: OutputShape): Promise<void> {
    const backend = await backends!.get();
    if (!backend) return;
    const workspace = workspaceOfRun(runDir);
    try {
      const result = await vscode.window.withProgress(
        {
          location: { viewId: 'vtrans.runs' },
          title: `Exporting at ${+(100 * keep).toFixed(1)}% of the ${kind}${shape ? `, ${shape} shape` : ''}`,
          cancellable: false,
        },
        () =>
          exportAtBudget(backend, {
            runDir,
            keep,
            budget: kind,
            shape,
            outDir: path.join(
              runsDir(workspace),
              `${path.basename(runDir)}-at-${Math.round(1000 * keep)}${shape && shape !== readRunInfo(runDir)?.settings.shape ? `-${shape}` : ''}`,
            ),
          }),
      );
      runs.refresh();
      // Not awaited: the command is done when the model is written, whatever the user does with the message.
      void vscode.window
        .showInformationMessage(
          `VTrans: exported ${result.student.params.toLocaleString('en-US')} parameters (${(100 * result.achieved).toFixed(1)}% of the ${result.budget}, ${result.shape} shape${result.shape === 'uniform' ? ': loads in stock transformers' : ': loads with trust_remote_code=True'}) to ${vscode.workspace.asRelativePath(result.runDir)}.`,
          'Open Report',
          'Reveal Model',
        )
        .then((choice) => {
          if (choice === 'Open Report') void panels.show('report', result.runDir);
          if (choice === 'Reveal Model') void vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(result.modelDir));
        });
    } catch (e) {
      void vscode.window.showErrorMessage(isUserError(e) ? errorMessage(e) : `Export failed: ${errorMessage(e)}`);
    }
  }

  /** The selected runs of the Runs view (a multi-selection), else the one the command was run on. */
  const selected = (item?: RunItem, items?: RunItem[]): string[] => {
    const list = items?.length ? items : tree.selection.length ? tree.selection : item ? [item] : [];
    return [...new Set(list.map((i) => i.run.dir))];
  };

  const show = (kind: ReportPanelKind | 'training') => (arg?: unknown) => panels.show(kind, runDirOf(arg));
  const register = (id: string, fn: (...args: never[]) => unknown) => context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  register('vtrans.compress', (arg?: never) => flow.compress(arg));
  register('vtrans.cancel', () => flow.cancel());
  register('vtrans.showTradeoff', show('tradeoff'));
  register('vtrans.showHeatmaps', show('heatmaps'));
  register('vtrans.showReport', show('report'));
  register('vtrans.showTraining', (arg?: unknown) => {
    const dir =
      arg !== undefined
        ? runDirOf(arg)
        : (flow.running?.runDir ?? runs.runs().find((r) => fs.existsSync(path.join(r.dir, 'metrics.jsonl')))?.dir);
    return panels.show('training', dir);
  });
  register('vtrans.runs.openTradeoff', show('tradeoff'));
  register('vtrans.runs.openHeatmaps', show('heatmaps'));
  register('vtrans.runs.openReport', show('report'));
  register('vtrans.runs.openTraining', show('training'));
  register('vtrans.runs.compare', async (item?: RunItem, items?: RunItem[]) => {
    let dirs = selected(item, items).filter((d) => readReport(d));
    if (dirs.length < 2) {
      // From the palette, or one run selected: pick the runs.
      const finished = runs.runs().filter((r) => r.report);
      const picked = await vscode.window.showQuickPick(
        finished.map((r) => ({
          label: runTitle(r),
          description: path.basename(r.dir),
          detail: readRunNote(r.dir) || undefined,
          dir: r.dir,
          picked: dirs.includes(r.dir),
        })),
        { title: 'VTrans: runs to compare', canPickMany: true, placeHolder: 'Two or more finished runs' },
      );
      if (!picked) return;
      dirs = picked.map((p) => p.dir);
    }
    if (dirs.length < 2) return void vscode.window.showInformationMessage('Compare needs two or more finished runs.');
    await panels.compare(dirs);
  });
  register('vtrans.runs.editNote', async (item: RunItem) => {
    const dir = runDirOf(item);
    if (!dir) return;
    const note = await vscode.window.showInputBox({
      title: `Note on ${titleOf(dir)}`,
      value: readRunNote(dir),
      prompt: `Kept in ${path.join(path.basename(dir), 'note.txt')}; shown in the Runs view and in comparisons`,
    });
    if (note === undefined) return;
    writeRunNote(dir, note);
    runs.refresh();
  });
  register('vtrans.runs.openLog', async (item: RunItem) => {
    const dir = runDirOf(item);
    const file = dir ? path.join(dir, RUN_LOG) : undefined;
    if (!file || !fs.existsSync(file))
      return void vscode.window.showInformationMessage('This run has no log.txt (it was made by an older version).');
    await vscode.commands.executeCommand('vscode.open', vscode.Uri.file(file));
  });
  register('vtrans.openRun', async () => {
    const items = runs.runs().map((r) => ({
      label: runTitle(r),
      description: [r.info.status, path.basename(r.dir)].filter(Boolean).join(' · '),
      detail: readRunNote(r.dir) || r.info.modelDir,
      dir: r.dir,
    }));
    if (!items.length) return void vscode.window.showInformationMessage('No runs yet in this workspace: run VTrans: Compress Model.');
    const pick = await vscode.window.showQuickPick(items, { title: 'VTrans: open run' });
    if (pick) await panels.show(readReport(pick.dir) ? 'report' : 'training', pick.dir);
  });
  register('vtrans.exportAtBudget', async (arg?: never, shapeArg?: never) => {
    if (!(await requireTrust('export a model'))) return;
    const runDir = runDirOf(arg);
    if (!runDir) return void vscode.window.showInformationMessage('No finished run with masks yet: run VTrans: Compress Model first.');
    const budget = readBudget();
    const given = shapeArg as unknown;
    const shape = OUTPUT_SHAPES.includes(given as OutputShape) ? (given as OutputShape) : await pickShape(runDir);
    if (!shape) return;
    await exportRun(runDir, budget.keep, budget.kind, shape);
  });
  register('vtrans.restartBackend', async () => {
    if (flow.running) await flow.cancel();
    const b = await backends!.restart();
    if (b) void vscode.window.showInformationMessage(`VTrans backend restarted (torch ${b.info?.torch}, ${b.info?.device}).`);
  });
  register('vtrans.showLog', () => log.show());
  register('vtrans.runs.refresh', () => runs.refresh());
  register('vtrans.runs.revealModel', (item: RunItem) =>
    vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(path.join(item.run.dir, 'model'))),
  );
  register('vtrans.runs.resume', (item: RunItem) => flow.resume(item.run.dir));
  register('vtrans.runs.delete', async (item: RunItem, items?: RunItem[]) => {
    const dirs = selected(item, items);
    if (flow.running?.runDir && dirs.includes(flow.running.runDir))
      return void vscode.window.showWarningMessage('This run is compressing; cancel it first.');
    const ok = await vscode.window.showWarningMessage(
      dirs.length === 1 ? `Delete ${titleOf(dirs[0])} and its model files?` : `Delete ${dirs.length} runs and their model files?`,
      { modal: true, detail: dirs.map((d) => path.basename(d)).join('\n') },
      'Delete',
    );
    if (ok !== 'Delete') return;
    for (const d of dirs) deleteRun(d);
    runs.refresh();
    void tuning.update();
  });
  // The walkthrough's steps.
  register('vtrans.selectInterpreter', () => selectInterpreter(backends!, log));
  register('vtrans.checkEnvironment', () => checkEnvironment(log));
  register('vtrans.openSample', () => openSample(context.extensionPath));
  register('vtrans.compressSample', async () => {
    let model = sampleModel();
    if (!model) {
      const dest = await openSample(context.extensionPath);
      model = dest ? path.join(dest, 'model') : undefined;
    }
    if (model) return flow.compress(vscode.Uri.file(model));
  });
  register('vtrans.openWalkthrough', () => vscode.commands.executeCommand('workbench.action.openWalkthrough', WALKTHROUGH_ID, false));

  context.subscriptions.push(
    log,
    backends,
    status,
    runs,
    tree,
    models,
    panels,
    tuning,
    flow,
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (affectsBudget(e)) void tuning.update(true);
      if (affectsBackend(e) && backends!.state()) {
        log.info('vtrans.pythonPath changed: the backend restarts with the new interpreter on the next request');
        void backends!.stop();
      }
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => void tuning.update()),
    backends.onDidCrash(({ runs: failed }) => {
      runs.refresh();
      if (!flow.running && failed.length)
        void vscode.window
          .showErrorMessage(`The VTrans backend stopped unexpectedly; ${failed.length} run(s) marked failed, checkpoints kept.`, 'Show Log')
          .then((c) => c && log.show());
    }),
  );
  // The Python extension's interpreter is the backend's unless vtrans.pythonPath says otherwise: follow it.
  void onInterpreterChange(() => {
    if (!backends?.state() || readSettings().pythonPath) return;
    if (flow.running) return void log.info('the Python interpreter changed: the backend switches to it after this compression');
    log.info('the Python interpreter changed: the backend restarts with it on the next request');
    void backends.stop();
  }, log).then((d) => d && context.subscriptions.push(d));
  void vscode.commands.executeCommand('setContext', 'vtrans.compressing', false);
  // With a finished run: its budget in the status bar, from report.json (no backend is started for it).
  void tuning.update();

  const predicted = new vscode.EventEmitter<BudgetPrediction>();
  context.subscriptions.push(
    predicted,
    tuning.onDidPredict((p) => predicted.fire(p)),
  );
  return {
    backend: () => backends?.state(),
    activeRun: () => flow.running,
    statusBar: () => status.snapshot,
    lastPrediction: () => tuning.lastPrediction(),
    whenPredictionsSettled: () => tuning.settled(),
    onDidPredict: predicted.event,
    onDidFinishCompression: flow.onDidFinish,
    runs: () => runs.runs(),
    modelFolders: () => models.list(),
    panels: () => panels.openPanels(),
  };
}

export async function deactivate(): Promise<void> {
  await backends?.stop();
  backends = undefined;
}
