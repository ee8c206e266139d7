/**
 * The Runs view, an experiment table: `.vtrans/runs/*` of every workspace folder, newest first, each named by
 * its model, method and budget ("spam-classifier · Fast-VTrans 30% params") with its metric, status and note;
 * a running run shows its phase and ETA. Several runs can be selected for "Compare". Refreshed by a file
 * watcher on run.json / report.json / note.txt. Context values drive the item menus: `run`, plus `report` (has
 * report.json), `model` (has model/), `resumable` (failed/cancelled with checkpoints), `log` (has log.txt),
 * `metrics` (has metrics.jsonl), `running`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { OutputShape } from '../core/contracts';
import { SHAPE_DETAIL, SHAPE_LABEL } from '../core/labels';
import { fmtCount, fmtMetric } from '../core/findings';
import { formatEta, PHASE_LABEL } from '../core/progressText';
import type { ProgressParams } from '../core/protocol';
import { hasCheckpoint, listRuns, readRunNote, RUN_LOG, runMetric, runTitle, type RunEntry } from '../core/runs';

const STATUS_ICON: Record<string, vscode.ThemeIcon> = {
  running: new vscode.ThemeIcon('sync~spin'),
  done: new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed')),
  failed: new vscode.ThemeIcon('error', new vscode.ThemeColor('testing.iconFailed')),
  cancelled: new vscode.ThemeIcon('circle-slash'),
};

export class RunItem extends vscode.TreeItem {
  constructor(
    readonly run: RunEntry,
    progress?: ProgressParams,
  ) {
    super(runTitle(run), vscode.TreeItemCollapsibleState.None);
    const { info, report } = run;
    const note = readRunNote(run.dir);
    const live =
      info.status === 'running' && progress
        ? `${PHASE_LABEL[progress.phase] ?? progress.phase} ${progress.total > 0 ? Math.round((100 * progress.step) / progress.total) : 0}%${formatEta(progress.eta) ? ` · ${formatEta(progress.eta)}` : ''}`
        : undefined;
    const parts = [
      runMetric(report),
      shapeOf(run) === 'uniform' ? 'uniform shape' : undefined,
      live ?? (info.status !== 'done' ? info.status : undefined),
      note ? `“${note}”` : undefined,
    ];
    this.description = parts.filter(Boolean).join(' · ');
    this.iconPath = STATUS_ICON[info.status] ?? new vscode.ThemeIcon('circle-outline');
    this.tooltip = tooltip(run, note);
    this.id = run.dir;
    const ctx = ['run'];
    if (report) ctx.push('report');
    if (fs.existsSync(path.join(run.dir, 'model'))) ctx.push('model');
    if ((info.status === 'failed' || info.status === 'cancelled') && hasCheckpoint(run.dir)) ctx.push('resumable');
    if (fs.existsSync(path.join(run.dir, RUN_LOG))) ctx.push('log');
    if (fs.existsSync(path.join(run.dir, 'metrics.jsonl'))) ctx.push('metrics');
    if (info.status === 'running') ctx.push('running');
    this.contextValue = ctx.join(' ');
    if (report) this.command = { command: 'vtrans.runs.openReport', title: 'Open Report', arguments: [this] };
    else if (info.status === 'running') this.command = { command: 'vtrans.runs.openTraining', title: 'Show Training', arguments: [this] };
  }
}

/** The output shape of the run's model/ (older runs, before shapes: heterogeneous). */
function shapeOf(run: RunEntry): OutputShape {
  return run.report?.load?.shape ?? run.info.settings?.shape ?? 'heterogeneous';
}

function tooltip(run: RunEntry, note: string): vscode.MarkdownString {
  const md = new vscode.MarkdownString(undefined, true);
  const { info, report } = run;
  md.appendMarkdown(`**${runTitle(run)}** — ${info.status}\n\n`);
  if (note) md.appendMarkdown(`${note.replace(/[\\`*_{}[\]()#+\-.!|]/g, '\\$&')}\n\n`);
  md.appendMarkdown(`run \`${path.basename(run.dir)}\`${info.modelDir ? ` · model \`${info.modelDir}\`` : ''}\n\n`);
  const shape = shapeOf(run);
  md.appendMarkdown(
    `shape: **${SHAPE_LABEL[shape]}**, ${SHAPE_DETAIL[shape]}${report?.load ? ' (the report has the lines that load it)' : ''}\n\n`,
  );
  if (report?.student) {
    const t = report.teacher;
    const s = report.student;
    md.appendMarkdown(`| | teacher | compressed |\n|---|---:|---:|\n`);
    md.appendMarkdown(`| parameters | ${fmtCount(t.params)} | ${fmtCount(s.params)} |\n`);
    md.appendMarkdown(`| FLOPs/token | ${fmtCount(t.flopsPerToken)} | ${fmtCount(s.flopsPerToken)} |\n`);
    if (t.metric && s.metric)
      md.appendMarkdown(
        `| ${t.metric.name} | ${fmtMetric(t.metric.name, t.metric.value)} | ${fmtMetric(s.metric.name, s.metric.value)} |\n`,
      );
    const tl = t.onnx?.latencyMs['1'];
    const sl = s.onnx?.latencyMs['1'];
    if (tl && sl) md.appendMarkdown(`| latency b1 | ${tl.toFixed(2)} ms | ${sl.toFixed(2)} ms |\n`);
  }
  if (info.error) md.appendMarkdown(`\n\n$(error) ${info.error}`);
  return md;
}

export class RunsView implements vscode.TreeDataProvider<RunItem>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly progress = new Map<string, ProgressParams>();
  private lastProgressRefresh = 0;

  constructor() {
    const watcher = vscode.workspace.createFileSystemWatcher('**/.vtrans/runs/*/{run.json,report.json,note.txt}');
    this.disposables.push(
      watcher,
      watcher.onDidChange(() => this.refreshSoon()),
      watcher.onDidCreate(() => this.refreshSoon()),
      watcher.onDidDelete(() => this.refreshSoon()),
    );
    this.disposables.push(vscode.workspace.onDidChangeWorkspaceFolders(() => this.refresh()));
  }

  runs(): RunEntry[] {
    return (vscode.workspace.workspaceFolders ?? []).flatMap((f) => listRuns(f.uri.fsPath));
  }

  refresh(): void {
    this.changed.fire();
  }

  /** Writes come in bursts (run.json and report.json); one refresh per burst. */
  refreshSoon(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), 300);
  }

  /** A running run's latest progress, shown on its item (refreshed at most once a second). */
  setProgress(runDir: string, p: ProgressParams | undefined): void {
    if (p) this.progress.set(runDir, p);
    else this.progress.delete(runDir);
    const now = Date.now();
    if (!p || now - this.lastProgressRefresh > 1000) {
      this.lastProgressRefresh = now;
      this.refresh();
    }
  }

  getTreeItem(item: RunItem): vscode.TreeItem {
    return item;
  }

  getChildren(item?: RunItem): RunItem[] {
    return item ? [] : this.runs().map((r) => new RunItem(r, this.progress.get(r.dir)));
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.changed.dispose();
    this.disposables.forEach((d) => d.dispose());
  }
}
