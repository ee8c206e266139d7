/**
 * Inline budget tuning: when `vtrans.budget.*` changes, the newest finished run's masks are re-thresholded at
 * the new budget by the backend (`predict`: exact sizes from the log α ranking, the metric interpolated on the
 * run's sweep; no training, no evaluation), and the status bar and the open tradeoff view follow. In an
 * untrusted workspace (no backend) the sizes and metric are interpolated from the sweep points instead.
 */
import * as vscode from 'vscode';
import { Requests, type PredictResult } from '../core/protocol';
import type { RunReport, TradeoffPoint } from '../core/report';
import { latestFinishedRun } from '../core/runs';
import type { BackendManager } from './backendManager';
import { readBudget, type Budget } from './config';
import type { ReportPanels } from './panels';
import type { StatusBar } from './statusBar';

export function latestRun(): { dir: string; report: RunReport } | undefined {
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    const run = latestFinishedRun(folder.uri.fsPath);
    if (run?.report) return { dir: run.dir, report: run.report };
  }
  return undefined;
}

/** Sizes and metric between the sweep points around `keep` (same budget kind only). */
export function interpolateSweep(report: RunReport, budget: Budget): PredictResult | undefined {
  const pts = report.tradeoff.filter((p) => p.source === 'sweep' && p.kind === budget.kind).sort((a, b) => a.keep - b.keep);
  if (!pts.length || budget.kind !== report.budget.kind) return undefined;
  let lo: TradeoffPoint = pts[0];
  let hi: TradeoffPoint = pts[pts.length - 1];
  for (const p of pts) {
    if (p.keep <= budget.keep) lo = p;
    if (p.keep >= budget.keep) {
      hi = p;
      break;
    }
  }
  const t = hi.keep === lo.keep ? 0 : (budget.keep - lo.keep) / (hi.keep - lo.keep);
  const mix = (a: number, b: number) => a + (b - a) * t;
  return {
    keep: budget.keep,
    kind: budget.kind,
    achieved: budget.keep,
    params: Math.round(mix(lo.params, hi.params)),
    encoderParams: Math.round(mix(lo.encoderParams, hi.encoderParams)),
    flopsPerToken: mix(lo.flopsPerToken, hi.flopsPerToken),
    metric: lo.metric === null || hi.metric === null ? null : mix(lo.metric, hi.metric),
    metricSource: 'sweep-interpolation',
    units: hi.units ?? lo.units!,
    seconds: 0,
  };
}

export class BudgetTuning implements vscode.Disposable {
  private last: PredictResult | undefined;
  private pending: Promise<void> = Promise.resolve();
  private seq = 0;
  private readonly emitter = new vscode.EventEmitter<PredictResult>();
  readonly onDidPredict = this.emitter.event;

  constructor(
    private readonly backends: BackendManager,
    private readonly panels: ReportPanels,
    private readonly status: StatusBar,
    private readonly log: vscode.LogOutputChannel,
    private readonly busy: () => boolean,
  ) {}

  lastPrediction(): PredictResult | undefined {
    return this.last;
  }

  settled(): Promise<void> {
    return this.pending;
  }

  /** Re-predicts for the current settings; rapid changes coalesce to the newest. */
  update(): Promise<void> {
    const seq = ++this.seq;
    this.pending = this.pending
      .then(() => (seq === this.seq ? this.run() : undefined))
      .catch((e: Error) => this.log.warn(`budget prediction: ${e.message}`));
    return this.pending;
  }

  private async run(): Promise<void> {
    const budget = readBudget();
    const run = latestRun();
    if (!run) {
      this.panels.setBudget(budget);
      if (!this.busy()) this.status.budget(budget, undefined, undefined);
      return;
    }
    const t0 = Date.now();
    const prediction = await this.predict(run.dir, run.report, budget);
    this.log.info(
      `budget ${budget.keep} ${budget.kind}: ${prediction ? `${prediction.params} params, metric ${prediction.metric}` : 'no prediction'} (${Date.now() - t0} ms)`,
    );
    this.last = prediction;
    this.panels.setBudget({
      ...budget,
      predicted: prediction && {
        kind: budget.kind,
        keep: budget.keep,
        params: prediction.params,
        encoderParams: prediction.encoderParams,
        flopsPerToken: prediction.flopsPerToken,
        metric: prediction.metric,
        basis: prediction.seconds > 0 ? 'rethreshold' : 'interpolated',
      },
    });
    if (!this.busy()) this.status.budget(budget, prediction, run.report.metricName);
    if (prediction) this.emitter.fire(prediction);
  }

  async predict(runDir: string, report: RunReport, budget: Budget): Promise<PredictResult | undefined> {
    if (vscode.workspace.isTrusted) {
      const backend = await this.backends.get();
      if (backend) return backend.request(Requests.predict, { runDir, keep: budget.keep, budget: budget.kind });
    }
    return interpolateSweep(report, budget);
  }

  dispose(): void {
    this.emitter.dispose();
  }
}
