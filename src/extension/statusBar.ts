/**
 * One status bar item: during a compression the phase, progress and ETA (click: the log); otherwise the
 * current budget with the predicted size and metric from the last run's masks (click: the tradeoff view).
 */
import * as vscode from 'vscode';
import { formatCount } from '../core/inspect';
import { formatEta, PHASE_LABEL } from '../core/progressText';
import type { ProgressParams } from '../core/protocol';
import type { BudgetPrediction } from './api';
import type { MetricName } from '../core/report';
import type { Budget } from './config';
import { BUDGET_KIND_LABEL } from '../core/labels';

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('vtrans.status', vscode.StatusBarAlignment.Left, 50);

  constructor() {
    this.item.name = 'VTrans';
  }

  get snapshot(): { text: string; tooltip: string; visible: boolean } {
    const tip = this.item.tooltip;
    return { text: this.item.text, tooltip: typeof tip === 'string' ? tip : (tip?.value ?? ''), visible: this.visible };
  }

  private visible = false;

  private show(): void {
    this.item.show();
    this.visible = true;
  }

  progress(p: ProgressParams): void {
    const pct = p.total > 0 ? Math.round((100 * p.step) / p.total) : 0;
    const eta = formatEta(p.eta);
    this.item.text = `$(sync~spin) VTrans: ${PHASE_LABEL[p.phase] ?? p.phase} ${pct}%${eta ? ` · ${eta}` : ''}`;
    this.item.tooltip = `Compressing — ${PHASE_LABEL[p.phase] ?? p.phase} ${p.step}/${p.total}${p.sparsity !== undefined ? `, ${(100 * p.sparsity).toFixed(0)}% pruned` : ''}${eta ? `, about ${eta} left in this phase` : ''}. Click for the log; VTrans: Cancel Compression stops it.`;
    this.item.command = 'vtrans.showLog';
    this.item.backgroundColor = undefined;
    this.show();
  }

  budget(budget: Budget, prediction: BudgetPrediction | undefined, metricName: MetricName | undefined, note?: string): void {
    const pct = `${+(100 * budget.keep).toFixed(1)}%`;
    if (!prediction) {
      this.item.text = `$(settings) VTrans ${pct} ${budget.kind}`;
      this.item.tooltip = note ?? `Budget: keep ${pct} of the ${BUDGET_KIND_LABEL[budget.kind]}. Compress a model to see what it gives.`;
    } else {
      const metric =
        prediction.metric === null || !metricName
          ? ''
          : metricName === 'accuracy'
            ? ` · acc ≈ ${(100 * prediction.metric).toFixed(1)}%`
            : ` · ppl ≈ ${prediction.metric.toFixed(1)}`;
      this.item.text = `$(graph-line) VTrans ${pct} ${budget.kind}: ${formatCount(prediction.params)} params · ${formatCount(prediction.flopsPerToken)} FLOPs${metric}`;
      this.item.tooltip = `At ${pct} of the ${BUDGET_KIND_LABEL[budget.kind]} the last run's masks keep ${prediction.params.toLocaleString('en-US')} parameters (${(100 * prediction.achieved).toFixed(1)}% achieved) and ${Math.round(prediction.flopsPerToken).toLocaleString('en-US')} FLOPs per token${metric ? `; the sweep predicts ${metric.slice(3)} without fine-tuning` : ''}. Click for the tradeoff view; VTrans: Export at Current Budget writes this model.`;
    }
    this.item.command = 'vtrans.showTradeoff';
    this.show();
  }

  dispose(): void {
    this.item.dispose();
  }
}
