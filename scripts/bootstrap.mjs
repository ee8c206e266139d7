// Shared first step of `npm run demo`, `npm test` and `npm run bench` on a fresh machine: node modules, the
// bundle, and the project's Python environment `.venv/` (PyTorch 2 and the backend's test extras from
// backend/requirements-test.txt). Uses only Node's standard library, since it runs before `npm ci`.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NODE_STAMP = path.join(ROOT, 'node_modules', '.vtrans-lock-hash');
export const VENV = path.join(ROOT, '.venv');
export const REQUIREMENTS = path.join(ROOT, 'backend', 'requirements-test.txt');
const VENV_STAMP = path.join(VENV, '.vtrans-requirements-hash');

export function log(msg) {
  process.stderr.write(`[bootstrap] ${msg}\n`);
}

/** Runs a command with inherited output; throws on failure. */
export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: ROOT, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
}

const sha256 = (...parts) => createHash('sha256').update(parts.join('\0')).digest('hex');

/**
 * Native modules (code-server's) compile with node-gyp against Node's headers. Where npm has no `nodedir`,
 * node-gyp downloads them, which fails offline; the running Node's own headers serve when they are installed.
 */
export function nativeBuildEnv(env = process.env) {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (env.npm_config_nodedir || !fs.existsSync(path.join(prefix, 'include', 'node', 'node.h'))) return env;
  return { ...env, npm_config_nodedir: prefix };
}

/** `npm ci` when node_modules is missing or was installed from another package-lock.json. */
export function ensureNodeModules() {
  const want = sha256(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  if (fs.existsSync(NODE_STAMP) && fs.readFileSync(NODE_STAMP, 'utf8').trim() === want) return;
  log('installing node modules (npm ci)');
  // The env var covers npm versions that ignore the project's .npmrc; onnxruntime-node's CPU binaries ship in the package.
  run('npm', ['ci', '--no-audit', '--no-fund'], { env: { ...nativeBuildEnv(), ONNXRUNTIME_NODE_INSTALL: 'skip' } });
  fs.writeFileSync(NODE_STAMP, want + '\n');
}

export function build() {
  run(process.execPath, [path.join(ROOT, 'esbuild.mjs')]);
}

export const venvPython = () => path.join(VENV, process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python');

/** The interpreter that creates `.venv/`: VTRANS_BOOTSTRAP_PYTHON, else the machine's python3. */
function basePython() {
  const exe = process.env.VTRANS_BOOTSTRAP_PYTHON || 'python3';
  const r = spawnSync(exe, ['-c', 'import sys, venv; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(
      `${exe} cannot create a virtual environment (${r.error?.message ?? r.stderr.trim().split('\n').pop()}). ` +
        'Install Python >= 3.10 with venv (Debian: apt-get install python3-venv), or set VTRANS_BOOTSTRAP_PYTHON to one.',
    );
  }
  const [major, minor] = r.stdout.trim().split('.').map(Number);
  if (major < 3 || (major === 3 && minor < 10))
    throw new Error(`${exe} is Python ${r.stdout.trim()}; the backend needs >= 3.10. Set VTRANS_BOOTSTRAP_PYTHON.`);
  return exe;
}

/**
 * `.venv/` at the repository root with the pinned backend requirements. Reinstalls only when
 * backend/requirements-test.txt changed (stamp, like node_modules); a venv whose interpreter is gone is rebuilt.
 */
export function ensureVenv() {
  const want = sha256(fs.readFileSync(REQUIREMENTS, 'utf8'));
  const pythonWorks = fs.existsSync(venvPython()) && spawnSync(venvPython(), ['-c', 'pass']).status === 0;
  if (pythonWorks && fs.existsSync(VENV_STAMP) && fs.readFileSync(VENV_STAMP, 'utf8').trim() === want) return venvPython();
  if (!pythonWorks) {
    const base = basePython();
    log(`creating the project's Python environment .venv/ (${base} -m venv)`);
    fs.rmSync(VENV, { recursive: true, force: true });
    run(base, ['-m', 'venv', VENV]);
  }
  log(`installing ${path.relative(ROOT, REQUIREMENTS)} into .venv/ (PyTorch 2 CPU build, transformers, onnxruntime; about a minute)`);
  run(venvPython(), ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '-q', '-r', REQUIREMENTS]);
  fs.writeFileSync(VENV_STAMP, want + '\n');
  return venvPython();
}

function doctor(env) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'doctor', '--json'], { cwd: ROOT, encoding: 'utf8', env });
  if (r.status === 0) return { ok: true, info: JSON.parse(r.stdout.trim().split('\n').pop()) };
  return { ok: false, message: (r.stderr || r.stdout).trim() };
}

const isRoot = () => process.getuid?.() === 0;
const hasAptGet = () => fs.existsSync('/usr/bin/apt-get');

/** apt-get install as root; the lock timeout waits out unattended upgrades. */
export function aptInstall(packages) {
  const missing = packages.filter((p) => spawnSync('dpkg', ['-s', p], { stdio: 'ignore' }).status !== 0);
  if (missing.length === 0) return;
  if (!isRoot() || !hasAptGet()) {
    throw new Error(
      `missing system packages: ${missing.join(' ')}. Install them with: sudo apt-get install -y --no-install-recommends ${missing.join(' ')}`,
    );
  }
  log(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env });
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=600', ...missing], { env });
}

/**
 * The backend's Python: VTRANS_PYTHON when the user gives one, else the project's `.venv/` (created first).
 * `vtrans doctor` checks it imports torch >= 2.1 and explains what it found.
 */
export function ensurePython() {
  if (!process.env.VTRANS_PYTHON) ensureVenv();
  const found = doctor(process.env);
  if (!found.ok) throw new Error(found.message.replace(/^vtrans: /, ''));
  const info = found.info;
  log(`backend Python: ${info.executable} (torch ${info.torch}${info.cuda ? `, CUDA with ${info.gpus} GPU(s)` : ', CPU'})`);
  return info;
}

/** Everything the README commands need before they start. Returns the backend Python's description. */
export function bootstrap() {
  ensureNodeModules();
  build();
  return ensurePython();
}

/** bootstrap() for the npm scripts: on failure the reason, then exit 1. */
export function bootstrapOrExit() {
  try {
    return bootstrap();
  } catch (e) {
    log(e.message);
    process.exit(1);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) bootstrapOrExit();
