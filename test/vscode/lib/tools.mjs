// The tools the VS Code layers need, installed once into the cache folder (default <repo>/.vscode-test/,
// VTRANS_VSCODE_CACHE overrides): code-server (VS Code 1.100.3 server, Node 20 extension host) with its own
// package.json, and from Debian: chromium (Playwright drives it), ripgrep (seeds @vscode/ripgrep's download),
// libkrb5-dev + build-essential (code-server's postinstall compiles native modules).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { aptInstall, nativeBuildEnv, ROOT } from '../../../scripts/bootstrap.mjs';

export { ROOT };
export const CACHE = path.resolve(process.env.VTRANS_VSCODE_CACHE || path.join(ROOT, '.vscode-test'));
/** The last code-server line whose engines.node accepts Node 20 (4.103+ need 22). */
export const CODE_SERVER_VERSION = '4.100.3';
/** code-server 4.100.3 depends on @vscode/ripgrep 1.15.11, whose postinstall downloads this asset from GitHub. */
const RIPGREP = { packageVersion: '1.15.11', tag: 'v13.0.0-10' };
export const TOOLS = path.join(CACHE, 'tools');
export const LOGS = path.join(CACHE, 'logs');
export const CHROMIUM = process.env.VTRANS_CHROMIUM || '/usr/bin/chromium';

const t0 = Date.now();
export function step(msg) {
  process.stderr.write(`=== [vscode-test ${((Date.now() - t0) / 1000).toFixed(0)}s] ${msg}\n`);
}

/** Environment that keeps everything the tools write inside the cache folder (nothing lands in $HOME). */
export function cacheEnv(extra = {}) {
  const dirs = {
    TMPDIR: path.join(CACHE, 'tmp'),
    XDG_CONFIG_HOME: path.join(CACHE, 'xdg', 'config'),
    XDG_DATA_HOME: path.join(CACHE, 'xdg', 'data'),
    XDG_CACHE_HOME: path.join(CACHE, 'xdg', 'cache'),
    XDG_STATE_HOME: path.join(CACHE, 'xdg', 'state'),
    npm_config_cache: process.env.VTRANS_NPM_CACHE || path.join(CACHE, 'npm-cache'),
  };
  for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });
  return { ...process.env, ...dirs, ...extra };
}

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const dpkgHas = (pkg) => spawnSync('dpkg', ['-s', pkg], { stdio: 'ignore' }).status === 0;

/** Debian's chromium and ripgrep (and, to compile code-server's native modules, libkrb5-dev and a C++ toolchain). */
export function ensureSystemPackages(needBuild) {
  const missing = [];
  if (!fs.existsSync(CHROMIUM)) missing.push('chromium');
  if (!has('rg')) missing.push('ripgrep');
  if (needBuild) {
    if (!dpkgHas('libkrb5-dev') && !fs.existsSync('/usr/include/gssapi/gssapi.h')) missing.push('libkrb5-dev');
    if (!has('make') || !has('g++')) missing.push('build-essential');
  }
  if (missing.length === 0) return;
  step(`system packages: ${missing.join(' ')}`);
  aptInstall(missing);
}

function ripgrepAsset() {
  const arch = { x64: 'x86_64-unknown-linux-musl', arm64: 'aarch64-unknown-linux-musl' }[process.arch];
  return arch && `ripgrep-${RIPGREP.tag}-${arch}.tar.gz`;
}

/** @vscode/ripgrep's postinstall fetches rg from api.github.com; a tarball of Debian's rg in its cache stands in. */
function seedRipgrepCache(env) {
  const asset = ripgrepAsset();
  if (!asset || process.platform !== 'linux') return;
  const dir = path.join(env.TMPDIR, `vscode-ripgrep-cache-${RIPGREP.packageVersion}`);
  if (fs.existsSync(path.join(dir, asset))) return;
  const rg = spawnSync('sh', ['-c', 'command -v rg'], { encoding: 'utf8' }).stdout.trim();
  const stage = path.join(dir, 'stage');
  fs.mkdirSync(stage, { recursive: true });
  fs.copyFileSync(rg, path.join(stage, 'rg'));
  fs.chmodSync(path.join(stage, 'rg'), 0o755);
  const r = spawnSync('tar', ['-czf', path.join(dir, asset), '-C', stage, 'rg'], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('could not seed the ripgrep download cache');
}

export function codeServerBin() {
  return path.join(TOOLS, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
}

const stampFile = () => path.join(TOOLS, '.installed');
const stampText = () => `code-server@${CODE_SERVER_VERSION} node-abi-${process.versions.modules} ${process.platform}-${process.arch}\n`;

const codeServerInstalled = () =>
  fs.existsSync(stampFile()) && fs.readFileSync(stampFile(), 'utf8') === stampText() && fs.existsSync(codeServerBin());

/** The system packages of every layer (chromium for the webview unit tests too), before any layer runs. */
export function ensureAllSystemPackages() {
  ensureSystemPackages(!codeServerInstalled());
}

/** Installs what is missing; returns the paths the runners need. */
export function ensureTools() {
  const installed = codeServerInstalled();
  ensureSystemPackages(!installed);
  const env = cacheEnv();
  if (!installed) {
    step(
      `installing code-server ${CODE_SERVER_VERSION} into ${path.relative(ROOT, TOOLS) || TOOLS} (compiles native modules; a few minutes)`,
    );
    seedRipgrepCache(env);
    fs.mkdirSync(TOOLS, { recursive: true });
    fs.mkdirSync(LOGS, { recursive: true });
    fs.writeFileSync(
      path.join(TOOLS, 'package.json'),
      JSON.stringify(
        {
          name: 'vtrans-vscode-test-tools',
          private: true,
          description: 'code-server for the VS Code test layers (test/vscode/)',
          dependencies: { 'code-server': CODE_SERVER_VERSION },
        },
        null,
        2,
      ) + '\n',
    );
    const logFile = path.join(LOGS, 'npm-tools.log');
    const out = fs.openSync(logFile, 'w');
    const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts=false'], {
      cwd: TOOLS,
      stdio: ['ignore', out, out],
      env: {
        ...nativeBuildEnv(env),
        // code-server's postinstall refuses to run as root without unsafe_perm; node-pty's calls `npx node-gyp`.
        npm_config_unsafe_perm: 'true',
        npm_config_yes: 'true',
        npm_config_ignore_scripts: 'false',
        npm_config_update_notifier: 'false',
      },
    });
    fs.closeSync(out);
    if (r.status !== 0 || !fs.existsSync(codeServerBin())) {
      const tail = fs.readFileSync(logFile, 'utf8').split('\n').slice(-40).join('\n');
      throw new Error(`installing code-server failed (exit ${r.status ?? r.signal}); last lines of ${logFile}:\n${tail}`);
    }
    fs.writeFileSync(stampFile(), stampText());
  }
  const version = spawnSync(process.execPath, [codeServerBin(), '--config', '/dev/null', '--version'], { encoding: 'utf8', env })
    .stdout.trim()
    .split('\n')
    .pop();
  step(`code-server ${version}`);
  return { codeServer: codeServerBin(), chromium: CHROMIUM, env };
}

export function tmpName(prefix) {
  return fs.mkdtempSync(path.join(cacheEnv().TMPDIR || os.tmpdir(), prefix));
}
