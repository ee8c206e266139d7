// Draws media/icon.png (128 × 128, transparent corners) from media/icon.svg in headless chromium:
//   node media/render-icon.mjs
// The head grid is generated here: 5 × 3 heads, the kept ones (filled) form a V, the pruned ones are outlined and crossed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const dir = path.dirname(fileURLToPath(import.meta.url));
const KEPT = new Set(['0,0', '0,4', '1,1', '1,3', '2,2']);
const cell = 18;
const gap = 4;
const x0 = (128 - (5 * cell + 4 * gap)) / 2;
const y0 = 18;
let heads = '';
for (let r = 0; r < 3; r++) {
  for (let c = 0; c < 5; c++) {
    const x = x0 + c * (cell + gap);
    const y = y0 + r * (cell + gap);
    if (KEPT.has(`${r},${c}`)) {
      heads += `<rect x="${x}" y="${y}" width="${cell}" height="${cell}" rx="3.5" fill="#5cc8ff"/>`;
    } else {
      heads += `<rect x="${x + 1}" y="${y + 1}" width="${cell - 2}" height="${cell - 2}" rx="3" fill="none" stroke="#9db7d9" stroke-opacity="0.35" stroke-width="2"/>`;
      heads += `<path d="M${x + 5},${y + 5}L${x + cell - 5},${y + cell - 5}M${x + cell - 5},${y + 5}L${x + 5},${y + cell - 5}" stroke="#9db7d9" stroke-opacity="0.35" stroke-width="2"/>`;
    }
  }
}
const svg = fs
  .readFileSync(path.join(dir, 'icon.svg'), 'utf8')
  .replace('<g id="heads" stroke-linecap="round"/>', `<g id="heads" stroke-linecap="round">${heads}</g>`);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 128, height: 128 }, deviceScaleFactor: 1 });
  await page.setContent(`<!doctype html><html><body style="margin:0;background:transparent">${svg}</body></html>`);
  await page.screenshot({ path: path.join(dir, 'icon.png'), omitBackground: true, clip: { x: 0, y: 0, width: 128, height: 128 } });
} finally {
  await browser.close();
}
console.log(`wrote ${path.join(dir, 'icon.png')}`);
