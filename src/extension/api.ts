/**
 * What `activate()` returns (`vscode.extensions.getExtension('vtrans.vtrans').exports`): a small read-mostly
 * view of the extension's state, for other extensions and for the extension-host tests.
 */
import type * as vscode from 'vscode';
import type { CompressOutcome } from '../core/compress';
import type { ProgressParams } from '../core/protocol';
import type { PredictedPoint } from '../core/webviewProtocol';
import type { OutputShape } from '../core/contracts';
import type { BudgetKind, Method } from '../core/report';
import type { RunEntry } from '../core/runs';
import type { Fields } from '../core/data';
import type { Task } from '../core/modelShape';

/** Arguments of `vtrans.compress` that skip the pickers (all paths absolute or workspace-relative). */
export interface CompressArgs {
  modelDir: string;
  data: string;
  evalData?: string;
  testData?: string;
  task?: Task;
  /** Column / field names of the data (default text, label, text_pair). */
  fields?: Fields;
  keep?: number;
  budget?: BudgetKind;
  method?: Method;
  /** The output shape of model/; unset: the vtrans.shape setting. */
  shape?: OutputShape;
  /** Backend settings beyond the VS Code settings (e.g. { minPruneSteps: 20 } for a quick run). */
  extra?: Record<string, unknown>;
  /** Skip the confirmation step. */
  confirm?: boolean;
}

/** A budget prediction: the backend's `predict` answer, or its table in report.json where no backend runs. */
export interface BudgetPrediction extends PredictedPoint {
  /** Achieved fraction of the budget kind. */
  achieved: number;
  /** The backend's time for the answer (0 from the table). */
  seconds: number;
}

export interface BackendState {
  pid: number | undefined;
  python: string;
  running: boolean;
  /** How many times the backend was (re)started in this session. */
  starts: number;
  torch?: string;
  device?: string;
}

export interface VTransApi {
  /** The backend process, when one runs. */
  backend(): BackendState | undefined;
  /** The run being compressed, when one is. */
  activeRun(): { runDir?: string; progress?: ProgressParams } | undefined;
  /** The status bar item's current text and tooltip. */
  statusBar(): { text: string; tooltip: string; visible: boolean };
  /** The last budget prediction (inline tuning) and a promise that settles once pending predictions are done. */
  lastPrediction(): BudgetPrediction | undefined;
  whenPredictionsSettled(): Promise<void>;
  readonly onDidPredict: vscode.Event<BudgetPrediction>;
  readonly onDidFinishCompression: vscode.Event<CompressOutcome | { error: string; cancelled: boolean }>;
  /** Runs of the workspace, newest first. */
  runs(): RunEntry[];
  /** Folders with a supported config.json (the `vtrans.modelFolders` context key of the Explorer menu). */
  modelFolders(): string[];
  /** The open VTrans panels. */
  panels(): { kind: string; runDir?: string; runDirs?: string[]; title: string }[];
}
