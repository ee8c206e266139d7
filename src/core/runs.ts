/**
 * The run store: `<workspace>/.vtrans/runs/<id>/` directories. The backend writes run.json, metrics.jsonl,
 * masks.safetensors, checkpoints/, model/, model.onnx and report.json (their one writer; the types are its
 * contracts, src/core/contracts.ts); this side reads them and writes report.html and report.md. When the backend
 * that wrote a run died, `markStopped` has the backend's own run module record that (a short Python process),
 * so run.json keeps one writer.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUN_CLIENT_FILES, type RunInfo, type RunReport, type RunStatus } from './contracts';
import { fmtPct } from './findings';
import { BUDGET_KIND_SHORT, METHOD_LABEL } from './labels';
import { backendEnv } from './python';

export type { RunInfo, RunStatus };

export interface RunEntry {
  dir: string;
  info: RunInfo;
  report?: RunReport;
}

export const RUNS_DIR = path.join('.vtrans', 'runs');
export const CACHE_DIR = path.join('.vtrans', 'cache');
/** The backend's log lines of the run and the client's own steps, written by the client (extension or CLI). */
export const RUN_LOG = RUN_CLIENT_FILES.log;
/** The user's note on a run (the Runs view's "Edit Note"), written by the client. */
export const RUN_NOTE = RUN_CLIENT_FILES.note;

/**
 * Keeps a folder out of version control: a `.gitignore` that ignores everything in it, itself included. Written
 * by the client into each run directory (before the backend writes run.json there) and into `.vtrans/cache/`.
 */
export function ignoreInGit(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, RUN_CLIENT_FILES.gitignore);
  if (!fs.existsSync(file)) fs.writeFileSync(file, '# Written by VTrans: run outputs and caches are not tracked.\n*\n');
}

/** Appends lines to the run's log.txt, each with its time. */
export function appendRunLog(runDir: string, lines: string | string[], now = new Date()): void {
  const stamp = now.toISOString().replace('T', ' ').slice(0, 19);
  const text = (Array.isArray(lines) ? lines : [lines]).map((l) => `${stamp} ${l}\n`).join('');
  fs.mkdirSync(runDir, { recursive: true });
  fs.appendFileSync(path.join(runDir, RUN_LOG), text);
}

export function readRunNote(runDir: string): string {
  try {
    return fs.readFileSync(path.join(runDir, RUN_NOTE), 'utf8').trim();
  } catch {
    return '';
  }
}

/** Sets the run's note (an empty note removes the file). */
export function writeRunNote(runDir: string, note: string): void {
  const file = path.join(runDir, RUN_NOTE);
  if (!note.trim()) fs.rmSync(file, { force: true });
  else writeTextAtomic(file, `${note.trim()}\n`);
}

export function runsDir(workspace: string): string {
  return path.join(workspace, RUNS_DIR);
}

export function newRunId(method: string, now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  return `${stamp}-${method}-${randomBytes(2).toString('hex')}`;
}

export function writeTextAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(3).toString('hex')}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

export function readRunInfo(dir: string): RunInfo | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as RunInfo;
  } catch {
    return undefined;
  }
}

/** Why a folder cannot be used as a run: it has no run.json, or one that does not parse. Undefined when it can. */
export function runInfoProblem(dir: string): string | undefined {
  const file = path.join(dir, 'run.json');
  if (!fs.existsSync(file)) return `${dir}: not a run directory (no run.json).`;
  try {
    const info = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<RunInfo>;
    if (!info || typeof info !== 'object' || typeof info.status !== 'string') return `${file}: is not a run's run.json (no status).`;
  } catch (e) {
    return `${file}: is corrupt (${(e as Error).message.split('\n')[0]}). The run's other files are kept; restore run.json or delete the run.`;
  }
  return undefined;
}

export function readReport(dir: string): RunReport | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8')) as RunReport;
  } catch {
    return undefined;
  }
}

/**
 * The workspace a run belongs to: what run.json recorded, else (runs of older versions) the folder above
 * `.vtrans/runs/` when the run sits in one.
 */
export function workspaceOfRun(runDir: string): string {
  const recorded = readRunInfo(runDir)?.workspace;
  if (recorded) return recorded;
  const parent = path.dirname(path.resolve(runDir));
  if (path.basename(parent) === 'runs' && path.basename(path.dirname(parent)) === '.vtrans') return path.dirname(path.dirname(parent));
  return path.dirname(parent);
}

/** Runs newest first. Directories without a readable run.json are skipped. */
export function listRuns(workspace: string): RunEntry[] {
  const root = runsDir(workspace);
  if (!fs.existsSync(root)) return [];
  const entries: RunEntry[] = [];
  for (const name of fs.readdirSync(root)) {
    const dir = path.join(root, name);
    const info = readRunInfo(dir);
    if (info) entries.push({ dir, info, report: readReport(dir) });
  }
  return entries.sort((a, b) => (b.info.createdAt ?? '').localeCompare(a.info.createdAt ?? '') || b.dir.localeCompare(a.dir));
}

/** The newest finished run with masks (what live budget tuning and "Export at Current Budget" re-threshold). */
export function latestFinishedRun(workspace: string): RunEntry | undefined {
  return listRuns(workspace).find((r) => r.info.status === 'done' && r.report && fs.existsSync(path.join(r.dir, 'masks.safetensors')));
}

/**
 * A run left "running" by a backend that is gone (crash, kill, a second Ctrl-C): marked failed or cancelled with
 * the reason, its checkpoints kept for resume (`python -m vtrans.runs mark`). Resolves false when the run was
 * not running any more, or the interpreter could not be run.
 */
export function markStopped(python: string, runDir: string, status: 'failed' | 'cancelled', reason: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(
      python,
      ['-m', 'vtrans.runs', 'mark', runDir, '--status', status, '--reason', reason],
      { env: backendEnv(), timeout: 60_000 },
      (err, stdout) => {
        if (err) return resolve(false);
        try {
          resolve((JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { changed?: boolean }).changed === true);
        } catch {
          resolve(false);
        }
      },
    );
  });
}

export function hasCheckpoint(dir: string): boolean {
  const ckpt = path.join(dir, 'checkpoints');
  return fs.existsSync(ckpt) && fs.readdirSync(ckpt).some((f) => f.startsWith('state-') && f.endsWith('.json'));
}

export function deleteRun(dir: string): void {
  if (!readRunInfo(dir)) throw new Error(`${dir} is not a run directory`);
  fs.rmSync(dir, { recursive: true, force: true });
}

/** The model a run compressed, by its folder ("spam-classifier"; "vtrans-sample" for vtrans-sample/model). */
export function modelName(modelDir: string | undefined): string {
  if (!modelDir) return 'model';
  const base = path.basename(modelDir);
  return base === 'model' && path.basename(path.dirname(modelDir)) ? path.basename(path.dirname(modelDir)) : base;
}

/** "spam-classifier · Fast-VTrans 30% params": what the Runs view, the pickers and the panel titles call a run. */
export function runTitle(entry: { info: Partial<RunInfo>; report?: RunReport }): string {
  const { info, report } = entry;
  const method = info.method ?? report?.method;
  const budget = info.budget ?? report?.budget;
  const how = method === 'rethreshold' ? 'cut' : method ? METHOD_LABEL[method] : '';
  const size = budget ? `${+(100 * budget.keep).toFixed(1)}% ${BUDGET_KIND_SHORT[budget.kind]}` : '';
  return [modelName(info.modelDir ?? report?.model.dir), [how, size].filter(Boolean).join(' ')].filter(Boolean).join(' · ');
}

/** The compressed model's metric: "97.24%" (accuracy) or "ppl 31.5". */
export function runMetric(report: RunReport | undefined): string | undefined {
  const m = report?.student?.metric;
  if (!m) return undefined;
  return m.name === 'accuracy' ? fmtPct(m.value, 2) : `ppl ${m.value.toFixed(1)}`;
}
