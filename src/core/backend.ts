/**
 * The backend process: `python -m vtrans.server` spawned with the bundled package on PYTHONPATH, spoken to over
 * JSON-RPC (vscode-jsonrpc) on stdio. stderr lines are the backend's log. Cancelling a request's token sends
 * `$/cancelRequest`; `dispose()` asks for shutdown and kills the process group if it does not leave in time.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  CancellationToken,
  type MessageConnection,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
  createMessageConnection,
  type RequestType,
} from 'vscode-jsonrpc/node';
import { UserError } from './errors';
import { ErrorCodes, type InitializeResult, Notifications, type ProgressParams, Requests } from './protocol';
import { backendEnv } from './python';

export class CancelledError extends Error {
  constructor(what = 'The operation was cancelled.') {
    super(what);
    this.name = 'CancelledError';
  }
}

export class BackendCrashedError extends Error {
  constructor(
    readonly code: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly lastLog: string[],
  ) {
    super(`The VTrans backend stopped unexpectedly (${signal ? `signal ${signal}` : `exit code ${code}`}).`);
    this.name = 'BackendCrashedError';
  }
}

export interface BackendOptions {
  python: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  onLog?: (line: string) => void;
  onExit?: (code: number | null, signal: NodeJS.Signals | null, expected: boolean) => void;
}

export class Backend {
  private readonly connection: MessageConnection;
  private readonly progressHandlers = new Set<(p: ProgressParams) => void>();
  private readonly logHandlers = new Set<(line: string) => void>();
  private readonly log: string[] = [];
  private exited = false;
  private stopping = false;
  private readonly exitPromise: Promise<void>;
  private crash?: BackendCrashedError;
  info?: InitializeResult;

  private constructor(
    readonly process: ChildProcess,
    private readonly options: BackendOptions,
  ) {
    const child = process;
    this.connection = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
    this.connection.onNotification(Notifications.progress, (p) => this.progressHandlers.forEach((h) => h(p)));
    this.connection.onError(() => undefined);
    this.connection.listen();
    let pending = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) this.addLog(line);
    });
    this.exitPromise = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        if (pending) this.addLog(pending);
        this.exited = true;
        if (!this.stopping) this.crash = new BackendCrashedError(code, signal, this.log);
        this.connection.dispose();
        options.onExit?.(code, signal, this.stopping);
        resolve();
      });
    });
  }

  private addLog(line: string): void {
    this.log.push(line);
    if (this.log.length > 50) this.log.shift();
    this.options.onLog?.(line);
    this.logHandlers.forEach((h) => h(line));
  }

  /** Spawns the backend and waits for `initialize`. */
  static async start(options: BackendOptions): Promise<Backend> {
    const child = spawn(options.python, ['-m', 'vtrans.server'], {
      env: backendEnv(options.env ?? process.env),
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      // Its own process group, so that stopping it also stops any workers it started (torchrun).
      detached: process.platform !== 'win32',
    });
    const spawned = await new Promise<Error | undefined>((resolve) => {
      child.once('spawn', () => resolve(undefined));
      child.once('error', (e) => resolve(e));
    });
    if (spawned)
      throw new UserError(
        `Cannot start the backend with ${options.python} (${spawned.message}).`,
        'Set vtrans.pythonPath (or VTRANS_PYTHON) to a Python with PyTorch.',
      );
    const backend = new Backend(child, options);
    backend.info = await backend.request(Requests.initialize, {});
    return backend;
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get running(): boolean {
    return !this.exited;
  }

  onProgress(handler: (p: ProgressParams) => void): { dispose(): void } {
    this.progressHandlers.add(handler);
    return { dispose: () => this.progressHandlers.delete(handler) };
  }

  /** The backend's log lines (stderr) while the handler is subscribed, e.g. to keep a run's log.txt. */
  onLog(handler: (line: string) => void): { dispose(): void } {
    this.logHandlers.add(handler);
    return { dispose: () => this.logHandlers.delete(handler) };
  }

  /** Sends a request; maps backend errors to UserError / CancelledError / BackendCrashedError. */
  async request<P, R>(type: RequestType<P, R, void>, params: P, token: CancellationToken = CancellationToken.None): Promise<R> {
    if (this.exited) throw this.crash ?? new BackendCrashedError(null, null, this.log);
    const exit = this.exitPromise.then(() => {
      throw this.crash ?? new CancelledError('The backend was stopped.');
    });
    try {
      const sent = this.connection.sendRequest<R>(type.method, params, token);
      return await Promise.race([sent, exit]);
    } catch (e) {
      // A backend that died takes its pending requests with it: say so, rather than "connection disposed".
      if (this.exited && this.crash) throw this.crash;
      if (e instanceof ResponseError) {
        // Params the contract refused name the field and what it must be: as fixable as a user error.
        if (e.code === ErrorCodes.UserError || e.code === ErrorCodes.InvalidParams) throw new UserError(e.message);
        if (e.code === ErrorCodes.RequestCancelled) throw new CancelledError(e.message);
        throw new Error(`backend ${type.method} failed: ${e.message}`);
      }
      if (token.isCancellationRequested) throw new CancelledError();
      throw e;
    }
  }

  /** Graceful shutdown, then SIGKILL of the process group after `graceMs`. */
  async dispose(graceMs = 5000): Promise<void> {
    if (this.exited) return;
    this.stopping = true;
    const timer = setTimeout(() => this.kill(), graceMs);
    try {
      await Promise.race([this.connection.sendRequest(Requests.shutdown), this.exitPromise]);
      if (!this.exited) await this.connection.sendNotification(Notifications.exit);
    } catch {
      this.kill();
    }
    await this.exitPromise;
    clearTimeout(timer);
  }

  /** Immediate stop of the process group (the backend and anything it spawned). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.exited || this.process.pid === undefined) return;
    this.stopping = true;
    try {
      if (process.platform !== 'win32') process.kill(-this.process.pid, signal);
      else this.process.kill(signal);
    } catch {
      this.process.kill(signal);
    }
  }
}
