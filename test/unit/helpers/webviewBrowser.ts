/**
 * Renders the real webview bundle (dist/webview.js from `node esbuild.mjs`) in Debian's headless chromium
 * through playwright-core, in the same HTML shell and CSP the extension serves (src/extension/panels/html.ts).
 * The only stand-in is VS Code's `acquireVsCodeApi` (the webview↔extension boundary): it records what the
 * page posts and keeps its state; the test sends extension messages with `window.postMessage`.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { renderWebviewHtml } from '../../../src/extension/panels/html';
import type { FromWebview, PanelKind, ToWebview, WebviewState } from '../../../src/core/webviewProtocol';

export const ROOT = path.resolve(__dirname, '../../..');
export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ORIGIN = 'https://vtrans-webview.test';
const BUNDLE = path.join(ROOT, 'dist', 'webview.js');

function newestMtime(dir: string): number {
  let t = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return t;
}

/** Runs `node esbuild.mjs` when dist/webview.js is missing or older than its sources. */
export function ensureBundle(): void {
  const src = Math.max(
    newestMtime(path.join(ROOT, 'webview')),
    newestMtime(path.join(ROOT, 'src', 'core')),
    fs.statSync(path.join(ROOT, 'esbuild.mjs')).mtimeMs,
  );
  if (fs.existsSync(BUNDLE) && fs.statSync(BUNDLE).mtimeMs >= src) return;
  const r = spawnSync(process.execPath, [path.join(ROOT, 'esbuild.mjs')], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`node esbuild.mjs failed (${r.status}):\n${r.stderr}${r.stdout}`);
}

export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} not found: the webview tests render the panels in Debian's chromium. Install it (sudo apt-get install -y chromium) or run \`npm test\`, whose bootstrap installs it.`,
    );
  }
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

export interface PanelPage {
  page: Page;
  context: BrowserContext;
  /** Messages the webview posted to the (fake) extension, in order. */
  posted(): Promise<FromWebview[]>;
  /** The state the webview last stored with setState. */
  state(): Promise<WebviewState | null>;
  /** Delivers an extension → webview message. */
  send(msg: ToWebview): Promise<void>;
  /** Console errors, uncaught exceptions and CSP violations seen so far. */
  errors: string[];
  /** Requests the page tried to make outside the webview's own resources. */
  blocked: string[];
  close(): Promise<void>;
}

export interface OpenOptions {
  theme?: 'light' | 'dark';
  width?: number;
  height?: number;
  /** State as VS Code would restore it after a reload. */
  state?: WebviewState | null;
}

const MIME: Record<string, string> = {
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.map': 'application/json',
  '.ttf': 'font/ttf',
  '.png': 'image/png',
};

export async function openPanel(browser: Browser, panel: PanelKind, o: OpenOptions = {}): Promise<PanelPage> {
  const context = await browser.newContext({
    viewport: { width: o.width ?? 1200, height: o.height ?? 900 },
    colorScheme: o.theme ?? 'light',
  });
  const page = await context.newPage();
  const errors: string[] = [];
  const blocked: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  const html = renderWebviewHtml({
    panel,
    cspSource: ORIGIN,
    nonce: 'testnonce0123456789',
    scriptUri: `${ORIGIN}/dist/webview.js`,
    styleUri: `${ORIGIN}/media/webview.css`,
    title: panel,
  });
  await context.route('**/*', async (route) => {
    const url = new URL(route.request().url());
    if (url.origin !== ORIGIN) {
      blocked.push(route.request().url());
      return route.abort();
    }
    if (url.pathname === '/panel.html') return route.fulfill({ status: 200, contentType: 'text/html', body: html });
    const file = path.join(ROOT, url.pathname);
    const allowed = [path.join(ROOT, 'dist') + path.sep, path.join(ROOT, 'media') + path.sep].some((d) => file.startsWith(d));
    if (!allowed || !fs.existsSync(file)) return route.fulfill({ status: 404, body: 'not found' });
    return route.fulfill({
      status: 200,
      contentType: MIME[path.extname(file)] ?? 'application/octet-stream',
      body: fs.readFileSync(file),
      headers: { 'access-control-allow-origin': '*' },
    });
  });
  // A string, not a function: tsx's transform would add helpers to a function body that the page lacks.
  await page.addInitScript(`(() => {
    const theme = ${JSON.stringify(o.theme ?? 'light')};
    window.__posted = [];
    window.__state = ${JSON.stringify(o.state ?? null)};
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sample));
    window.acquireVsCodeApi = () => {
      // What VS Code does before the page script runs: theme class on <body>, --vscode-* variables on <html>
      // (the test borrows the standalone fallbacks of media/webview.css for the values).
      document.documentElement.classList.add('vt-standalone');
      document.body.classList.add(theme === 'dark' ? 'vscode-dark' : 'vscode-light');
      return {
        postMessage: (m) => window.__posted.push(JSON.parse(JSON.stringify(m))),
        getState: () => window.__state,
        setState: (s) => { window.__state = JSON.parse(JSON.stringify(s)); },
      };
    };
  })();`);
  await page.goto(`${ORIGIN}/panel.html`);
  await page.waitForFunction(
    () => ((window as unknown as { __posted: { type: string }[] }).__posted ?? []).some((m) => m.type === 'ready'),
    undefined,
    { timeout: 15_000 },
  );
  const pp: PanelPage = {
    page,
    context,
    errors,
    blocked,
    posted: () => page.evaluate(() => (window as unknown as { __posted: FromWebview[] }).__posted),
    state: () => page.evaluate(() => (window as unknown as { __state: WebviewState | null }).__state),
    send: (msg) => page.evaluate((m) => window.postMessage(m, '*'), msg),
    close: () => context.close(),
  };
  // CSP violations are collected in the page; surface them with the other errors.
  const origClose = pp.close;
  pp.close = async () => {
    const csp = await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp).catch(() => [] as string[]);
    errors.push(...csp.map((c) => `csp: ${c}`));
    await origClose();
  };
  return pp;
}

/** CSP violations recorded so far in a page. */
export function cspViolations(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { __csp: string[] }).__csp ?? []);
}

/** Appends a benchmark figure to test-output/webview-timings.json (a record, never an assertion). */
export function recordTiming(entry: Record<string, unknown>): void {
  const dir = path.join(ROOT, 'test-output');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'webview-timings.json');
  let all: Record<string, unknown>[] = [];
  try {
    all = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>[];
  } catch {
    all = [];
  }
  all.push({ ...entry, at: new Date().toISOString() });
  fs.writeFileSync(file, JSON.stringify(all.slice(-200), null, 2) + '\n');
}
