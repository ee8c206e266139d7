/**
 * The one message protocol between the extension host and the webview panels (tradeoff, heatmaps, report).
 * Browser-safe and editor-free: src/extension/panels.ts and webview/ both import it; nothing here imports
 * `vscode` or Node.
 *
 * Handshake: the webview posts `ready` (with the state it restored through `getState`) once its script has
 * run; the extension answers with `show` (or `empty` / `error` / `loading`). After that the extension pushes
 * `budget` whenever `vtrans.budget.*` changes and `show` again when the run's report.json is rewritten.
 * A hidden webview is torn down (no `retainContextWhenHidden`); when it comes back it posts `ready` again.
 */
import { BUDGET_KINDS, OUTPUT_SHAPES, type OutputShape } from './contracts';
import type { MetricsRecord, ProgressParams, RunStatus } from './contracts';
import type { BudgetKind, MetricName, RunReport } from './report';

/**
 * The panels: three views of one finished run's report.json, the live training panel of one run (its
 * metrics.jsonl, while it trains and after), and the comparison of several runs.
 */
export type PanelKind = 'tradeoff' | 'heatmaps' | 'report' | 'training' | 'compare';
export const PANEL_KINDS: readonly PanelKind[] = ['tradeoff', 'heatmaps', 'report', 'training', 'compare'];
/** The panels that draw one run's report.json (report.html stacks these three). */
export type ReportPanelKind = 'tradeoff' | 'heatmaps' | 'report';
export const REPORT_PANEL_KINDS: readonly ReportPanelKind[] = ['tradeoff', 'heatmaps', 'report'];

/** The VS Code viewType of each panel (also the `onWebviewPanel:` activation events in package.json). */
export const PANEL_VIEW_TYPES: Record<PanelKind, string> = {
  tradeoff: 'vtrans.tradeoff',
  heatmaps: 'vtrans.heatmaps',
  report: 'vtrans.report',
  training: 'vtrans.training',
  compare: 'vtrans.compare',
};

/** A run's training curves as the live panel draws them (records appended as metrics.jsonl grows). */
export interface TrainingState {
  runDir: string;
  /** "spam-classifier · Fast-VTrans 30% params". */
  title: string;
  status: RunStatus;
  /** The run's target: what the expected size ramps down to. */
  target: { kind: BudgetKind; keep: number } | null;
  metricName: MetricName | null;
  /** The latest progress notification of a running run (phase, step of total, ETA). */
  progress: ProgressParams | null;
}

/** One run of a comparison. */
export interface CompareRun {
  runDir: string;
  title: string;
  note: string;
  /** The training data file's name, when known. */
  data?: string;
  report: RunReport;
}

/** The size and metric the last run's masks give at a budget (re-thresholded, no retraining). */
export interface PredictedPoint {
  kind: BudgetKind;
  keep: number;
  params: number;
  encoderParams: number;
  flopsPerToken: number;
  /** The sweep's metric interpolated at this size by the backend, or null when unknown. */
  metric: number | null;
  /** 'rethreshold': the backend re-thresholded the masks at exactly this budget; 'table': report.json's
   * prediction table at the nearest hundredth (no backend: a restricted workspace, report.html). */
  basis: 'rethreshold' | 'table';
}

/** The `vtrans.budget.*` settings as the views show them. */
export interface BudgetState {
  kind: BudgetKind;
  /** Fraction of `kind` to keep, in (0, 1]. */
  keep: number;
  predicted?: PredictedPoint;
}

/** The x axis of the tradeoff chart. */
export type TradeoffAxis = 'params' | 'encoderParams' | 'flopsPerToken' | 'latency1' | 'latency32';
/** What colours the heatmap cells. */
export type HeatMetric = 'logAlpha' | 'special' | 'current' | 'previous' | 'keywords' | 'entropy';
export const HEAT_METRICS: readonly HeatMetric[] = ['logAlpha', 'special', 'current', 'previous', 'keywords', 'entropy'];

/** What the webview keeps through `setState` (restored after a reload; the serializer reads `runDir`). */
export interface WebviewState {
  panel: PanelKind;
  runDir?: string;
  axis?: TradeoffAxis;
  metric?: HeatMetric;
  /** Report panel: layers whose per-head table is open. */
  openLayers?: number[];
  /** Heatmaps: the focused cell, as [layer, head]. */
  focus?: [number, number];
  /** Compare: the runs compared. */
  runDirs?: string[];
}

/** A command the empty state can offer (run through the extension). */
export interface StateAction {
  label: string;
  /** A VS Code command id, e.g. `vtrans.compress` or `vtrans.openRun`. */
  command: string;
}

// ---------------------------------------------------------------- extension → webview

export type ToWebview =
  | { type: 'show'; panel: ReportPanelKind; runDir: string; report: RunReport; budget: BudgetState | null }
  | { type: 'budget'; budget: BudgetState }
  | { type: 'loading'; runDir: string }
  /** No run to show, e.g. "No run yet: run VTrans: Compress Model". */
  | { type: 'empty'; message: string; actions?: StateAction[] }
  /** The report could not be read or is not one the views understand. */
  | { type: 'error'; message: string; detail?: string; runDir?: string; actions?: StateAction[] }
  /** Result of a `saveFile`/`exportReport`/`exportAtBudget` request, shown as a transient note. */
  | { type: 'notice'; level: 'info' | 'error'; message: string }
  /** Training panel: metrics.jsonl records from index `from` on (0 replaces what the page has), and the run's state. */
  | { type: 'metrics'; state: TrainingState; from: number; records: MetricsRecord[] }
  /** Compare panel: the runs, in the order chosen. */
  | { type: 'compare'; runs: CompareRun[] };

// ---------------------------------------------------------------- webview → extension

export type SaveFormat = 'png' | 'svg' | 'csv' | 'md' | 'html';

export type FromWebview =
  | { type: 'ready'; panel: PanelKind; state: WebviewState | null }
  /** Ask for `show` again (e.g. after an error, "Reload"). */
  | { type: 'requestState' }
  /** Write the pruned model at this budget (re-threshold the run's masks) as a new run, in an output shape
   * (unset: the run's own). */
  | { type: 'exportAtBudget'; kind: BudgetKind; keep: number; shape?: OutputShape }
  /** Save a file the webview produced; `content` is UTF-8 text, or base64 when `encoding` says so (PNG). */
  | { type: 'saveFile'; format: SaveFormat; suggestedName: string; content: string; encoding: 'utf8' | 'base64' }
  /** Render report.md / report.html from the run (extension side) and let the user save it. */
  | { type: 'exportReport'; format: 'md' | 'html' }
  /** Pick another run. */
  | { type: 'openRun' }
  /** Run one of the actions an `empty`/`error` message offered. */
  | { type: 'runCommand'; command: string }
  /** State changed (axis, metric...), so the serializer has the latest. */
  | { type: 'state'; state: WebviewState }
  /** Training panel: the records from index `since` on (the host reads metrics.jsonl and answers `metrics`). */
  | { type: 'requestMetrics'; since: number }
  /** Open a run's panel of this kind (the compare table's links). */
  | { type: 'openPanel'; panel: ReportPanelKind | 'training'; runDir: string };

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isStr = (x: unknown): x is string => typeof x === 'string';
const FORMATS: readonly string[] = ['png', 'svg', 'csv', 'md', 'html'];

function isState(x: unknown): x is WebviewState {
  return (
    isObj(x) &&
    PANEL_KINDS.includes(x.panel as PanelKind) &&
    (x.runDir === undefined || isStr(x.runDir)) &&
    (x.runDirs === undefined || (Array.isArray(x.runDirs) && x.runDirs.every(isStr)))
  );
}

/** Checks a message from the webview before the extension acts on it (webview content is not trusted). */
export function isFromWebview(x: unknown): x is FromWebview {
  if (!isObj(x) || !isStr(x.type)) return false;
  switch (x.type) {
    case 'ready':
      return PANEL_KINDS.includes(x.panel as PanelKind) && (x.state === null || isState(x.state));
    case 'requestState':
    case 'openRun':
      return true;
    case 'exportAtBudget':
      return (
        (BUDGET_KINDS as readonly string[]).includes(x.kind as string) &&
        typeof x.keep === 'number' &&
        x.keep > 0 &&
        x.keep <= 1 &&
        (x.shape === undefined || (OUTPUT_SHAPES as readonly string[]).includes(x.shape as string))
      );
    case 'saveFile':
      return (
        FORMATS.includes(x.format as string) &&
        isStr(x.suggestedName) &&
        isStr(x.content) &&
        (x.encoding === 'utf8' || x.encoding === 'base64')
      );
    case 'exportReport':
      return x.format === 'md' || x.format === 'html';
    case 'runCommand':
      return isStr(x.command) && x.command.startsWith('vtrans.');
    case 'state':
      return isState(x.state);
    case 'requestMetrics':
      return typeof x.since === 'number' && Number.isInteger(x.since) && x.since >= 0;
    case 'openPanel':
      return (REPORT_PANEL_KINDS.includes(x.panel as ReportPanelKind) || x.panel === 'training') && isStr(x.runDir);
    default:
      return false;
  }
}

/** Checks a message from the extension (the webview ignores anything else, e.g. messages from other frames). */
export function isToWebview(x: unknown): x is ToWebview {
  if (!isObj(x) || !isStr(x.type)) return false;
  switch (x.type) {
    case 'show':
      return REPORT_PANEL_KINDS.includes(x.panel as ReportPanelKind) && isStr(x.runDir) && isObj(x.report);
    case 'budget':
      return isObj(x.budget) && typeof x.budget.keep === 'number' && (BUDGET_KINDS as readonly string[]).includes(x.budget.kind as string);
    case 'loading':
      return isStr(x.runDir);
    case 'empty':
      return isStr(x.message);
    case 'error':
      return isStr(x.message);
    case 'notice':
      return isStr(x.message) && (x.level === 'info' || x.level === 'error');
    case 'metrics':
      return isObj(x.state) && isStr(x.state.runDir) && typeof x.from === 'number' && Array.isArray(x.records);
    case 'compare':
      return Array.isArray(x.runs) && x.runs.every((r) => isObj(r) && isStr(r.runDir) && isObj(r.report));
    default:
      return false;
  }
}

/**
 * What the views need from a parsed report.json; returns a sentence naming the first problem, or null when
 * the report can be shown. Cheap structural checks only (the backend writes the file; this catches a
 * truncated or foreign file with a clear message instead of a blank panel).
 */
export function reportProblem(x: unknown): string | null {
  if (!isObj(x)) return 'it is not a JSON object';
  if (x.version !== 1)
    return `its version is ${JSON.stringify(x.version)}; this extension reads version 1 (update the extension or re-run the compression)`;
  for (const key of ['runId', 'status', 'metricName'] as const) if (!isStr(x[key])) return `"${key}" is missing`;
  if (!isObj(x.model)) return '"model" is missing';
  if (!isObj(x.teacher)) return '"teacher" is missing';
  if (!isObj(x.budget)) return '"budget" is missing';
  if (!Array.isArray(x.layers)) return '"layers" is not a list';
  if (!Array.isArray(x.tradeoff)) return '"tradeoff" is not a list';
  for (const [i, l] of (x.layers as unknown[]).entries()) {
    if (!isObj(l) || !Array.isArray(l.heads) || !isObj(l.ffn)) return `layers[${i}] lacks "heads" or "ffn"`;
  }
  return null;
}

/** Suggested file names for exports from a run. */
export function exportFileName(runId: string, what: string, format: SaveFormat): string {
  const safe = runId.replace(/[^A-Za-z0-9._-]+/g, '-');
  return `${safe}-${what}.${format}`;
}
