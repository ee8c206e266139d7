/**
 * The backend's lifecycle in the editor: started on demand with the resolved interpreter, logs in a
 * LogOutputChannel, restarted on the next request after a crash (the run it was training is marked failed,
 * its checkpoints kept for resume), stopped on deactivate or when the interpreter setting changes.
 */
import * as vscode from 'vscode';
import { Backend } from '../core/backend';
import type { PythonInfo } from '../core/python';
import { markStopped } from '../core/runs';
import type { BackendState } from './api';
import { resolveInterpreter, showMissingTorch } from './interpreter';
import { requireTrust } from './trust';

export class BackendManager implements vscode.Disposable {
  private backend: Backend | undefined;
  private starting: Promise<Backend> | undefined;
  private python: PythonInfo | undefined;
  private starts = 0;
  /** Runs the current backend is training, to mark failed if it dies. */
  private readonly activeRuns = new Set<string>();
  private readonly onDidChangeEmitter = new vscode.EventEmitter<void>();
  readonly onDidChange = this.onDidChangeEmitter.event;
  private readonly onDidCrashEmitter = new vscode.EventEmitter<{ runs: string[]; message: string }>();
  readonly onDidCrash = this.onDidCrashEmitter.event;

  constructor(private readonly log: vscode.LogOutputChannel) {}

  state(): BackendState | undefined {
    if (!this.backend) return undefined;
    return {
      pid: this.backend.pid,
      python: this.python?.executable ?? '',
      running: this.backend.running,
      starts: this.starts,
      torch: this.backend.info?.torch,
      device: this.backend.info?.device,
    };
  }

  /** The interpreter the backend runs with (its torch, CUDA and GPU names), once it was started. */
  pythonInfo(): PythonInfo | undefined {
    return this.python;
  }

  /** The backend when it is running; never starts one. */
  running(): Backend | undefined {
    return this.backend?.running ? this.backend : undefined;
  }

  /** The running backend, started if needed. Undefined (with the reason shown) when it cannot start. */
  async get(): Promise<Backend | undefined> {
    if (!(await requireTrust('start the Python backend'))) return undefined;
    if (this.backend?.running) return this.backend;
    try {
      this.starting ??= this.start();
      return await this.starting;
    } catch (e) {
      await showMissingTorch(e as Error);
      return undefined;
    } finally {
      this.starting = undefined;
    }
  }

  private async start(): Promise<Backend> {
    this.python = await resolveInterpreter(this.log);
    this.log.info(
      `starting the backend with ${this.python.executable} (torch ${this.python.torch}${this.python.cuda ? `, ${this.python.gpus} GPU(s)` : ', CPU'})`,
    );
    const backend = await Backend.start({
      python: this.python.executable,
      env: { ...process.env, VTRANS_LOG_LEVEL: 'INFO' },
      onLog: (line) => this.log.info(`[backend] ${line}`),
      onExit: (code, signal, expected) => this.exited(backend, code, signal, expected),
    });
    this.backend = backend;
    this.starts++;
    this.log.info(
      `backend ready (pid ${backend.pid}, torch ${backend.info?.torch}, device ${backend.info?.device}, ${backend.info?.threads} threads)`,
    );
    this.onDidChangeEmitter.fire();
    return backend;
  }

  private exited(backend: Backend, code: number | null, signal: NodeJS.Signals | null, expected: boolean): void {
    if (this.backend !== backend) return;
    this.backend = undefined;
    this.onDidChangeEmitter.fire();
    if (expected) {
      this.log.info('backend stopped');
      return;
    }
    const why = signal ? `signal ${signal}` : `exit code ${code}`;
    this.log.error(`backend stopped unexpectedly (${why}); it restarts on the next request`);
    const runs = [...this.activeRuns];
    this.activeRuns.clear();
    void Promise.all(runs.map((run) => this.markStopped(run, 'failed', `The backend stopped unexpectedly (${why}).`))).then(() =>
      this.onDidCrashEmitter.fire({ runs, message: why }),
    );
  }

  /** Marks a run as trained by the current backend (so a crash marks it failed). */
  track(runDir: string): vscode.Disposable {
    this.activeRuns.add(runDir);
    return new vscode.Disposable(() => this.activeRuns.delete(runDir));
  }

  async restart(): Promise<Backend | undefined> {
    await this.stop();
    return this.get();
  }

  /** Stops the backend; runs it was training are recorded as stopped (failed, or as `status` says). */
  async stop(status: 'failed' | 'cancelled' = 'failed', reason = 'The backend was stopped.'): Promise<void> {
    const b = this.backend;
    if (!b) return;
    const runs = [...this.activeRuns];
    this.activeRuns.clear();
    await b.dispose();
    await Promise.all(runs.map((run) => this.markStopped(run, status, reason)));
  }

  /** Records in run.json that a run's backend is gone, through the backend's own run module (its one writer). */
  async markStopped(runDir: string, status: 'failed' | 'cancelled', reason: string): Promise<void> {
    if (!this.python) return;
    const changed = await markStopped(this.python.executable, runDir, status, reason);
    if (changed) this.log.info(`${runDir}: marked ${status} (${reason})`);
  }

  dispose(): void {
    void this.stop();
    this.onDidChangeEmitter.dispose();
    this.onDidCrashEmitter.dispose();
  }
}
