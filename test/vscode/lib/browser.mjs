// Headless Debian chromium driven by the project's playwright-core (the flags of the recipe in
// ../shared/vscode-e2e: no sandbox as root, no GPU, no background networking). A fresh profile per run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium } from 'playwright-core';
import { CACHE, CHROMIUM } from './tools.mjs';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

export async function launch({ viewport = { width: 1400, height: 900 }, colorScheme = 'light' } = {}) {
  const root = path.join(CACHE, 'tmp');
  fs.mkdirSync(root, { recursive: true });
  const profile = fs.mkdtempSync(path.join(root, 'chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    colorScheme,
    args: CHROMIUM_ARGS,
  });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  return {
    ctx,
    page,
    async close() {
      await ctx.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Console text without the workbench's %c styling arguments. */
export function consoleText(msg) {
  return msg
    .text()
    .replace(/%c/g, '')
    .replace(/\s*(color|background|font-weight|font-style|padding|border-radius): [^;]*;?/g, '')
    .trim();
}

/** Texts of the notification toasts and the notification center, as shown. */
export async function notificationTexts(page) {
  return page
    .$$eval('.notification-toast .notification-list-item, .notifications-center .notification-list-item', (els) =>
      els.map((e) => {
        const msg = e.querySelector('.notification-list-item-message');
        const sev = e.querySelector('.notification-list-item-icon');
        return {
          text: (msg?.textContent ?? '').trim(),
          severity: sev ? ([...sev.classList].find((c) => /codicon-(error|warning|info)/.test(c))?.replace('codicon-', '') ?? '') : '',
        };
      }),
    )
    .catch(() => []);
}
