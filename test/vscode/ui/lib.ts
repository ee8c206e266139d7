/**
 * What the UI tests share: driving code-server's workbench in chromium like a user (command palette, quick
 * picks, notifications, the status bar, the Runs view, webviews), screenshots of each step in the light and the
 * dark theme, and checks that are collected rather than stopping the walk-through.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FrameLocator, Locator, Page } from 'playwright-core';

export function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this through node test/vscode/run.mjs e2e`);
  return v;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Session {
  readonly t0 = Date.now();
  readonly softFailures: string[] = [];
  private shotNo = 0;
  private theme: 'light' | 'dark' = 'light';

  constructor(
    readonly page: Page,
    readonly out: string,
    readonly name: string,
  ) {
    fs.mkdirSync(out, { recursive: true });
  }

  log(...a: unknown[]): void {
    console.log(`[e2e ${this.name} ${((Date.now() - this.t0) / 1000).toFixed(1)}s]`, ...a);
  }

  /** A check that does not stop the walk-through; any failure fails the test at the end. */
  softCheck(ok: boolean, what: string): void {
    if (!ok) {
      this.softFailures.push(what);
      this.log(`CHECK FAILED: ${what}`);
    }
  }

  /** Switches between the preferred light and dark themes from the command palette. */
  async setTheme(next: 'light' | 'dark'): Promise<void> {
    if (next === this.theme) return;
    const cls = next === 'dark' ? 'vs-dark' : 'vs';
    const applied = () => this.page.evaluate((c) => !!document.querySelector('.monaco-workbench')?.classList.contains(c), cls);
    for (let attempt = 1; !(await applied()); attempt++) {
      // An Enter that reaches the palette after it lost the focus (to a view or a webview) runs nothing: the theme
      // is checked, and the command given again, until it has changed.
      if (attempt > 3) throw new Error(`the ${next} theme was not applied after 3 tries of Toggle between Light/Dark Themes`);
      await this.runCommand('Toggle between Light/Dark Themes');
      await this.page
        .waitForFunction((c) => document.querySelector('.monaco-workbench')?.classList.contains(c), cls, { timeout: 10_000 })
        .catch(async () => {
          this.log(`the theme did not change to ${next} (try ${attempt}); giving the command again`);
          await this.focusWorkbench();
        });
    }
    this.theme = next;
    await sleep(900); // webviews re-style on the theme change message
  }

  /** A screenshot of the step in both themes (back to light afterwards); `both: false` when a picker is open. */
  async shot(name: string, { both = true } = {}): Promise<string> {
    const n = `${this.name}-${String(++this.shotNo).padStart(2, '0')}-${name}`;
    await this.page.screenshot({ path: path.join(this.out, `${n}-light.png`) });
    if (both) {
      await this.setTheme('dark');
      await this.page.screenshot({ path: path.join(this.out, `${n}-dark.png`) });
      await this.setTheme('light');
    }
    return n;
  }

  async openPalette(): Promise<void> {
    // Escape only closes an open picker (in the walkthrough it would go back to the Welcome page).
    if (await this.page.locator('.quick-input-widget').isVisible()) await this.page.keyboard.press('Escape');
    const input = this.page.locator('.quick-input-widget input');
    for (let attempt = 0; ; attempt++) {
      await this.page.keyboard.press('F1');
      try {
        await input.waitFor({ state: 'visible', timeout: attempt < 2 ? 4000 : 15_000 });
        return;
      } catch (e) {
        if (attempt >= 2) throw e;
        // Keys typed into a webview (the walkthrough's media, a panel) may not reach the workbench: focus the
        // editor area's tab bar, then try again.
        await this.page
          .locator('.part.editor .title, .part.statusbar')
          .first()
          .click({ position: { x: 5, y: 5 }, force: true })
          .catch(() => {});
      }
    }
  }

  /** Takes the keyboard focus out of any webview (an iframe) or picker, back to the workbench's document. */
  async focusWorkbench(): Promise<void> {
    if (await this.page.locator('.quick-input-widget').isVisible()) await this.page.keyboard.press('Escape');
    await this.page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur()).catch(() => {});
    await sleep(300);
  }

  async runCommand(title: string): Promise<void> {
    const input = this.page.locator('.quick-input-widget input');
    const row = this.page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
    for (let attempt = 0; ; attempt++) {
      await this.openPalette();
      try {
        await input.fill('>' + title, { timeout: 5000 });
        await row.waitFor({ state: 'visible', timeout: 15_000 });
        // The Enter must reach the palette: pressed elsewhere it would act on the view that took the focus.
        if (!(await input.evaluate((el) => el === document.activeElement))) throw new Error('the palette lost the focus');
        await this.page.keyboard.press('Enter');
        return;
      } catch (e) {
        // The palette closes when focus moves away from it (a notification, a view refreshing as a run ends, a
        // webview taking focus as it renders): give the focus to the workbench itself, then try again.
        if (attempt >= 3) throw new Error(`command "${title}" not run: ${firstLine(e)}`);
        this.log(`the command palette closed before "${title}" ran; opening it again`);
        await this.focusWorkbench();
      }
    }
  }

  /** Waits for a quick pick titled `title`, optionally filters it, and picks the row containing `rowText`. */
  async pick(title: string | RegExp, rowText: string | RegExp, filter?: string, timeout = 60_000): Promise<string> {
    const widget = this.page.locator('.quick-input-widget');
    await widget.locator('.quick-input-title', { hasText: title }).waitFor({ state: 'visible', timeout });
    if (filter !== undefined) await widget.locator('input').fill(filter);
    const row = widget.locator('.quick-input-list .monaco-list-row', { hasText: rowText }).first();
    await row.waitFor({ state: 'visible', timeout });
    const text = (await row.innerText()).replace(/\s+/g, ' ');
    await row.click();
    return text;
  }

  /** The visible rows of the open quick pick (titled `title`), once one matches `ready`. */
  async pickRows(title: string | RegExp, ready: string | RegExp, timeout = 60_000): Promise<string[]> {
    const widget = this.page.locator('.quick-input-widget');
    await widget.locator('.quick-input-title', { hasText: title }).waitFor({ state: 'visible', timeout });
    await widget.locator('.quick-input-list .monaco-list-row', { hasText: ready }).first().waitFor({ state: 'visible', timeout });
    return (await widget.locator('.quick-input-list .monaco-list-row').allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim());
  }

  toast(text: string | RegExp): Locator {
    return this.page.locator('.notification-toast', { hasText: text }).first();
  }

  /** The extension's status bar item (by its id), whatever its text. */
  statusItem(): Locator {
    return this.page.locator('.statusbar-item[id$="vtrans.status"]');
  }

  async statusText(): Promise<string> {
    return (await this.statusItem().innerText()).replace(/\s+/g, ' ').trim();
  }

  async statusLabel(): Promise<string> {
    return (
      (await this.statusItem()
        .locator('a')
        .first()
        .getAttribute('aria-label')
        .catch(() => '')) ?? ''
    );
  }

  /** The active webview's document (VS Code nests it: iframe.webview.ready → #active-frame). */
  webview(): FrameLocator {
    return this.page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
  }

  async closeEditors(): Promise<void> {
    await this.runCommand('View: Close All Editors');
    await this.page
      .locator('iframe.webview')
      .first()
      .waitFor({ state: 'detached', timeout: 10_000 })
      .catch(() => {});
  }

  /** The Runs view's rows (their accessible labels). */
  runRows(): Locator {
    return this.page.locator(
      '.pane-body .monaco-list[aria-label="Runs"] .monaco-list-row, [id="workbench.view.extension.vtrans"] .monaco-list-row',
    );
  }

  async failureShot(): Promise<void> {
    await this.page.screenshot({ path: path.join(this.out, `${this.name}-failure.png`) }).catch(() => {});
  }
}

/** The harness's chromium launcher (an ES module, hence the dynamic import from this CommonJS file). */
export async function launch(opts?: { viewport?: { width: number; height: number } }) {
  const browser = await import('../lib/browser.mjs');
  return browser.launch(opts);
}

/** Processes whose command line matches, started under this code-server (its environment marker). */
export function processesOf(marker: string, re: RegExp): { pid: number; cmd: string }[] {
  const found: { pid: number; cmd: string }[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const env = fs.readFileSync(`/proc/${name}/environ`, 'latin1');
      if (!env.includes(`VTRANS_VSCODE_TEST_RUN=${marker}`)) continue;
      const cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'latin1').split('\0').join(' ').trim();
      if (re.test(cmd)) found.push({ pid: Number(name), cmd });
    } catch {
      // gone
    }
  }
  return found;
}

/** Opens the workspace in the workbench and waits for it. */
export async function openWorkbench(s: Session, base: string, folder: string): Promise<void> {
  await s.page.goto(`${base}/?folder=${encodeURIComponent(folder)}`, { waitUntil: 'domcontentloaded', timeout: 60_000 });
  await s.page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
  await s.page.locator('.statusbar').waitFor({ timeout: 60_000 });
  // The extension's contributions are registered once its activity bar entry is there (the command palette
  // lists the commands known when it opens).
  await s.page
    .locator('.activitybar .action-item a[aria-label^="VTrans"], .activitybar .action-item[aria-label^="VTrans"]')
    .first()
    .waitFor({ timeout: 90_000 });
  await sleep(1000);
}

function firstLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return (
    text
      .split('\n')
      .find((l) => l.trim())
      ?.trim()
      .slice(0, 300) ?? 'unknown error'
  );
}

/** Runs a scenario: the page errors and soft failures decide the exit code. */
export async function scenario(name: string, body: (s: Session) => Promise<void>): Promise<void> {
  const out = path.join(need('VTRANS_E2E_OUT'), 'e2e');
  const browser = await launch();
  const s = new Session(browser.page, out, name);
  const errors: string[] = [];
  browser.page.on('pageerror', (e: Error) => errors.push(e.message));
  let ok = false;
  let failure = '';
  try {
    await body(s);
    ok = s.softFailures.length === 0;
    if (!ok) s.log(`${s.softFailures.length} check(s) failed:\n  - ${s.softFailures.join('\n  - ')}`);
  } catch (e) {
    s.log('FAILED:', (e as Error).stack ?? e);
    failure = `at ${((Date.now() - s.t0) / 1000).toFixed(0)} s: ${firstLine(e)}`;
    await s.failureShot();
  } finally {
    if (errors.length) s.log('page errors (first 10):', errors.slice(0, 10));
    await browser.close();
  }
  if (!failure && !ok) failure = `${s.softFailures.length} check(s) failed: ${s.softFailures.join('; ')}`;
  // The harness puts this line in its summary, which is what a CI log keeps.
  if (failure) fs.writeFileSync(path.join(out, `${name}-failure.txt`), `${failure}\n`);
  s.log(ok ? 'E2E PASS' : 'E2E FAIL', `— screenshots in ${out}`);
  process.exit(ok ? 0 : 1);
}
