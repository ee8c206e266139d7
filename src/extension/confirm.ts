/**
 * The confirmation step of "Compress Model": what will happen, before it does — the model, the data and its
 * columns, the method, the budget, the device (the GPU by name; a GPU picker on multi-GPU machines), where the
 * results go, and the time and peak memory a short measured warm-up predicts (a few real training steps in the
 * backend). Method, budget and device changed here apply to this run; saving them as workspace settings is a
 * separate, explicit choice.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import { errorMessage } from '../core/errors';
import { fmtBytes, fmtPct } from '../core/findings';
import { BUDGET_KIND_LABEL, METHOD_LABEL, SHAPE_DETAIL, SHAPE_LABEL } from '../core/labels';
import { formatEta } from '../core/progressText';
import type { EstimateResult } from '../core/protocol';
import { BUDGET_KINDS, METHODS, OUTPUT_SHAPES, type BudgetKind, type Method, type OutputShape } from '../core/contracts';
import type { CancellationToken } from 'vscode-jsonrpc/node';
import type { Budget, Settings } from './config';
import { describeChoice, type DataChoice } from './dataChoice';
import { describeProject, type ModelProject } from './modelProjects';
import { modelName } from '../core/runs';
import { nextChoice } from './quickPick';

/** What one compression will do: the project, the data, and the settings as this run uses them. */
export interface RunPlan {
  project: ModelProject;
  data: DataChoice;
  method: Method;
  budget: Budget;
  /** The output model's layout (docs/model-format.md). */
  shape: OutputShape;
  /** auto, cpu, cuda or cuda:N. */
  device: string;
  settings: Settings;
}

export interface Devices {
  cuda: boolean;
  gpuNames: string[];
  threads?: number;
}

export interface ConfirmHooks {
  /** The warm-up estimate of this plan (tokenizes the data first); `note` reports what it is doing. */
  estimate(plan: RunPlan, token: CancellationToken, note: (text: string) => void): Promise<EstimateResult>;
  devices(): Devices | undefined;
  /** Choose the data again. */
  chooseData(): Promise<DataChoice | undefined>;
  /** Where the run will be written (relative to the workspace). */
  output: string;
}

type Item = vscode.QuickPickItem & { id?: string };

const METHOD_DETAIL: Record<Method, string> = {
  vtrans: 'masks and weights on all the training data, then fine-tuning',
  fast: 'masks and weights on a share of the data, then fine-tuning',
  faster: 'masks only, weights frozen, no fine-tuning',
};

export function describeDevice(device: string, d: Devices | undefined): string {
  const gpu = (i: number) => `GPU ${i}: ${d?.gpuNames[i] ?? 'CUDA device'} (cuda:${i})`;
  const cpu = `CPU${d?.threads ? `, ${d.threads} threads` : ''}`;
  if (device === 'cpu') return cpu;
  if (device.startsWith('cuda:')) return gpu(Number(device.slice(5)));
  if (device === 'cuda') return gpu(0);
  if (!d) return 'auto (the GPU when PyTorch sees one, else the CPU)';
  return d.cuda ? `${gpu(0)}, auto` : `${cpu}, auto: PyTorch sees no GPU`;
}

/** The numeric precision the run will train in on that device. */
function precisionOf(device: string, precision: Settings['precision'], d: Devices | undefined): string {
  if (precision === 'fp32') return 'fp32';
  if (precision === 'bf16') return 'bf16 autocast';
  const gpu = device.startsWith('cuda') || (device === 'auto' && d?.cuda);
  return gpu ? 'bf16 autocast where the GPU supports it' : 'fp32 on the CPU';
}

/** "about 2 min 10 s · peak memory 1.2 GiB (GPU)". */
export function describeEstimate(e: EstimateResult): { label: string; detail: string } {
  const where = e.memory === 'cuda-allocated' ? 'on the GPU' : 'of the backend process';
  const steps = `${e.pruneSteps}${e.finetuneSteps ? ` + ${e.finetuneSteps}` : ''} steps`;
  return {
    label: `about ${formatEta(e.estimatedSeconds) || '0s'} · peak memory ${fmtBytes(e.peakMemoryBytes)} ${where}`,
    detail: `Measured over ${e.steps} real training steps on ${e.deviceName}: ${e.secondsPerStep.toFixed(3)} s a step × ${steps}, evaluations about ${formatEta(e.evalSeconds) || '0s'}, loading ${formatEta(e.loadSeconds) || '0s'}; ONNX export and probes come on top.`,
  };
}

/**
 * Shows the plan; resolves with the plan as confirmed (possibly changed for this run) or undefined when the user
 * cancelled. `title` carries the step count.
 */
export async function confirmPlan(start: RunPlan, hooks: ConfirmHooks, title: string): Promise<RunPlan | undefined> {
  let plan = { ...start };
  const qp = vscode.window.createQuickPick<Item>();
  qp.title = title;
  qp.placeholder = 'Start, or select a line to change it for this run';
  qp.ignoreFocusOut = true;
  qp.matchOnDescription = true;
  let estimate: { state: 'running'; note: string } | { state: 'done'; result: EstimateResult } | { state: 'failed'; error: string } = {
    state: 'running',
    note: 'starting the backend',
  };
  let cancelEstimate: CancellationTokenSource | undefined;
  let disposed = false;
  const s = plan.settings;
  const overridden = () =>
    plan.method !== s.method ||
    plan.budget.keep !== s.budget.keep ||
    plan.budget.kind !== s.budget.kind ||
    plan.shape !== s.shape ||
    plan.device !== s.device;

  const render = () => {
    if (disposed) return;
    const e = estimate;
    const est =
      e.state === 'done'
        ? describeEstimate(e.result)
        : e.state === 'failed'
          ? { label: `no estimate: ${e.error}`, detail: 'Select to try again.' }
          : { label: `measuring a few training steps… (${e.note})`, detail: 'The data is tokenized once and cached: the run reuses it.' };
    const setting = (what: string, differs: boolean) => (differs ? ` — this run only (${what})` : '');
    const items: Item[] = [
      {
        id: 'start',
        label: `$(rocket) Start: ${METHOD_LABEL[plan.method]} to ${+(100 * plan.budget.keep).toFixed(1)}% of the ${BUDGET_KIND_LABEL[plan.budget.kind]}`,
        detail: e.state === 'done' ? `Estimated ${est.label}.` : undefined,
        alwaysShow: true,
      },
      { label: 'What will happen', kind: vscode.QuickPickItemKind.Separator },
      {
        id: 'model',
        label: `$(package) Model: ${modelName(plan.project.dir)}`,
        description: `${describeProject(plan.project)} · ${vscode.workspace.asRelativePath(plan.project.dir)}`,
      },
      {
        id: 'data',
        label: `$(database) Data: ${path.basename(plan.data.train)}`,
        description: `${describeChoice(plan.data)} · task ${plan.data.task === 'lm' ? 'language modelling' : 'classification'}`,
      },
      {
        id: 'method',
        label: `$(symbol-method) Method: ${METHOD_LABEL[plan.method]}`,
        description: `${METHOD_DETAIL[plan.method]}${plan.method !== 'vtrans' ? ` (${fmtPct(s.dataFraction)} of the data)` : ''}${setting(`vtrans.method is ${s.method}`, plan.method !== s.method)}`,
      },
      {
        id: 'budget',
        label: `$(dashboard) Budget: keep ${fmtPct(plan.budget.keep)} of the ${BUDGET_KIND_LABEL[plan.budget.kind]}`,
        description: setting(
          `vtrans.budget is ${fmtPct(s.budget.keep)} ${s.budget.kind}`,
          plan.budget.keep !== s.budget.keep || plan.budget.kind !== s.budget.kind,
        ).replace(/^ — /, ''),
      },
      {
        id: 'shape',
        label: `$(layers) Output shape: ${SHAPE_LABEL[plan.shape]}`,
        description: `${SHAPE_DETAIL[plan.shape]}${setting(`vtrans.shape is ${s.shape}`, plan.shape !== s.shape)}`,
      },
      {
        id: 'device',
        label: `$(chip) Device: ${describeDevice(plan.device, hooks.devices())}`,
        description: `${precisionOf(plan.device, s.precision, hooks.devices())}${setting(`vtrans.device is ${s.device}`, plan.device !== s.device)}`,
      },
      {
        id: 'estimate',
        label: `$(${e.state === 'running' ? 'loading~spin' : e.state === 'done' ? 'clock' : 'warning'}) Estimate: ${est.label}`,
        detail: est.detail,
      },
      {
        id: 'output',
        label: `$(output) Output: ${hooks.output}`,
        description: 'pruned checkpoint (model/), model.onnx, report, log.txt — not tracked by git',
      },
    ];
    if (overridden())
      items.push({
        id: 'save',
        label: '$(save) Save method, budget and device as workspace settings',
        description: '.vscode/settings.json',
      });
    items.push({ id: 'settings', label: '$(gear) All VTrans settings…' });
    const active = qp.activeItems[0]?.id;
    qp.items = items;
    const again = items.find((i) => i.id === active);
    if (again) qp.activeItems = [again];
    qp.busy = e.state === 'running';
  };

  const measure = () => {
    cancelEstimate?.cancel();
    const source = new CancellationTokenSource();
    cancelEstimate = source;
    estimate = { state: 'running', note: 'starting the backend' };
    render();
    hooks
      .estimate(plan, source.token, (note) => {
        if (cancelEstimate === source && estimate.state === 'running') {
          estimate = { state: 'running', note };
          render();
        }
      })
      .then(
        (result) => {
          if (cancelEstimate !== source) return;
          estimate = { state: 'done', result };
          render();
        },
        (err: unknown) => {
          if (cancelEstimate !== source || source.token.isCancellationRequested) return;
          estimate = { state: 'failed', error: errorMessage(err) };
          render();
        },
      );
  };

  qp.show();
  render();
  measure();
  try {
    for (;;) {
      const picked = await nextChoice(qp);
      if (!picked) return undefined;
      switch (picked.id) {
        case 'start':
          return plan;
        case 'estimate':
          measure();
          continue;
        case 'method': {
          const m = await vscode.window.showQuickPick(
            METHODS.map((id) => ({ id, label: METHOD_LABEL[id], description: METHOD_DETAIL[id], picked: id === plan.method })),
            { title: 'Compression method for this run', ignoreFocusOut: true },
          );
          if (m && m.id !== plan.method) {
            plan = { ...plan, method: m.id };
            measure();
          }
          break;
        }
        case 'shape': {
          const picked = await vscode.window.showQuickPick(
            OUTPUT_SHAPES.map((id) => ({ id, label: SHAPE_LABEL[id], detail: SHAPE_DETAIL[id], picked: id === plan.shape })),
            { title: 'Output shape of the compressed model, this run', ignoreFocusOut: true },
          );
          if (picked) plan = { ...plan, shape: picked.id };
          break;
        }
        case 'budget': {
          const value = await vscode.window.showInputBox({
            title: 'Fraction to keep, this run',
            ignoreFocusOut: true,
            value: String(plan.budget.keep),
            prompt: `Fraction of the ${BUDGET_KIND_LABEL[plan.budget.kind]} to keep, in (0, 1]`,
            validateInput: (v) => (Number(v) > 0 && Number(v) <= 1 ? undefined : 'A number in (0, 1], e.g. 0.3'),
          });
          const kind = value
            ? await vscode.window.showQuickPick(
                BUDGET_KINDS.map((id) => ({ id, label: BUDGET_KIND_LABEL[id], picked: id === plan.budget.kind })),
                { title: 'Budget counted in', ignoreFocusOut: true },
              )
            : undefined;
          const next: Budget = { keep: value ? Number(value) : plan.budget.keep, kind: (kind?.id ?? plan.budget.kind) as BudgetKind };
          if (next.keep !== plan.budget.keep || next.kind !== plan.budget.kind) {
            plan = { ...plan, budget: next };
            measure();
          }
          break;
        }
        case 'device': {
          const d = hooks.devices();
          const options = [
            { id: 'auto', label: 'auto', description: describeDevice('auto', d) },
            { id: 'cpu', label: 'CPU', description: d?.threads ? `${d.threads} threads` : '' },
            ...(d?.gpuNames ?? []).map((name, i) => ({ id: `cuda:${i}`, label: `GPU ${i}`, description: `${name} (cuda:${i})` })),
          ];
          const pickedDevice = await vscode.window.showQuickPick(
            options.map((o) => ({ ...o, picked: o.id === plan.device })),
            {
              title: 'Device for this run',
              ignoreFocusOut: true,
              placeHolder:
                d && d.gpuNames.length > 1
                  ? `${d.gpuNames.length} GPUs; several at once: the vtrans.gpus setting (data-parallel)`
                  : undefined,
            },
          );
          if (pickedDevice && pickedDevice.id !== plan.device) {
            plan = { ...plan, device: pickedDevice.id };
            measure();
          }
          break;
        }
        case 'data': {
          const data = await hooks.chooseData();
          if (data) {
            plan = { ...plan, data };
            measure();
          }
          break;
        }
        case 'save': {
          const cfg = vscode.workspace.getConfiguration('vtrans', vscode.Uri.file(plan.project.dir));
          const target = vscode.ConfigurationTarget.Workspace;
          await cfg.update('method', plan.method, target);
          await cfg.update('budget.keep', plan.budget.keep, target);
          await cfg.update('budget.kind', plan.budget.kind, target);
          await cfg.update('shape', plan.shape, target);
          if (plan.device === 'auto' || plan.device === 'cpu' || plan.device === 'cuda') await cfg.update('device', plan.device, target);
          plan = {
            ...plan,
            settings: {
              ...plan.settings,
              method: plan.method,
              budget: plan.budget,
              shape: plan.shape,
              device: plan.device as Settings['device'],
            },
          };
          void vscode.window.showInformationMessage(
            `Saved vtrans.method, vtrans.budget.keep, vtrans.budget.kind, vtrans.shape${plan.device.startsWith('cuda:') ? '' : ' and vtrans.device'} to the workspace settings.`,
          );
          break;
        }
        case 'settings':
          await vscode.commands.executeCommand('workbench.action.openSettings', 'vtrans');
          return undefined;
        default:
          break;
      }
      qp.show();
      render();
    }
  } finally {
    disposed = true;
    cancelEstimate?.cancel();
    qp.dispose();
  }
}
