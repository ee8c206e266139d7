/**
 * Model projects of the workspace: folders whose config.json names a supported model_type (bert, roberta, gpt2,
 * llama). They are what "Compress Model" offers, and the `vtrans.modelFolders` context key lists them so that
 * the Explorer's context menu shows the command on those folders only.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { fmtCount } from '../core/findings';
import { inspectModel } from '../core/inspect';
import { FAMILIES, labelNames, readConfig, readModelShape, type Task } from '../core/modelShape';

export const EXCLUDE = '{**/node_modules/**,**/.vtrans/**,**/.git/**,**/.venv/**,**/dist/**}';

export interface ModelProject {
  dir: string;
  family: string;
  params: number;
  /** The task the checkpoint's head is for. */
  task: Task;
  /** Tasks it can be compressed for: a decoder with a classification head also as a language model. */
  tasks: Task[];
  /** Class names of a classification head (config.json id2label). */
  labels?: string[];
}

/** The config.json's model_type when it is one the backend compresses. */
export function supportedModelType(configFile: string): string | undefined {
  try {
    const cfg = JSON.parse(fs.readFileSync(configFile, 'utf8')) as { model_type?: unknown };
    return typeof cfg.model_type === 'string' && (FAMILIES as readonly string[]).includes(cfg.model_type) ? cfg.model_type : undefined;
  } catch {
    return undefined;
  }
}

/** A model folder as the pickers show it; undefined when it cannot be loaded (no weights yet, another format). */
export function modelProject(dir: string): ModelProject | undefined {
  if (!supportedModelType(path.join(dir, 'config.json'))) return undefined;
  try {
    const r = inspectModel(dir);
    const shape = readModelShape(dir);
    const decoder = shape.family === 'gpt2' || shape.family === 'llama';
    const tasks: Task[] = shape.task === 'classification' && decoder ? ['classification', 'lm'] : [shape.task];
    return {
      dir,
      family: r.family,
      params: r.params.total,
      task: shape.task,
      tasks,
      labels: shape.task === 'classification' ? labelNames(readConfig(dir)) : undefined,
    };
  } catch {
    return undefined;
  }
}

export function describeProject(p: ModelProject): string {
  const head = p.task === 'classification' ? `classification${p.labels ? ` (${p.labels.join(', ')})` : ''}` : 'language model';
  return `${p.family} · ${fmtCount(p.params)} params · ${head}`;
}

/** Model projects of the workspace folders, sorted by path. */
export async function findModelProjects(): Promise<ModelProject[]> {
  const configs = await vscode.workspace.findFiles('**/config.json', EXCLUDE, 500);
  const out: ModelProject[] = [];
  for (const uri of configs) {
    const p = modelProject(path.dirname(uri.fsPath));
    if (p) out.push(p);
  }
  return out.sort((a, b) => a.dir.localeCompare(b.dir));
}

/**
 * Keeps `vtrans.modelFolders` (the folders with a supported config.json, as paths) up to date, for the
 * Explorer menu's `resourcePath in vtrans.modelFolders`. Only headers are read (config.json), nothing is loaded.
 */
export class ModelFolders implements vscode.Disposable {
  private readonly watcher = vscode.workspace.createFileSystemWatcher('**/config.json');
  private timer: NodeJS.Timeout | undefined;
  private folders: string[] = [];

  constructor() {
    const soon = () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.update(), 500);
    };
    this.watcher.onDidCreate(soon);
    this.watcher.onDidChange(soon);
    this.watcher.onDidDelete(soon);
    void this.update();
  }

  list(): string[] {
    return this.folders;
  }

  async update(): Promise<void> {
    const configs = await vscode.workspace.findFiles('**/config.json', EXCLUDE, 2000);
    const dirs = configs.filter((u) => supportedModelType(u.fsPath)).map((u) => vscode.Uri.file(path.dirname(u.fsPath)));
    // Both spellings: `resourcePath` is the file system path on the desktop and the URI path in a browser workbench.
    this.folders = [...new Set(dirs.flatMap((u) => [u.fsPath, u.path]))].sort();
    await vscode.commands.executeCommand('setContext', 'vtrans.modelFolders', this.folders);
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.watcher.dispose();
  }
}
