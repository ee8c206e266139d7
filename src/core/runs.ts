/**
 * The run store: `<workspace>/.vtrans/runs/<id>/` directories written by the backend (run.json, metrics.jsonl,
 * masks.safetensors, checkpoints/, model/, model.onnx, report.json) and completed here (ONNX measurements,
 * report.html, report.md). Writes are atomic (temp file + rename).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunReport } from './report';

export type RunStatus = 'running' | 'done' | 'failed' | 'cancelled';

export interface RunInfo {
  id: string;
  status: RunStatus;
  createdAt: string;
  updatedAt?: string;
  method?: string;
  budget?: { kind: string; keep: number };
  modelDir?: string;
  parent?: string;
  error?: string | null;
  pid?: number;
  settings?: Record<string, unknown>;
  result?: Record<string, unknown>;
}

export interface RunEntry {
  dir: string;
  info: RunInfo;
  report?: RunReport;
}

export const RUNS_DIR = path.join('.vtrans', 'runs');
export const CACHE_DIR = path.join('.vtrans', 'cache');

export function runsDir(workspace: string): string {
  return path.join(workspace, RUNS_DIR);
}

export function newRunId(method: string, now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  return `${stamp}-${method}-${randomBytes(2).toString('hex')}`;
}

export function writeJsonAtomic(file: string, data: unknown): void {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(3).toString('hex')}`;
  fs.writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n');
  fs.renameSync(tmp, file);
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

export function readReport(dir: string): RunReport | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8')) as RunReport;
  } catch {
    return undefined;
  }
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

export function updateRunInfo(dir: string, fields: Partial<RunInfo>): RunInfo | undefined {
  const info = readRunInfo(dir);
  if (!info) return undefined;
  const next = { ...info, ...fields, updatedAt: new Date().toISOString() };
  writeJsonAtomic(path.join(dir, 'run.json'), next);
  return next;
}

/** A run left "running" by a backend that is gone (crash, kill): marked failed, checkpoints kept for resume. */
export function markInterrupted(dir: string, reason: string): RunInfo | undefined {
  const info = readRunInfo(dir);
  if (!info || info.status !== 'running') return info;
  return updateRunInfo(dir, { status: 'failed', error: `${reason} Checkpoints are kept: resume the run to continue.` });
}

export function hasCheckpoint(dir: string): boolean {
  const ckpt = path.join(dir, 'checkpoints');
  return fs.existsSync(ckpt) && fs.readdirSync(ckpt).some((f) => f.startsWith('state-') && f.endsWith('.json'));
}

export function deleteRun(dir: string): void {
  if (!readRunInfo(dir)) throw new Error(`${dir} is not a run directory`);
  fs.rmSync(dir, { recursive: true, force: true });
}
