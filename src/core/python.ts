/**
 * Finding a Python interpreter that can run the backend (torch ≥ 1.13), shared by the bootstrap,
 * the CLI and the extension. The backend package ships inside the extension (`backend/`) and is put on
 * PYTHONPATH, so nothing is pip-installed into the user's environment.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from './errors';

export interface PythonInfo {
  executable: string;
  python: string;
  torch: string;
  cuda: boolean;
  gpus: number;
  numpy: string | null;
  onnx: string | null;
}

export const MIN_TORCH = [1, 13] as const;

/** The `backend/` folder next to the bundle (dist/) or the sources (src/core). */
export function backendDir(): string {
  for (const up of ['..', '../..']) {
    const dir = path.resolve(__dirname, up, 'backend');
    if (fs.existsSync(path.join(dir, 'vtrans', '__init__.py'))) return dir;
  }
  throw new Error(`the backend package was not found next to ${__dirname}`);
}

const PROBE = [
  'import json, sys',
  'info = {"python": sys.version.split()[0]}',
  'try:',
  '    import torch',
  '    info["torch"] = torch.__version__',
  '    info["cuda"] = bool(torch.cuda.is_available())',
  '    info["gpus"] = torch.cuda.device_count() if info["cuda"] else 0',
  'except Exception as e:',
  '    info["torch_error"] = f"{type(e).__name__}: {e}"',
  'for mod in ("numpy", "onnx"):',
  '    try:',
  '        info[mod] = __import__(mod).__version__',
  '    except Exception:',
  '        info[mod] = None',
  'print(json.dumps(info))',
].join('\n');

export type ProbeResult = { ok: true; info: PythonInfo } | { ok: false; executable: string; reason: string };

export function probePython(executable: string, timeoutMs = 120_000): Promise<ProbeResult> {
  return new Promise((resolve) => {
    execFile(executable, ['-c', PROBE], { timeout: timeoutMs, env: { ...process.env, PYTHONNOUSERSITE: '1' } }, (err, stdout) => {
      if (err) return resolve({ ok: false, executable, reason: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : err.message.split('\n')[0] });
      let raw: Record<string, unknown>;
      try {
        raw = JSON.parse(stdout.trim().split('\n').pop() ?? '');
      } catch {
        return resolve({ ok: false, executable, reason: 'did not answer the probe' });
      }
      if (typeof raw.torch !== 'string') return resolve({ ok: false, executable, reason: `cannot import torch (${raw.torch_error ?? 'missing'})` });
      if (!torchAtLeast(raw.torch)) return resolve({ ok: false, executable, reason: `torch ${raw.torch} is older than ${MIN_TORCH.join('.')}` });
      resolve({
        ok: true,
        info: {
          executable,
          python: String(raw.python),
          torch: raw.torch,
          cuda: raw.cuda === true,
          gpus: Number(raw.gpus ?? 0),
          numpy: (raw.numpy as string | null) ?? null,
          onnx: (raw.onnx as string | null) ?? null,
        },
      });
    });
  });
}

export function torchAtLeast(version: string): boolean {
  const [major, minor] = version.split(/[.+a-z]/).map((x) => Number.parseInt(x, 10));
  return major > MIN_TORCH[0] || (major === MIN_TORCH[0] && minor >= MIN_TORCH[1]);
}

/** Interpreters tried in order when none is configured: VTRANS_PYTHON, Debian's /usr/bin/python3, then python3 on PATH. */
export function defaultCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const list = [env.VTRANS_PYTHON, '/usr/bin/python3', 'python3'].filter((x): x is string => !!x);
  return [...new Set(list)];
}

/** The first candidate that imports torch ≥ 1.13; otherwise a UserError with every reason and the install command. */
export async function findPython(candidates: string[]): Promise<PythonInfo> {
  const reasons: string[] = [];
  for (const exe of candidates) {
    const r = await probePython(exe);
    if (r.ok) return r.info;
    reasons.push(`${exe}: ${r.reason}`);
  }
  throw new UserError(`No Python with PyTorch ≥ ${MIN_TORCH.join('.')} found (${reasons.join('; ')}).`, `Install it with: ${installCommand()} — or set VTRANS_PYTHON / the vtrans.pythonPath setting to an interpreter that has torch.`);
}

/** The install command for this platform (Debian/Ubuntu get the distribution's CPU PyTorch). */
export function installCommand(platform: NodeJS.Platform = process.platform): string {
  if (platform === 'linux' && fs.existsSync('/usr/bin/apt-get')) {
    return `${process.getuid?.() === 0 ? '' : 'sudo '}apt-get install -y --no-install-recommends ${DEBIAN_PACKAGES.join(' ')}`;
  }
  return 'python3 -m pip install torch numpy onnx';
}

export const DEBIAN_PACKAGES = ['python3-torch', 'python3-numpy', 'python3-onnx', 'python3-pytest', 'libopenblas0-pthread'];

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
  };
}
