/**
 * Interactive-latency figures for BENCHMARKS.md: the heatmap grid of large models drawn in headless chromium
 * (goal ≤ 300 ms) and the backend's budget prediction behind live budget tuning (goal ≤ 2 s on the demo).
 */
import type { Backend } from '../src/core/backend';
import { median } from '../src/core/onnxEval';
import { Requests } from '../src/core/protocol';
import { gpt2xlReport, llamaReport } from '../test/fixtures/reports/generate';
import { ensureBundle, launchChromium, openPanel } from '../test/unit/helpers/webviewBrowser';

export async function heatmapRenderTimes(
  repeats = 5,
): Promise<Array<{ model: string; layers: number; heads: number; medianMs: number; maxMs: number }>> {
  ensureBundle();
  const browser = await launchChromium();
  const out = [];
  try {
    for (const [model, make] of [
      ['LLaMA-2-7B 32 × 32', llamaReport],
      ['GPT-2 XL 48 × 25', gpt2xlReport],
    ] as const) {
      const report = make();
      const times: number[] = [];
      for (let i = 0; i < repeats; i++) {
        const p = await openPanel(browser, 'heatmaps', { width: 1400 });
        try {
          await p.send({ type: 'show', panel: 'heatmaps', runDir: `/runs/${report.runId}`, report, budget: null });
          await p.page.waitForSelector('svg.vt-grid');
          times.push(await p.page.$eval('svg.vt-grid', (svg) => Number(svg.parentElement?.dataset.renderMs)));
        } finally {
          await p.close();
        }
      }
      out.push({ model, layers: report.model.layers, heads: report.model.heads, medianMs: median(times), maxMs: Math.max(...times) });
    }
  } finally {
    await browser.close();
  }
  return out;
}

/** Round trips of `predict` (re-threshold a run's masks at a budget) through a warm backend. */
export async function predictLatency(
  backend: Backend,
  runDir: string,
): Promise<{ runDir: string; medianMs: number; maxMs: number; calls: number }> {
  const times: number[] = [];
  for (const keep of [0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85]) {
    const t0 = process.hrtime.bigint();
    await backend.request(Requests.predict, { runDir, keep });
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { runDir, medianMs: median(times), maxMs: Math.max(...times), calls: times.length };
}
