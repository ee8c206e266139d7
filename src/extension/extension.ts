/**
 * activate(): wires the editor to src/core — the backend lifecycle, the Runs view, the report panels, inline
 * budget tuning and the commands. Everything created here is disposed with the extension.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { exportAtBudget } from '../core/compress';
import { OUTPUT_SHAPES, type OutputShape } from '../core/contracts';
import { errorMessage, isUserError } from '../core/errors';
import { SHAPE_DETAIL, SHAPE_LABEL } from '../core/labels';
import type { RunReport } from '../core/report';
import type { PredictedPoint } from '../core/webviewProtocol';
import { deleteRun, readReport, readRunInfo, runsDir, workspaceOfRun } from '../core/runs';
import type { BudgetPrediction, VTransApi } from './api';
import { BackendManager } from './backendManager';
import { BudgetTuning, latestRun } from './budgetTuning';
import { CompressFlow } from './compressFlow';
import { affectsBackend, affectsBudget, readBudget, readSettings } from './config';
import { onInterpreterChange } from './interpreter';
import { ReportPanels, type PanelKind } from './panels';
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
  return latestRun()?.dir;
}

async function loadReport(runDir: string): Promise<RunReport> {
  const file = path.join(runDir, 'report.json');
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist yet: the run has not finished.`);
  const report = readReport(runDir);
  if (!report) throw new Error(`${file} is not valid JSON.`);
  return report;
}

export function activate(context: vscode.ExtensionContext): VTransApi {
  const log = vscode.window.createOutputChannel('VTrans', { log: true });
  backends = new BackendManager(log);
  const status = new StatusBar();
  const runs = new RunsView();
  const panels: ReportPanels = new ReportPanels(
    context.extensionUri,
    {
      loadReport,
      currentBudget: () => readBudget(),
      latestRunDir: () => latestRun()?.dir,
      predictAtBudget: async (runDir, budget): Promise<PredictedPoint | undefined> => {
        const report = readReport(runDir);
        return report ? tuning.predict(runDir, report, budget) : undefined;
      },
      exportAtBudget: (runDir, budget) => exportRun(runDir, budget.keep, budget.kind, budget.shape),
      openRun: () => vscode.commands.executeCommand('vtrans.openRun'),
    },
    { commands: { compress: 'vtrans.compress', openRun: 'vtrans.openRun' } },
  );
  const flow = new CompressFlow(backends, status, log, (runDir) => {
    runs.refresh();
    if (runDir) {
      void panels.refresh(runDir);
      void tuning.update();
    }
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
          location: vscode.ProgressLocation.Notification,
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

  const show = (kind: PanelKind) => (arg?: unknown) => panels.show(kind, runDirOf(arg));
  const register = (id: string, fn: (...args: never[]) => unknown) => context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  register('vtrans.compress', (arg?: never) => flow.compress(arg));
  register('vtrans.cancel', () => flow.cancel());
  register('vtrans.showTradeoff', show('tradeoff'));
  register('vtrans.showHeatmaps', show('heatmaps'));
  register('vtrans.showReport', show('report'));
  register('vtrans.runs.openTradeoff', show('tradeoff'));
  register('vtrans.runs.openHeatmaps', show('heatmaps'));
  register('vtrans.runs.openReport', show('report'));
  register('vtrans.openRun', async () => {
    const items = runs.runs().map((r) => ({
      label: path.basename(r.dir),
      description: [r.info.status, r.info.method].filter(Boolean).join(' · '),
      detail: r.info.modelDir,
      dir: r.dir,
    }));
    if (!items.length) return void vscode.window.showInformationMessage('No runs yet in this workspace: run VTrans: Compress Model.');
    const pick = await vscode.window.showQuickPick(items, { title: 'VTrans: open run' });
    if (pick) await panels.show(readReport(pick.dir) ? 'report' : 'tradeoff', pick.dir);
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
  register('vtrans.runs.delete', async (item: RunItem) => {
    if (item.run.info.status === 'running' && flow.running?.runDir === item.run.dir)
      return void vscode.window.showWarningMessage('This run is compressing; cancel it first.');
    const ok = await vscode.window.showWarningMessage(
      `Delete ${path.basename(item.run.dir)} and its model files?`,
      { modal: true },
      'Delete',
    );
    if (ok !== 'Delete') return;
    deleteRun(item.run.dir);
    runs.refresh();
  });

  context.subscriptions.push(
    log,
    backends,
    status,
    runs,
    panels,
    tuning,
    flow,
    vscode.window.registerTreeDataProvider('vtrans.runs', runs),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (affectsBudget(e)) void tuning.update();
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
  };
}

export async function deactivate(): Promise<void> {
  await backends?.stop();
  backends = undefined;
}
