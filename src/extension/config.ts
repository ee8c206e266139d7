/** The `vtrans.*` settings, typed (package.json `contributes.configuration` declares them and their defaults). */
import * as vscode from 'vscode';
import type { DistillParams } from '../core/protocol';
import type { BudgetKind, DeviceChoice, Method, OutputShape, Parallel, Precision } from '../core/contracts';

export interface Budget {
  kind: BudgetKind;
  keep: number;
}

export interface Settings {
  budget: Budget;
  method: Method;
  /** The output shape of model/ (docs/model-format.md). */
  shape: OutputShape;
  dataFraction: number;
  device: DeviceChoice;
  precision: Precision;
  gpus: number;
  /** How several GPUs share the training (used when gpus > 1). */
  parallel: Parallel;
  roundTo: number;
  maxLength: number;
  distill: DistillParams;
  pythonPath: string;
  /** Further backend settings (CompressParams), e.g. { minPruneSteps: 300 }. */
  advanced: Record<string, unknown>;
}

/**
 * One setting's value. VS Code fills in package.json's default (which the backend's settings contract
 * generates), so no default is restated here; a key missing from the manifest is a programming error.
 */
function setting<T>(c: vscode.WorkspaceConfiguration, key: string): T {
  const v = c.get<T>(key);
  if (v === undefined) throw new Error(`vtrans.${key} is not declared in package.json`);
  return v;
}

export function readSettings(scope?: vscode.ConfigurationScope): Settings {
  const c = vscode.workspace.getConfiguration('vtrans', scope);
  return {
    budget: readBudget(scope),
    method: setting<Method>(c, 'method'),
    shape: setting<OutputShape>(c, 'shape'),
    dataFraction: setting<number>(c, 'dataFraction'),
    device: setting<DeviceChoice>(c, 'device'),
    precision: setting<Precision>(c, 'precision'),
    gpus: setting<number>(c, 'gpus'),
    parallel: setting<Parallel>(c, 'parallel'),
    roundTo: setting<number>(c, 'roundTo'),
    maxLength: setting<number>(c, 'maxLength'),
    distill: {
      enabled: setting<boolean>(c, 'distillation.enabled'),
      temperature: setting<number>(c, 'distillation.temperature'),
      alpha: setting<number>(c, 'distillation.alpha'),
      hidden: setting<number>(c, 'distillation.hiddenWeight'),
    },
    // Restricted setting: in an untrusted workspace VS Code hands back only the user-level value.
    pythonPath: setting<string>(c, 'pythonPath').trim(),
    advanced: setting<Record<string, unknown>>(c, 'advanced') ?? {},
  };
}

/** The budget settings; a keep outside (0, 1] (hand-edited settings.json) falls back to the declared default. */
export function readBudget(scope?: vscode.ConfigurationScope): Budget {
  const c = vscode.workspace.getConfiguration('vtrans', scope);
  const keep = setting<number>(c, 'budget.keep');
  const fallback = c.inspect<number>('budget.keep')?.defaultValue as number;
  return { kind: setting<BudgetKind>(c, 'budget.kind'), keep: Number.isFinite(keep) && keep > 0 && keep <= 1 ? keep : fallback };
}

export function affectsBudget(e: vscode.ConfigurationChangeEvent): boolean {
  return e.affectsConfiguration('vtrans.budget');
}

export function affectsBackend(e: vscode.ConfigurationChangeEvent): boolean {
  return e.affectsConfiguration('vtrans.pythonPath');
}
