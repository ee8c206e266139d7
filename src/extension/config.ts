/** The `vtrans.*` settings, typed (package.json `contributes.configuration` declares them). */
import * as vscode from 'vscode';
import type { DistillParams } from '../core/protocol';
import type { BudgetKind, Method } from '../core/report';

export interface Budget {
  kind: BudgetKind;
  keep: number;
}

export interface Settings {
  budget: Budget;
  method: Method;
  dataFraction: number;
  device: 'auto' | 'cpu' | 'cuda';
  gpus: number;
  roundTo: number;
  maxLength: number;
  distill: DistillParams;
  pythonPath: string;
  /** Further backend settings (CompressParams), e.g. { minPruneSteps: 300 }. */
  advanced: Record<string, unknown>;
}

export function readSettings(scope?: vscode.ConfigurationScope): Settings {
  const c = vscode.workspace.getConfiguration('vtrans', scope);
  return {
    budget: readBudget(scope),
    method: c.get<Method>('method', 'fast'),
    dataFraction: c.get<number>('dataFraction', 0.03),
    device: c.get<'auto' | 'cpu' | 'cuda'>('device', 'auto'),
    gpus: c.get<number>('gpus', 1),
    roundTo: c.get<number>('roundTo', 1),
    maxLength: c.get<number>('maxLength', 128),
    distill: {
      enabled: c.get<boolean>('distillation.enabled', true),
      temperature: c.get<number>('distillation.temperature', 2),
      alpha: c.get<number>('distillation.alpha', 0.5),
      hidden: c.get<number>('distillation.hiddenWeight', 1),
    },
    // Restricted setting: in an untrusted workspace VS Code hands back only the user-level value.
    pythonPath: c.get<string>('pythonPath', '').trim(),
    advanced: c.get<Record<string, unknown>>('advanced', {}) ?? {},
  };
}

export function readBudget(scope?: vscode.ConfigurationScope): Budget {
  const c = vscode.workspace.getConfiguration('vtrans', scope);
  const keep = c.get<number>('budget.keep', 0.3);
  return { kind: c.get<BudgetKind>('budget.kind', 'params'), keep: Number.isFinite(keep) ? Math.min(1, Math.max(0.01, keep)) : 0.3 };
}

export function affectsBudget(e: vscode.ConfigurationChangeEvent): boolean {
  return e.affectsConfiguration('vtrans.budget');
}

export function affectsBackend(e: vscode.ConfigurationChangeEvent): boolean {
  return e.affectsConfiguration('vtrans.pythonPath');
}

export const BUDGET_LABEL: Record<BudgetKind, string> = { params: 'parameters', 'encoder-params': 'encoder parameters', flops: 'FLOPs' };
export const METHOD_LABEL: Record<Method, string> = { vtrans: 'VTrans', fast: 'Fast-VTrans', faster: 'Faster-VTrans' };
