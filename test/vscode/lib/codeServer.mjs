// code-server for one test run: its own user-data and extensions folders under the cache folder, the
// extension installed from a .vsix, settings written before start, a free port on 127.0.0.1, its own
// process group (killed as a whole at the end, also on failure or timeout) and an environment marker so
// that anything it leaves behind (e.g. a backend in its own process group) is found and stopped.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { CACHE, LOGS, step } from './tools.mjs';

export const BASE_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'git.enabled': false,
  'git.openRepositoryInParentFolders': 'never',
  'window.restoreWindows': 'none',
  'files.hotExit': 'off',
  'chat.commandCenter.enabled': false,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
};

/** A fresh profile (user data + extensions) named after the run. */
export function makeProfile(name, { settings = {}, trust = 'disabled' } = {}) {
  const dir = path.join(CACHE, 'profiles', name);
  fs.rmSync(dir, { recursive: true, force: true });
  const userData = path.join(dir, 'user-data');
  const extensions = path.join(dir, 'extensions');
  fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
  fs.mkdirSync(extensions, { recursive: true });
  const trustSettings =
    trust === 'enabled'
      ? {
          'security.workspace.trust.enabled': true,
          'security.workspace.trust.startupPrompt': 'never',
          'security.workspace.trust.emptyWindow': false,
          'security.workspace.trust.untrustedFiles': 'open',
        }
      : {};
  fs.writeFileSync(
    path.join(userData, 'User', 'settings.json'),
    JSON.stringify({ ...BASE_SETTINGS, ...trustSettings, ...settings }, null, 2) + '\n',
  );
  return { name, dir, userData, extensions, trust };
}

function baseArgs(profile) {
  return ['--config', '/dev/null', '--user-data-dir', profile.userData, '--extensions-dir', profile.extensions];
}

export function installVsix(codeServer, profile, vsix, env) {
  const r = spawnSync(process.execPath, [codeServer, ...baseArgs(profile), '--install-extension', vsix, '--force'], {
    encoding: 'utf8',
    env,
    timeout: 180_000,
  });
  const out = `${r.stdout}${r.stderr}`.trim();
  if (r.status !== 0 || !/successfully installed/i.test(out))
    throw new Error(
      `code-server --install-extension ${path.basename(vsix)} failed (exit ${r.status ?? r.signal}):\n${out.split('\n').slice(-15).join('\n')}`,
    );
  const list = spawnSync(process.execPath, [codeServer, ...baseArgs(profile), '--list-extensions', '--show-versions'], {
    encoding: 'utf8',
    env,
  }).stdout.trim();
  return list.split('\n').filter(Boolean);
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitHealthy(base, child, logFile, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    try {
      const r = await fetch(`${base}/healthz`);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  const tail = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').slice(-25).join('\n') : '';
  throw new Error(
    `code-server did not become healthy within ${ms / 1000} s (exit ${child.exitCode ?? child.signalCode ?? 'none'}); last log lines:\n${tail}`,
  );
}

/** Processes whose environment carries the marker (those started by this code-server, wherever they went). */
export function markedProcesses(marker) {
  const found = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const env = fs.readFileSync(`/proc/${name}/environ`, 'latin1');
      if (!env.includes(`VTRANS_VSCODE_TEST_RUN=${marker}`)) continue;
      const cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'latin1').split('\0').join(' ').trim();
      found.push({ pid: Number(name), cmd });
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * Starts code-server on a free port with `folder` open. Returns { base, port, pid, logFile, stop() }.
 * trust 'disabled' passes --disable-workspace-trust; 'enabled' leaves trust on (the profile's settings keep
 * the startup prompt away, so the folder opens in restricted mode).
 */
export async function startCodeServer(codeServer, profile, { folder, env, logName }) {
  const port = await freePort();
  const marker = randomBytes(6).toString('hex');
  fs.mkdirSync(LOGS, { recursive: true });
  const logFile = path.join(LOGS, `code-server-${logName ?? profile.name}.log`);
  const out = fs.openSync(logFile, 'w');
  const args = [
    codeServer,
    ...baseArgs(profile),
    '--bind-addr',
    `127.0.0.1:${port}`,
    '--auth',
    'none',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-getting-started-override',
    '--disable-file-downloads',
    ...(profile.trust === 'enabled' ? [] : ['--disable-workspace-trust']),
    folder,
  ];
  // detached: a new session and process group (setsid), so the whole tree is stopped together.
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...env, VTRANS_VSCODE_TEST_RUN: marker },
  });
  fs.closeSync(out);
  const base = `http://127.0.0.1:${port}`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return [];
    stopped = true;
    const group = child.pid;
    try {
      process.kill(-group, 'SIGTERM');
    } catch {
      // already gone
    }
    const end = Date.now() + 5000;
    while (Date.now() < end && alive(group)) await new Promise((r) => setTimeout(r, 100));
    try {
      process.kill(-group, 'SIGKILL');
    } catch {
      // already gone
    }
    // Anything it started in another process group (the backend has its own) is stopped too, and reported.
    await new Promise((r) => setTimeout(r, 300));
    const left = markedProcesses(marker);
    for (const p of left) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    return left;
  };
  const onExit = () => {
    if (!stopped && child.pid) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  };
  process.once('exit', onExit);
  try {
    await waitHealthy(base, child, logFile, 60_000);
  } catch (e) {
    await stop();
    throw e;
  }
  step(`code-server ${profile.name} on ${base} (pid ${child.pid}, log ${path.relative(process.cwd(), logFile)})`);
  return { base, port, pid: child.pid, marker, logFile, stop, markedProcesses: () => markedProcesses(marker) };
}
