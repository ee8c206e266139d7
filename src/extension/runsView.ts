/**
 * The Runs view: `.vtrans/runs/*` of every workspace folder, newest first, with status, budget, method and
 * metrics; refreshed by a file watcher on run.json / report.json. Context values drive the item menus:
 * `run`, plus `report` (has report.json), `model` (has model/), `resumable` (failed/cancelled with checkpoints).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { OutputShape } from '../core/contracts';
import { formatCount } from '../core/inspect';
import { SHAPE_DETAIL, SHAPE_LABEL } from '../core/labels';
import { hasCheckpoint, listRuns, type RunEntry } from '../core/runs';
import * as fs from 'node:fs';

const STATUS_ICON: Record<string, vscode.ThemeIcon> = {
  running: new vscode.ThemeIcon('sync~spin'),
  done: new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed')),
  failed: new vscode.ThemeIcon('error', new vscode.ThemeColor('testing.iconFailed')),
  cancelled: new vscode.ThemeIcon('circle-slash'),
};

export class RunItem extends vscode.TreeItem {
  constructor(readonly run: RunEntry) {
    super(path.basename(run.dir), vscode.TreeItemCollapsibleState.None);
    const { info, report } = run;
    const budget = info.budget ?? (report ? { kind: report.budget.kind, keep: report.budget.keep } : undefined);
    const metric = report?.student?.metric;
    const parts = [
      info.method ?? report?.method,
      budget ? `${Math.round(100 * budget.keep)}% ${budget.kind}` : undefined,
      shapeOf(run),
      metric ? `${metric.name === 'accuracy' ? `${(100 * metric.value).toFixed(1)}%` : `ppl ${metric.value.toFixed(1)}`}` : undefined,
      info.status !== 'done' ? info.status : undefined,
    ];
    this.description = parts.filter(Boolean).join(' · ');
    this.iconPath = STATUS_ICON[info.status] ?? new vscode.ThemeIcon('circle-outline');
    this.tooltip = tooltip(run);
    this.resourceUri = vscode.Uri.file(run.dir);
    const ctx = ['run'];
    if (report) ctx.push('report');
    if (fs.existsSync(path.join(run.dir, 'model'))) ctx.push('model');
    if ((info.status === 'failed' || info.status === 'cancelled') && hasCheckpoint(run.dir)) ctx.push('resumable');
    this.contextValue = ctx.join(' ');
    if (report) this.command = { command: 'vtrans.runs.openReport', title: 'Open Report', arguments: [this] };
  }
}

/** The output shape of the run's model/ (older runs, before shapes: heterogeneous). */
function shapeOf(run: RunEntry): OutputShape {
  return run.report?.load?.shape ?? run.info.settings?.shape ?? 'heterogeneous';
}

function tooltip(run: RunEntry): vscode.MarkdownString {
  const md = new vscode.MarkdownString(undefined, true);
  const { info, report } = run;
  md.appendMarkdown(`**${path.basename(run.dir)}** — ${info.status}\n\n`);
  if (info.modelDir) md.appendMarkdown(`model: \`${info.modelDir}\`\n\n`);
  const shape = shapeOf(run);
  md.appendMarkdown(
    `shape: **${SHAPE_LABEL[shape]}**, ${SHAPE_DETAIL[shape]}${report?.load ? ' (the report has the lines that load it)' : ''}\n\n`,
  );
  if (report?.student) {
    const t = report.teacher;
    const s = report.student;
    md.appendMarkdown(`| | teacher | student |\n|---|---:|---:|\n`);
    md.appendMarkdown(`| parameters | ${formatCount(t.params)} | ${formatCount(s.params)} |\n`);
    md.appendMarkdown(`| FLOPs/token | ${formatCount(t.flopsPerToken)} | ${formatCount(s.flopsPerToken)} |\n`);
    if (t.metric && s.metric) md.appendMarkdown(`| ${t.metric.name} | ${t.metric.value.toFixed(4)} | ${s.metric.value.toFixed(4)} |\n`);
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

  constructor() {
    const watcher = vscode.workspace.createFileSystemWatcher('**/.vtrans/runs/*/{run,report}.json');
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

  getTreeItem(item: RunItem): vscode.TreeItem {
    return item;
  }

  getChildren(item?: RunItem): RunItem[] {
    return item ? [] : this.runs().map((r) => new RunItem(r));
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.changed.dispose();
    this.disposables.forEach((d) => d.dispose());
  }
}
