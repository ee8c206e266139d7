// Shared first step of `npm run demo` and `npm test` on a fresh machine: node modules, the bundle, and a
// Python with PyTorch for the backend. Uses only Node's standard library, since it runs before `npm ci`.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const STAMP = path.join(ROOT, 'node_modules', '.vtrans-lock-hash');

export function log(msg) {
  process.stderr.write(`[bootstrap] ${msg}\n`);
}

/** Runs a command with inherited output; throws on failure. */
export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: ROOT, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
}

function lockHash() {
  return createHash('sha256').update(fs.readFileSync(path.join(ROOT, 'package-lock.json'))).digest('hex');
}

/** `npm ci` when node_modules is missing or was installed from another package-lock.json. */
export function ensureNodeModules() {
  const want = lockHash();
  if (fs.existsSync(STAMP) && fs.readFileSync(STAMP, 'utf8').trim() === want) return;
  log('installing node modules (npm ci)');
  // The env var covers npm versions that ignore the project's .npmrc; onnxruntime-node's CPU binaries ship in the package.
  run('npm', ['ci', '--no-audit', '--no-fund'], { env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' } });
  fs.writeFileSync(STAMP, want + '\n');
}

export function build() {
  run(process.execPath, [path.join(ROOT, 'esbuild.mjs')]);
}

function doctor() {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'doctor', '--json'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status === 0) return { ok: true, info: JSON.parse(r.stdout.trim().split('\n').pop()) };
  return { ok: false, message: (r.stderr || r.stdout).trim() };
}

const isRoot = () => process.getuid?.() === 0;
const hasAptGet = () => fs.existsSync('/usr/bin/apt-get');

export const DEBIAN_PACKAGES = ['python3-torch', 'python3-numpy', 'python3-onnx', 'python3-pytest', 'libopenblas0-pthread'];

/** apt-get install as root, once per process; the lock timeout waits out unattended upgrades. */
export function aptInstall(packages) {
  const missing = packages.filter((p) => spawnSync('dpkg', ['-s', p], { stdio: 'ignore' }).status !== 0);
  if (missing.length === 0) return;
  if (!isRoot() || !hasAptGet()) {
    throw new Error(`missing system packages: ${missing.join(' ')}. Install them with: sudo apt-get install -y --no-install-recommends ${missing.join(' ')}`);
  }
  log(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env });
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=600', ...missing], { env });
}

/** A Python that imports torch ≥ 1.13 (VTRANS_PYTHON, /usr/bin/python3, python3), installing Debian's when possible. */
export function ensurePython() {
  let found = doctor();
  if (!found.ok && isRoot() && hasAptGet()) {
    aptInstall(DEBIAN_PACKAGES);
    found = doctor();
  }
  if (!found.ok) {
    throw new Error(`${found.message.replace(/^vtrans: /, '')}`);
  }
  log(`backend Python: ${found.info.executable} (torch ${found.info.torch}${found.info.cuda ? ', CUDA' : ', CPU'})`);
  // The pytest layer and onnx checks want these too; they come with the same Debian packages.
  if ((!found.info.numpy || !found.info.onnx) && isRoot() && hasAptGet() && found.info.executable === '/usr/bin/python3') aptInstall(DEBIAN_PACKAGES);
  return found.info;
}

/** Everything both README commands need before they start. Returns the backend Python's description. */
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

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    bootstrap();
  } catch (e) {
    log(e.message);
    process.exit(1);
  }
}
