/**
 * Inline budget tuning: when `vtrans.budget.*` changes, the newest finished run's masks are re-thresholded at
 * the new budget by the backend (started for it: the user asked) (`predict`: exact sizes from the log α ranking, the metric interpolated on the
 * run's sweep; no training, no evaluation), and the status bar and the open tradeoff view follow. In an
 * untrusted workspace (no backend) the same backend function's answers come from report.json's prediction
 * table instead (the run's budget kind, at the nearest hundredth).
 */
import * as vscode from 'vscode';
import { Requests } from '../core/protocol';
import { tabulatedPrediction, type RunReport } from '../core/report';
import { latestFinishedRun } from '../core/runs';
import type { BackendManager } from './backendManager';
import { readBudget, type Budget } from './config';
import type { ReportPanels } from './panels';
import type { StatusBar } from './statusBar';
import type { BudgetPrediction } from './api';

export function latestRun(): { dir: string; report: RunReport } | undefined {
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    const run = latestFinishedRun(folder.uri.fsPath);
    if (run?.report) return { dir: run.dir, report: run.report };
  }
  return undefined;
}

export class BudgetTuning implements vscode.Disposable {
  private last: BudgetPrediction | undefined;
  private pending: Promise<void> = Promise.resolve();
  private seq = 0;
  private readonly emitter = new vscode.EventEmitter<BudgetPrediction>();
  readonly onDidPredict = this.emitter.event;

  constructor(
    private readonly backends: BackendManager,
    private readonly panels: ReportPanels,
    private readonly status: StatusBar,
    private readonly log: vscode.LogOutputChannel,
    private readonly busy: () => boolean,
  ) {}

  lastPrediction(): BudgetPrediction | undefined {
    return this.last;
  }

  settled(): Promise<void> {
    return this.pending;
  }

  /**
   * Re-predicts for the current settings; rapid changes coalesce to the newest. `asked`: the user changed the
   * budget (the backend may start for an exact answer); otherwise (activation, a finished run) the backend is
   * used only when it already runs, and report.json's prediction table answers meanwhile.
   */
  update(asked = false): Promise<void> {
    const seq = ++this.seq;
    this.pending = this.pending
      .then(() => (seq === this.seq ? this.run(asked) : undefined))
      .catch((e: Error) => this.log.warn(`budget prediction: ${e.message}`));
    return this.pending;
  }

  private async run(asked: boolean): Promise<void> {
    const budget = readBudget();
    const run = latestRun();
    if (!run) {
      // Nothing to predict from: no status item (a workspace without runs stays quiet).
      this.panels.setBudget(budget);
      if (!this.busy()) this.status.hide();
      return;
    }
    const t0 = Date.now();
    const prediction = await this.predict(run.dir, run.report, budget, asked);
    this.log.info(
      `budget ${budget.keep} ${budget.kind}: ${prediction ? `${prediction.params} params, metric ${prediction.metric}` : 'no prediction'} (${Date.now() - t0} ms)`,
    );
    this.last = prediction;
    this.panels.setBudget({ ...budget, predicted: prediction });
    if (!this.busy()) this.status.budget(budget, prediction, run.report.metricName);
    if (prediction) this.emitter.fire(prediction);
  }

  /**
   * The backend's prediction at a budget; without a backend (restricted mode, or none started yet and `start`
   * false), its table in report.json.
   */
  async predict(runDir: string, report: RunReport, budget: Budget, start = true): Promise<BudgetPrediction | undefined> {
    if (vscode.workspace.isTrusted) {
      const backend = start ? await this.backends.get() : this.backends.running();
      if (backend) {
        const p = await backend.request(Requests.predict, { runDir, keep: budget.keep, budget: budget.kind });
        const { kind, keep, params, encoderParams, flopsPerToken, metric, achieved, seconds } = p;
        return { kind, keep, params, encoderParams, flopsPerToken, metric, achieved, seconds, basis: 'rethreshold' };
      }
    }
    const row = tabulatedPrediction(report, budget);
    if (!row) return undefined;
    const { params, encoderParams, flopsPerToken, metric, achieved } = row;
    return { kind: budget.kind, keep: budget.keep, params, encoderParams, flopsPerToken, metric, achieved, seconds: 0, basis: 'table' };
  }

  dispose(): void {
    this.emitter.dispose();
  }
}
