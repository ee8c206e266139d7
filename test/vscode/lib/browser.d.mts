// Types of browser.mjs for the TypeScript UI test.
import type { BrowserContext, ConsoleMessage, Page } from 'playwright-core';

export const CHROMIUM_ARGS: string[];
export function launch(opts?: {
  viewport?: { width: number; height: number };
  colorScheme?: 'light' | 'dark';
}): Promise<{ ctx: BrowserContext; page: Page; close(): Promise<void> }>;
export function consoleText(msg: ConsoleMessage): string;
export function notificationTexts(page: Page): Promise<{ text: string; severity: string }[]>;
