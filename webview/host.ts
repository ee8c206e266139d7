/**
 * Where the views run: inside a VS Code webview (messages to the extension through `acquireVsCodeApi`) or in
 * a standalone report.html (no extension: the report is embedded, files are downloaded, extension-only
 * actions are hidden).
 */
import type { FromWebview, SaveFormat, WebviewState } from '../src/core/webviewProtocol';

interface VsCodeApi {
  postMessage(msg: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare global {
  // Provided by VS Code in webviews (and by the tests' page); absent in a plain browser.
  function acquireVsCodeApi(): VsCodeApi;
}

export interface Host {
  /** True in report.html: no extension behind the page. */
  readonly standalone: boolean;
  post(msg: FromWebview): void;
  getState(): WebviewState | null;
  setState(state: WebviewState): void;
  /** Saves a file the view produced: the extension shows a save dialog, the standalone page downloads it. */
  save(format: SaveFormat, name: string, content: string, encoding: 'utf8' | 'base64'): void;
}

const MIME: Record<SaveFormat, string> = {
  png: 'image/png',
  svg: 'image/svg+xml',
  csv: 'text/csv',
  md: 'text/markdown',
  html: 'text/html',
};

class VsCodeHost implements Host {
  readonly standalone = false;
  constructor(private readonly api: VsCodeApi) {}
  post(msg: FromWebview): void {
    this.api.postMessage(msg);
  }
  getState(): WebviewState | null {
    const s = this.api.getState();
    return s && typeof s === 'object' ? (s as WebviewState) : null;
  }
  setState(state: WebviewState): void {
    this.api.setState(state);
    this.post({ type: 'state', state });
  }
  save(format: SaveFormat, name: string, content: string, encoding: 'utf8' | 'base64'): void {
    this.post({ type: 'saveFile', format, suggestedName: name, content, encoding });
  }
}

class StandaloneHost implements Host {
  readonly standalone = true;
  private state: WebviewState | null = null;
  /** Last saved file, for tests and for the page's own "download again" (the browser handles the rest). */
  lastSaved: { name: string; bytes: number } | null = null;
  post(_msg: FromWebview): void {}
  getState(): WebviewState | null {
    return this.state;
  }
  setState(state: WebviewState): void {
    this.state = state;
  }
  save(format: SaveFormat, name: string, content: string, encoding: 'utf8' | 'base64'): void {
    const data = encoding === 'base64' ? Uint8Array.from(atob(content), (c) => c.charCodeAt(0)) : content;
    const blob = new Blob([data], { type: MIME[format] });
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    a.hidden = true;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    this.lastSaved = { name, bytes: blob.size };
  }
}

export function createHost(): Host {
  return typeof acquireVsCodeApi === 'function' ? new VsCodeHost(acquireVsCodeApi()) : new StandaloneHost();
}
