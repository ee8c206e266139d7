/**
 * One status bar item, shown only once there is something to show (a run exists, or one is being made): during
 * a compression the phase, progress and ETA (click: the live training panel); otherwise the budget setting with
 * the predicted size and metric from the last run's masks (click: the tradeoff view).
 */
import * as vscode from 'vscode';
import { fmtCount, fmtInt, fmtPct } from '../core/findings';
import { formatEta, PHASE_LABEL } from '../core/progressText';
import type { ProgressParams } from '../core/protocol';
import type { BudgetPrediction } from './api';
import type { MetricName } from '../core/report';
import type { Budget } from './config';
import { BUDGET_KIND_LABEL, BUDGET_KIND_SHORT } from '../core/labels';

const cap = (x: string) => x.charAt(0).toUpperCase() + x.slice(1);

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
    const phase = PHASE_LABEL[p.phase] ?? p.phase;
    this.item.text = `$(sync~spin) ${cap(phase)} ${pct}%${eta ? ` · ${eta}` : ''}`;
    this.item.tooltip = `VTrans is compressing — ${phase} ${p.step}/${p.total}${p.sparsity !== undefined ? `, ${(100 * p.sparsity).toFixed(0)}% pruned` : ''}${eta ? `, about ${eta} left in this phase` : ''}. Click for the live training panel; VTrans: Cancel Compression stops it.`;
    this.item.accessibilityInformation = { label: `VTrans: ${phase} ${pct}%` };
    this.item.command = 'vtrans.showTraining';
    this.item.backgroundColor = undefined;
    this.show();
  }

  /**
   * The budget setting in a few characters ("30% params · 570k · 97.1%": the setting, the size the last run's
   * masks keep there in the budget's own unit, the predicted metric); the sentence is in the tooltip.
   */
  budget(budget: Budget, prediction: BudgetPrediction | undefined, metricName: MetricName | undefined, note?: string): void {
    const pct = `${+(100 * budget.keep).toFixed(1)}%`;
    const kind = BUDGET_KIND_SHORT[budget.kind];
    if (!prediction) {
      this.item.text = `$(settings) ${pct} ${kind}`;
      this.item.tooltip =
        note ?? `VTrans budget setting: keep ${pct} of the ${BUDGET_KIND_LABEL[budget.kind]}. Compress a model to see what it gives.`;
      this.item.accessibilityInformation = { label: `VTrans budget ${pct} of the ${BUDGET_KIND_LABEL[budget.kind]}` };
    } else {
      const size =
        budget.kind === 'params' ? prediction.params : budget.kind === 'flops' ? prediction.flopsPerToken : prediction.encoderParams;
      const metric =
        prediction.metric === null || !metricName
          ? ''
          : metricName === 'accuracy'
            ? fmtPct(prediction.metric)
            : `ppl ${prediction.metric.toFixed(1)}`;
      this.item.text = `$(graph-line) ${pct} ${kind} · ${fmtCount(size)}${metric ? ` · ${metric}` : ''}`;
      const said = metric
        ? `; the sweep predicts ${metricName === 'accuracy' ? `an accuracy of ${metric}` : `a perplexity of ${prediction.metric!.toFixed(2)}`} without fine-tuning`
        : '';
      this.item.tooltip = `VTrans budget setting: keep ${pct} of the ${BUDGET_KIND_LABEL[budget.kind]}. There the last run's masks keep ${fmtInt(prediction.params)} parameters (${fmtCount(prediction.params)}, ${fmtPct(prediction.achieved)} achieved) and ${fmtInt(prediction.flopsPerToken)} FLOPs per token (${fmtCount(prediction.flopsPerToken)})${said}. Click for the tradeoff view; VTrans: Export at Current Budget writes this model.`;
      this.item.accessibilityInformation = {
        label: `VTrans budget ${pct} of the ${BUDGET_KIND_LABEL[budget.kind]}: ${fmtCount(size)}${metric ? `, ${metric}` : ''}`,
      };
    }
    this.item.command = 'vtrans.showTradeoff';
    this.show();
  }

  hide(): void {
    this.item.hide();
    this.visible = false;
  }

  dispose(): void {
    this.item.dispose();
  }
}
