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
import {
  exportFileName,
  isFromWebview,
  PANEL_KINDS,
  PANEL_VIEW_TYPES,
  type BudgetState,
  type FromWebview,
  type PanelKind,
  type PredictedPoint,
  type SaveFormat,
  type ToWebview,
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
}

export interface ReportPanelOptions {
  /** Command ids offered by the empty and error states. */
  commands?: { compress?: string; openRun?: string };
}

const TITLE: Record<PanelKind, string> = { tradeoff: 'VTrans Tradeoff', heatmaps: 'VTrans Heatmaps', report: 'VTrans Report' };
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
  ready: boolean;
  /** Bumped by every load, so a slow load cannot overwrite a newer one. */
  seq: number;
  disposables: vscode.Disposable[];
}

export class ReportPanels implements vscode.Disposable {
  private readonly entries = new Map<PanelKind, Entry>();
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
            const runDir =
              state && typeof state === 'object' && typeof (state as WebviewState).runDir === 'string'
                ? (state as WebviewState).runDir
                : undefined;
            this.entries.get(kind)?.panel.dispose();
            this.attach(kind, panel, runDir);
          },
        }),
      );
    }
    context.subscriptions.push(this);
  }

  /** Opens (or reveals) the panel of this kind on a run; without a run, on `latestRunDir()` or the empty state. */
  async show(kind: PanelKind, runDir?: string, column: vscode.ViewColumn = vscode.ViewColumn.Active): Promise<void> {
    const dir = runDir ?? this.entries.get(kind)?.runDir ?? (await this.callbacks.latestRunDir?.());
    let entry = this.entries.get(kind);
    if (entry) {
      entry.panel.reveal(column);
    } else {
      const panel = vscode.window.createWebviewPanel(PANEL_VIEW_TYPES[kind], TITLE[kind], column, this.webviewOptions());
      entry = this.attach(kind, panel, dir);
    }
    entry.runDir = dir;
    if (entry.ready) await this.load(entry);
  }

  /** The budget settings changed: every open panel moves its marker; the prediction follows when computed. */
  setBudget(budget: { kind: BudgetKind; keep: number; predicted?: PredictedPoint }): void {
    this.budget = { ...budget };
    const seq = ++this.budgetSeq;
    for (const e of this.entries.values()) {
      if (!e.ready || !e.runDir) continue;
      this.post(e, { type: 'budget', budget: this.budget });
      if (!budget.predicted) void this.predict(e, seq);
    }
  }

  /** Reloads report.json in the panels that show `runDir` (all panels when omitted). */
  async refresh(runDir?: string): Promise<void> {
    const same = (a: string | undefined) => runDir === undefined || (a !== undefined && path.resolve(a) === path.resolve(runDir));
    await Promise.all([...this.entries.values()].filter((e) => e.ready && same(e.runDir)).map((e) => this.load(e)));
  }

  /** Run directories shown by open panels (e.g. to decide whether a prediction is worth computing). */
  openRunDirs(): string[] {
    return [...new Set([...this.entries.values()].map((e) => e.runDir).filter((d): d is string => !!d))];
  }

  isOpen(kind: PanelKind): boolean {
    return this.entries.has(kind);
  }

  dispose(): void {
    for (const e of [...this.entries.values()]) e.panel.dispose();
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

  private attach(kind: PanelKind, panel: vscode.WebviewPanel, runDir: string | undefined): Entry {
    const entry: Entry = { kind, panel, runDir, ready: false, seq: 0, disposables: [] };
    this.entries.set(kind, entry);
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
        if (this.entries.get(kind) === entry) this.entries.delete(kind);
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

  private async load(entry: Entry): Promise<void> {
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
    entry.panel.title = `${TITLE[entry.kind]}: ${report.runId}`;
    const budget = this.currentBudget();
    this.post(entry, { type: 'show', panel: entry.kind, runDir, report, budget });
    if (!budget.predicted) void this.predict(entry, this.budgetSeq);
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
        await this.load(entry);
        return;
      case 'requestState':
        await this.load(entry);
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
