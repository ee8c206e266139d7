/**
 * Finding a Python interpreter that can run the backend (PyTorch ≥ 2.1, numpy, safetensors), shared by the
 * bootstrap, the CLI and the extension. The backend package ships inside the extension (`backend/`) and is put
 * on PYTHONPATH, so nothing is pip-installed into the user's environment.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from './errors';

export interface PythonInfo {
  executable: string;
  /** Where the interpreter came from (the setting, the Python extension, VTRANS_PYTHON, a .venv, PATH). */
  source: string;
  python: string;
  torch: string;
  cuda: boolean;
  gpus: number;
  gpuNames: string[];
  numpy: string | null;
  safetensors: string | null;
  onnx: string | null;
  transformers: string | null;
}

export const MIN_TORCH = [2, 1] as const;
const MIN_TORCH_TEXT = MIN_TORCH.join('.');

/** An interpreter to try, and why it is on the list. */
export interface Candidate {
  executable: string;
  source: string;
}

/** What probing one candidate found. */
export interface CandidateReport extends Candidate {
  ok: boolean;
  detail: string;
}

/** The `backend/` folder next to the bundle (dist/) or the sources (src/core). */
export function backendDir(): string {
  for (const up of ['..', '../..']) {
    const dir = path.resolve(__dirname, up, 'backend');
    if (fs.existsSync(path.join(dir, 'vtrans', '__init__.py'))) return dir;
  }
  throw new Error(`the backend package was not found next to ${__dirname}`);
}

/** `<folder>/.venv`'s interpreter, the Python convention for a project environment. */
export function venvInterpreter(folder: string): string {
  return path.join(folder, '.venv', process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python');
}

const PROBE = [
  'import json, sys',
  'info = {"python": sys.version.split()[0]}',
  'try:',
  '    import torch',
  '    info["torch"] = torch.__version__',
  '    info["cuda"] = bool(torch.cuda.is_available())',
  '    info["gpus"] = torch.cuda.device_count() if info["cuda"] else 0',
  '    info["gpuNames"] = [torch.cuda.get_device_name(i) for i in range(info["gpus"])]',
  'except Exception as e:',
  '    info["torch_error"] = f"{type(e).__name__}: {e}"',
  'for mod in ("numpy", "safetensors", "onnx", "transformers"):',
  '    try:',
  '        info[mod] = __import__(mod).__version__',
  '    except Exception:',
  '        info[mod] = None',
  'print(json.dumps(info))',
].join('\n');

export type ProbeResult = { ok: true; info: PythonInfo } | { ok: false; executable: string; reason: string };

export function probePython(candidate: Candidate | string, timeoutMs = 120_000): Promise<ProbeResult> {
  const { executable, source } = typeof candidate === 'string' ? { executable: candidate, source: 'given' } : candidate;
  return new Promise((resolve) => {
    execFile(executable, ['-c', PROBE], { timeout: timeoutMs, env: { ...process.env, PYTHONNOUSERSITE: '1' } }, (err, stdout) => {
      if (err)
        return resolve({
          ok: false,
          executable,
          reason: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : err.message.split('\n')[0],
        });
      let raw: Record<string, unknown>;
      try {
        raw = JSON.parse(stdout.trim().split('\n').pop() ?? '');
      } catch {
        return resolve({ ok: false, executable, reason: 'did not answer the probe' });
      }
      if (typeof raw.torch !== 'string')
        return resolve({ ok: false, executable, reason: `cannot import torch (${raw.torch_error ?? 'missing'})` });
      if (!torchAtLeast(raw.torch)) return resolve({ ok: false, executable, reason: `torch ${raw.torch} is older than ${MIN_TORCH_TEXT}` });
      const version = (k: string) => (typeof raw[k] === 'string' ? (raw[k] as string) : null);
      if (!version('numpy') || !version('safetensors')) {
        const missing = ['numpy', 'safetensors'].filter((m) => !version(m));
        return resolve({ ok: false, executable, reason: `has torch ${raw.torch} but not ${missing.join(' and ')}` });
      }
      resolve({
        ok: true,
        info: {
          executable,
          source,
          python: String(raw.python),
          torch: raw.torch,
          cuda: raw.cuda === true,
          gpus: Number(raw.gpus ?? 0),
          gpuNames: Array.isArray(raw.gpuNames) ? raw.gpuNames.map(String) : [],
          numpy: version('numpy'),
          safetensors: version('safetensors'),
          onnx: version('onnx'),
          transformers: version('transformers'),
        },
      });
    });
  });
}

export function torchAtLeast(version: string): boolean {
  const [major, minor] = version.split(/[.+a-z]/).map((x) => Number.parseInt(x, 10));
  return major > MIN_TORCH[0] || (major === MIN_TORCH[0] && minor >= MIN_TORCH[1]);
}

/**
 * Interpreters tried in order when none is configured: VTRANS_PYTHON, the `.venv/` of the given folders (the
 * workspace; for the CLI also the checkout the backend ships in), then python3 on PATH.
 */
export function defaultCandidates(env: NodeJS.ProcessEnv = process.env, folders: string[] = [checkoutRoot()]): Candidate[] {
  const list: Candidate[] = [];
  if (env.VTRANS_PYTHON) list.push({ executable: env.VTRANS_PYTHON, source: 'VTRANS_PYTHON' });
  for (const folder of folders) {
    const exe = venvInterpreter(folder);
    if (fs.existsSync(exe)) list.push({ executable: exe, source: `${path.basename(folder) || folder}/.venv` });
  }
  list.push({ executable: 'python3', source: 'python3 on PATH' });
  const seen = new Set<string>();
  return list.filter((c) => !seen.has(c.executable) && seen.add(c.executable));
}

/** The folder above `backend/`: the repository root in a checkout, the extension folder when packaged. */
function checkoutRoot(): string {
  try {
    return path.dirname(backendDir());
  } catch {
    return process.cwd();
  }
}

/** Probes every candidate (stopping at the first that works) and says what each one is. */
export async function surveyPython(candidates: Candidate[]): Promise<{ found?: PythonInfo; reports: CandidateReport[] }> {
  const reports: CandidateReport[] = [];
  for (const c of candidates) {
    const r = await probePython(c);
    if (r.ok) {
      reports.push({ ...c, ok: true, detail: describePython(r.info) });
      return { found: r.info, reports };
    }
    reports.push({ ...c, ok: false, detail: r.reason });
  }
  return { reports };
}

/** The first candidate that imports torch ≥ 2.1 with numpy and safetensors; otherwise a UserError with every reason. */
export async function findPython(candidates: Candidate[]): Promise<PythonInfo> {
  const { found, reports } = await surveyPython(candidates);
  if (found) return found;
  throw noPythonError(reports);
}

export function noPythonError(reports: CandidateReport[]): UserError {
  return new UserError(
    `No Python with PyTorch ≥ ${MIN_TORCH_TEXT} found (${reports.map((r) => `${r.executable} [${r.source}]: ${r.detail}`).join('; ')}).`,
    `Install it with: ${installCommand()} — or set VTRANS_PYTHON / the vtrans.pythonPath setting to an interpreter that has torch.`,
  );
}

/** One line: versions, device and the optional packages. */
export function describePython(info: PythonInfo): string {
  const device = info.cuda ? `CUDA with ${info.gpus} GPU(s)${info.gpuNames.length ? ` (${info.gpuNames.join(', ')})` : ''}` : 'CPU only';
  const opt = (name: string, v: string | null) => `${name} ${v ?? 'missing'}`;
  return `Python ${info.python}, torch ${info.torch} (${device}), ${opt('numpy', info.numpy)}, ${opt('safetensors', info.safetensors)}, ${opt('onnx', info.onnx)}, ${opt('transformers', info.transformers)}`;
}

/** `vtrans doctor`'s text: which interpreter runs the backend, and what every candidate before it was. */
export function formatSurvey(reports: CandidateReport[], found: PythonInfo | undefined): string {
  const lines = [found ? `backend Python: ${found.executable} (${found.source})` : 'backend Python: none found'];
  lines.push('candidates, in order:');
  for (const r of reports) lines.push(`  ${r.ok ? 'ok  ' : 'no  '} ${r.executable} [${r.source}]: ${r.detail}`);
  if (!found) lines.push(`install PyTorch with: ${installCommand()}`);
  return lines.join('\n');
}

/** The install command: a pinned CPU build is what most laptops want; GPU users pick theirs from pytorch.org. */
export function installCommand(): string {
  return 'python3 -m venv .venv && .venv/bin/pip install "torch>=2.1" numpy safetensors onnx';
}

/** Environment for backend processes: the bundled package on PYTHONPATH and a passive OpenMP wait policy. */
export function backendEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const dir = backendDir();
  return {
    ...base,
    PYTHONPATH: base.PYTHONPATH ? `${dir}${path.delimiter}${base.PYTHONPATH}` : dir,
    PYTHONUNBUFFERED: '1',
    PYTHONNOUSERSITE: '1',
    // Spinning OpenMP threads starve the other process on small machines (measured 2-3x slower on 2 cores).
    OMP_WAIT_POLICY: 'PASSIVE',
    // The backend never downloads: models come from the user's disk.
    HF_HUB_OFFLINE: '1',
  };
}
