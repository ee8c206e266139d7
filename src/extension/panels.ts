/**
 * The VS Code side of the three webview panels (size/accuracy tradeoff, attention-probe heatmaps,
 * head-retention report): panel creation, the strict CSP shell (./panels/html.ts), the typed message
 * protocol (src/core/webviewProtocol.ts), file saving, report export, and restore after a reload.
 *
 * Wiring, in activate() (src/extension/extension.ts):
 *
 *   const panels = new ReportPanels(context.extensionUri, {
 *     loadReport: (runDir) => readRunReport(runDir),             // parse <runDir>/report.json (throw with the reason)
 *     latestRunDir: () => runStore.latest()?.dir,                 // the run to show when none is named (optional)
 *     currentBudget: () => ({ kind: cfg.get('budget.kind'), keep: cfg.get('budget.keep') }),
 *     predictAtBudget: (runDir, budget) => rethreshold(runDir, budget),   // optional; else the webview interpolates the sweep
 *     exportAtBudget: (runDir, budget) => exportAtBudget(runDir, budget), // writes the pruned model as a new run
 *     openRun: () => vscode.commands.executeCommand('vtrans.openRun'),
 *   });
 *   panels.register(context);                                     // serializers (restore after reload) + disposal
 *   commands 'vtrans.showTradeoff' / 'vtrans.showHeatmaps' / 'vtrans.showReport' → panels.show(kind, runDir?)
 *   workspace.onDidChangeConfiguration(e => e.affectsConfiguration('vtrans.budget') && panels.setBudget(currentBudget()))
 *   when a run rewrites report.json (watcher / run finished)    → panels.refresh(runDir)
 *
 * package.json already lists `onWebviewPanel:vtrans.tradeoff|heatmaps|report` activation events, so VS Code
 * activates the extension to restore a panel after a reload; `register()` must run during activate().
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { OutputShape } from '../core/contracts';
import type { BudgetKind, RunReport } from '../core/report';
import { renderReportHtml, renderReportMarkdown } from '../core/reportHtml';
import type { MetricsRecord } from '../core/contracts';
import {
  exportFileName,
  isFromWebview,
  PANEL_KINDS,
  PANEL_VIEW_TYPES,
  REPORT_PANEL_KINDS,
  type BudgetState,
  type CompareRun,
  type FromWebview,
  type PanelKind,
  type PredictedPoint,
  type ReportPanelKind,
  type SaveFormat,
  type ToWebview,
  type TrainingState,
  type WebviewState,
} from '../core/webviewProtocol';
import { makeNonce, renderWebviewHtml } from './panels/html';

export type { PanelKind } from '../core/webviewProtocol';

export interface ReportPanelCallbacks {
  /** Reads and parses `<runDir>/report.json`; throws an Error whose message says what is wrong. */
  loadReport(runDir: string): Promise<RunReport>;
  /** The `vtrans.budget.*` settings. */
  currentBudget(): { kind: BudgetKind; keep: number };
  /** The run to show when `show()` names none (e.g. the newest finished run). */
  latestRunDir?(): string | undefined | Promise<string | undefined>;
  /** The run's masks re-thresholded at a budget (size and metric, no retraining); undefined when unknown. */
  predictAtBudget?(runDir: string, budget: { kind: BudgetKind; keep: number }): Promise<PredictedPoint | undefined>;
  /** "Export at this budget": write the pruned model for this run at this budget as a new run. */
  exportAtBudget(runDir: string, budget: { kind: BudgetKind; keep: number; shape?: OutputShape }): void | Thenable<unknown>;
  /** Let the user pick another run (the panels then get `show()` for it). */
  openRun(): void | Thenable<unknown>;
  /** The training panel: the run's metrics.jsonl records and its state (title, status, target, progress). */
  loadMetrics?(runDir: string): Promise<{ state: TrainingState; records: MetricsRecord[] }>;
  /** The compare panel: the runs' reports, titles and notes (throws naming a run that has no report). */
  loadCompare?(runDirs: string[]): Promise<CompareRun[]>;
  /** A short name of the run for panel titles ("spam-classifier · Fast-VTrans 30% params"). */
  runTitle?(runDir: string): string;
}

export interface ReportPanelOptions {
  /** Command ids offered by the empty and error states. */
  commands?: { compress?: string; openRun?: string };
}

const TITLE: Record<PanelKind, string> = {
  tradeoff: 'VTrans Tradeoff',
  heatmaps: 'VTrans Heatmaps',
  report: 'VTrans Report',
  training: 'VTrans Training',
  compare: 'VTrans Compare',
};
const FILTERS: Record<SaveFormat, Record<string, string[]>> = {
  png: { 'PNG image': ['png'] },
  svg: { 'SVG image': ['svg'] },
  csv: { 'CSV table': ['csv'] },
  md: { Markdown: ['md'] },
  html: { 'HTML page': ['html'] },
};
/** Largest file the webview may hand over (a PNG of the chart is well under 1 MB). */
const MAX_SAVE_BYTES = 64 * 1024 * 1024;

interface Entry {
  kind: PanelKind;
  panel: vscode.WebviewPanel;
  runDir: string | undefined;
  /** Compare: the runs it shows. */
  runDirs?: string[];
  ready: boolean;
  /** Bumped by every load, so a slow load cannot overwrite a newer one. */
  seq: number;
  /** Training: records the page has (metrics.jsonl lines sent so far). */
  sent: number;
  disposables: vscode.Disposable[];
}

const same = (a: string | undefined, b: string | undefined) => a !== undefined && b !== undefined && path.resolve(a) === path.resolve(b);

/**
 * The webview panels: one per run and kind (the tradeoff of two runs side by side is two panels), one per set of
 * compared runs. `show(kind, runDir)` reveals that run's panel when it is open.
 */
export class ReportPanels implements vscode.Disposable {
  private readonly entries = new Set<Entry>();
  private budget: BudgetState | null = null;
  private budgetSeq = 0;
  private readonly commands: { compress: string; openRun: string };

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly callbacks: ReportPanelCallbacks,
    options: ReportPanelOptions = {},
  ) {
    this.commands = { compress: options.commands?.compress ?? 'vtrans.compress', openRun: options.commands?.openRun ?? 'vtrans.openRun' };
  }

  /** Registers the serializers that restore open panels after a window reload. Call during activate(). */
  register(context: vscode.ExtensionContext): void {
    for (const kind of PANEL_KINDS) {
      context.subscriptions.push(
        vscode.window.registerWebviewPanelSerializer(PANEL_VIEW_TYPES[kind], {
          deserializeWebviewPanel: async (panel: vscode.WebviewPanel, state: unknown) => {
            const st = state && typeof state === 'object' ? (state as WebviewState) : undefined;
            const runDir = typeof st?.runDir === 'string' ? st.runDir : undefined;
            const runDirs = Array.isArray(st?.runDirs) ? st.runDirs.filter((d): d is string => typeof d === 'string') : undefined;
            this.attach(kind, panel, runDir, runDirs);
          },
        }),
      );
    }
    context.subscriptions.push(this);
  }

  private find(kind: PanelKind, runDir: string | undefined): Entry | undefined {
    const ofKind = [...this.entries].filter((e) => e.kind === kind);
    if (runDir === undefined) return ofKind.find((e) => e.panel.active) ?? ofKind[ofKind.length - 1];
    return ofKind.find((e) => same(e.runDir, runDir)) ?? ofKind.find((e) => e.runDir === undefined);
  }

  /**
   * Opens (or reveals) the panel of this kind for a run; without a run, the open panel of this kind, else one on
   * `latestRunDir()` or the empty state.
   */
  async show(kind: ReportPanelKind | 'training', runDir?: string, column: vscode.ViewColumn = vscode.ViewColumn.Active): Promise<void> {
    let entry = this.find(kind, runDir);
    const dir = runDir ?? entry?.runDir ?? (await this.callbacks.latestRunDir?.());
    if (entry && runDir === undefined && dir !== undefined && entry.runDir === undefined) entry.runDir = dir;
    if (!entry && runDir === undefined && dir !== undefined) entry = this.find(kind, dir);
    if (entry) {
      entry.panel.reveal(column);
    } else {
      const panel = vscode.window.createWebviewPanel(PANEL_VIEW_TYPES[kind], TITLE[kind], column, this.webviewOptions());
      entry = this.attach(kind, panel, dir);
    }
    entry.runDir = dir;
    if (entry.ready) await this.load(entry);
  }

  /** Opens a comparison of these runs (revealed when the same runs are compared already). */
  async compare(runDirs: string[], column: vscode.ViewColumn = vscode.ViewColumn.Active): Promise<void> {
    const key = (dirs: string[] | undefined) => (dirs ?? []).map((d) => path.resolve(d)).join('\n');
    let entry = [...this.entries].find((e) => e.kind === 'compare' && key(e.runDirs) === key(runDirs));
    if (entry) entry.panel.reveal(column);
    else
      entry = this.attach(
        'compare',
        vscode.window.createWebviewPanel(PANEL_VIEW_TYPES.compare, TITLE.compare, column, this.webviewOptions()),
        undefined,
        runDirs,
      );
    if (entry.ready) await this.load(entry);
  }

  /** The budget settings changed: every open panel moves its marker; the prediction follows when computed. */
  setBudget(budget: { kind: BudgetKind; keep: number; predicted?: PredictedPoint }): void {
    this.budget = { ...budget };
    const seq = ++this.budgetSeq;
    for (const e of this.entries) {
      if (!e.ready || !e.runDir || !(REPORT_PANEL_KINDS as readonly string[]).includes(e.kind)) continue;
      this.post(e, { type: 'budget', budget: this.budget });
      if (!budget.predicted) void this.predict(e, seq);
    }
  }

  /** Reloads report.json in the panels that show `runDir` (all panels when omitted); training panels reload their metrics. */
  async refresh(runDir?: string): Promise<void> {
    const shows = (e: Entry) => runDir === undefined || same(e.runDir, runDir) || (e.runDirs ?? []).some((d) => same(d, runDir));
    await Promise.all([...this.entries].filter((e) => e.ready && shows(e)).map((e) => this.load(e)));
  }

  /** metrics.jsonl of a run grew (or its progress moved): its training panels get the new records. */
  async metricsChanged(runDir: string): Promise<void> {
    await Promise.all(
      [...this.entries].filter((e) => e.ready && e.kind === 'training' && same(e.runDir, runDir)).map((e) => this.sendMetrics(e, e.sent)),
    );
  }

  /** The open panels (kind, run, title). */
  openPanels(): { kind: PanelKind; runDir?: string; runDirs?: string[]; title: string }[] {
    return [...this.entries].map((e) => ({ kind: e.kind, runDir: e.runDir, runDirs: e.runDirs, title: e.panel.title }));
  }

  isOpen(kind: PanelKind, runDir?: string): boolean {
    return [...this.entries].some((e) => e.kind === kind && (runDir === undefined || same(e.runDir, runDir)));
  }

  dispose(): void {
    for (const e of [...this.entries]) e.panel.dispose();
    this.entries.clear();
  }

  // ------------------------------------------------------------------ internals

  private webviewOptions(): vscode.WebviewPanelOptions & vscode.WebviewOptions {
    return {
      enableScripts: true,
      enableCommandUris: false,
      localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist'), vscode.Uri.joinPath(this.extensionUri, 'media')],
      enableFindWidget: true,
      // No retainContextWhenHidden: a hidden panel is torn down and, when shown again, posts `ready`; it gets
      // its report back and restores its own view state (getState), in milliseconds. Keeping hidden
      // documents alive would hold a chart and a grid of up to ~1,000 heads per panel in memory for nothing.
      retainContextWhenHidden: false,
    };
  }

  private attach(kind: PanelKind, panel: vscode.WebviewPanel, runDir: string | undefined, runDirs?: string[]): Entry {
    const entry: Entry = { kind, panel, runDir, runDirs, ready: false, seq: 0, sent: 0, disposables: [] };
    this.entries.add(entry);
    const webview = panel.webview;
    webview.options = this.webviewOptions();
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'icon.png');
    webview.html = renderWebviewHtml({
      panel: kind,
      cspSource: webview.cspSource,
      nonce: makeNonce(),
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'media', 'webview.css')).toString(),
      title: TITLE[kind],
    });
    entry.disposables.push(
      webview.onDidReceiveMessage((msg: unknown) => {
        if (!isFromWebview(msg)) return;
        this.onMessage(entry, msg).catch((err: unknown) =>
          this.post(entry, { type: 'notice', level: 'error', message: errorMessage(err) }),
        );
      }),
      panel.onDidDispose(() => {
        this.entries.delete(entry);
        for (const d of entry.disposables) d.dispose();
      }),
    );
    return entry;
  }

  private post(entry: Entry, msg: ToWebview): void {
    void entry.panel.webview.postMessage(msg);
  }

  private currentBudget(): BudgetState {
    return this.budget ?? { ...this.callbacks.currentBudget() };
  }

  private title(entry: Entry, fallback: string): string {
    const name = entry.runDir ? (this.callbacks.runTitle?.(entry.runDir) ?? fallback) : fallback;
    return `${TITLE[entry.kind].replace(/^VTrans /, '')}: ${name}`;
  }

  private async load(entry: Entry): Promise<void> {
    if (entry.kind === 'compare') return this.loadCompare(entry);
    if (entry.kind === 'training') {
      entry.sent = 0;
      return this.sendMetrics(entry, 0);
    }
    const seq = ++entry.seq;
    const runDir = entry.runDir;
    if (!runDir) {
      entry.panel.title = TITLE[entry.kind];
      this.post(entry, {
        type: 'empty',
        message: 'No run yet: run VTrans: Compress Model to compress a model of this workspace, or open an existing run.',
        actions: [
          { label: 'Compress Model', command: this.commands.compress },
          { label: 'Open Run…', command: this.commands.openRun },
        ],
      });
      return;
    }
    this.post(entry, { type: 'loading', runDir });
    let report: RunReport;
    try {
      report = await this.callbacks.loadReport(runDir);
    } catch (err) {
      if (seq !== entry.seq) return;
      this.post(entry, {
        type: 'error',
        message: `report.json could not be read: ${errorMessage(err)}`,
        detail: path.join(runDir, 'report.json'),
        runDir,
        actions: [{ label: 'Compress Model', command: this.commands.compress }],
      });
      return;
    }
    if (seq !== entry.seq) return;
    entry.panel.title = this.title(entry, report.runId);
    const budget = this.currentBudget();
    this.post(entry, { type: 'show', panel: entry.kind as ReportPanelKind, runDir, report, budget });
    if (!budget.predicted) void this.predict(entry, this.budgetSeq);
  }

  private async sendMetrics(entry: Entry, since: number): Promise<void> {
    const runDir = entry.runDir;
    if (!runDir || !this.callbacks.loadMetrics) {
      this.post(entry, {
        type: 'empty',
        message: 'No run to follow: start one with VTrans: Compress Model, or open the training curves of a run from the Runs view.',
        actions: [{ label: 'Compress Model', command: this.commands.compress }],
      });
      return;
    }
    const seq = ++entry.seq;
    try {
      const { state, records } = await this.callbacks.loadMetrics(runDir);
      if (seq !== entry.seq) return;
      const from = Math.min(since, records.length);
      entry.panel.title = `Training: ${state.title}`;
      entry.sent = records.length;
      this.post(entry, { type: 'metrics', state, from, records: records.slice(from) });
    } catch (err) {
      if (seq !== entry.seq) return;
      this.post(entry, {
        type: 'error',
        message: `metrics.jsonl could not be read: ${errorMessage(err)}`,
        detail: path.join(runDir, 'metrics.jsonl'),
        runDir,
      });
    }
  }

  private async loadCompare(entry: Entry): Promise<void> {
    const dirs = entry.runDirs ?? [];
    const seq = ++entry.seq;
    if (dirs.length < 2 || !this.callbacks.loadCompare) {
      this.post(entry, {
        type: 'empty',
        message: 'Select two or more finished runs in the VTrans Runs view (Ctrl/Cmd+click), then Compare.',
      });
      return;
    }
    try {
      const runs = await this.callbacks.loadCompare(dirs);
      if (seq !== entry.seq) return;
      entry.panel.title = `Compare: ${runs.length} runs`;
      this.post(entry, { type: 'compare', runs });
    } catch (err) {
      if (seq !== entry.seq) return;
      this.post(entry, { type: 'error', message: `The runs could not be compared: ${errorMessage(err)}` });
    }
  }

  private async predict(entry: Entry, seq: number): Promise<void> {
    const runDir = entry.runDir;
    if (!this.callbacks.predictAtBudget || !runDir || entry.kind !== 'tradeoff') return;
    const budget = this.currentBudget();
    try {
      const predicted = await this.callbacks.predictAtBudget(runDir, { kind: budget.kind, keep: budget.keep });
      if (!predicted || seq !== this.budgetSeq || entry.runDir !== runDir) return;
      this.post(entry, { type: 'budget', budget: { kind: budget.kind, keep: budget.keep, predicted } });
    } catch {
      // The webview interpolates the sweep instead; the status bar reports prediction errors.
    }
  }

  private async onMessage(entry: Entry, msg: FromWebview): Promise<void> {
    switch (msg.type) {
      case 'ready':
        entry.ready = true;
        if (!entry.runDir && msg.state?.runDir) entry.runDir = msg.state.runDir;
        if (!entry.runDirs && msg.state?.runDirs) entry.runDirs = msg.state.runDirs;
        await this.load(entry);
        return;
      case 'requestState':
        await this.load(entry);
        return;
      case 'requestMetrics':
        if (entry.kind === 'training') await this.sendMetrics(entry, msg.since);
        return;
      case 'openPanel':
        await this.show(msg.panel, msg.runDir, vscode.ViewColumn.Active);
        return;
      case 'state':
        return;
      case 'exportAtBudget':
        if (entry.runDir)
          await this.callbacks.exportAtBudget(entry.runDir, { kind: msg.kind, keep: msg.keep, ...(msg.shape ? { shape: msg.shape } : {}) });
        return;
      case 'openRun':
        await this.callbacks.openRun();
        return;
      case 'runCommand':
        if (msg.command === this.commands.compress || msg.command === this.commands.openRun)
          await vscode.commands.executeCommand(msg.command);
        return;
      case 'saveFile':
        await this.save(
          entry,
          msg.format,
          msg.suggestedName,
          msg.encoding === 'base64' ? Buffer.from(msg.content, 'base64') : Buffer.from(msg.content, 'utf8'),
        );
        return;
      case 'exportReport': {
        if (!entry.runDir) return;
        const report = await this.callbacks.loadReport(entry.runDir);
        const content = msg.format === 'md' ? renderReportMarkdown(report) : await this.reportHtml(report);
        await this.save(entry, msg.format, exportFileName(report.runId, 'report', msg.format), Buffer.from(content, 'utf8'));
        return;
      }
    }
  }

  private async reportHtml(report: RunReport): Promise<string> {
    const read = async (...p: string[]) =>
      new TextDecoder().decode(await vscode.workspace.fs.readFile(vscode.Uri.joinPath(this.extensionUri, ...p)));
    const [js, css] = await Promise.all([read('dist', 'webview.js'), read('media', 'webview.css')]);
    return renderReportHtml(report, js, css);
  }

  private async save(entry: Entry, format: SaveFormat, suggestedName: string, bytes: Uint8Array): Promise<void> {
    if (bytes.byteLength > MAX_SAVE_BYTES) throw new Error(`The ${format.toUpperCase()} export is too large (${bytes.byteLength} bytes).`);
    // Only a file name: no directories, no characters Windows forbids, no leading dots.
    const fileName = [...(suggestedName.split(/[\\/]/).pop() ?? '')].map((c) => (c.charCodeAt(0) < 32 ? '-' : c)).join('');
    const name = fileName.replace(/[:*?"<>|]+/g, '-').replace(/^\.+/, '') || `export.${format}`;
    const base = entry.runDir ? vscode.Uri.file(entry.runDir) : vscode.workspace.workspaceFolders?.[0]?.uri;
    const uri = await vscode.window.showSaveDialog({
      defaultUri: base ? vscode.Uri.joinPath(base, name) : undefined,
      filters: FILTERS[format],
      saveLabel: 'Export',
    });
    if (!uri) return;
    await vscode.workspace.fs.writeFile(uri, bytes);
    this.post(entry, { type: 'notice', level: 'info', message: `Saved ${uri.fsPath}` });
    const open = await vscode.window.showInformationMessage(`Saved ${path.basename(uri.fsPath)}.`, 'Open');
    if (open === 'Open') await vscode.commands.executeCommand('vscode.open', uri);
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
