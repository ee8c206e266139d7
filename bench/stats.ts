/**
 * Paired bootstrap intervals for the benchmark: two methods scored on the same test examples (each run's
 * test-scores.json), the examples resampled with replacement, the difference of the metric recomputed on every
 * resample. Seeds of a method are averaged per resample, so the interval covers the test sample and the seeds
 * measured, not seeds never run.
 */

/** One run's score on every test example, in file order (compactly: results.json holds one per entry). */
export type ExampleScores =
  | { kind: 'accuracy'; correct: string } // '1' / '0' per example
  | { kind: 'perplexity'; nll: number[]; tokens: number[] };

export interface Interval {
  /** The difference on the whole test set (A − B; for perplexity, A's minus B's). */
  estimate: number;
  low: number;
  high: number;
  resamples: number;
  examples: number;
}

/** A small seeded generator (mulberry32): the same intervals from the same results, run after run. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The metric of one run on the examples `idx` (repeats count as often as they occur). */
function metricOn(s: ExampleScores, idx: Uint32Array): number {
  if (s.kind === 'accuracy') {
    let right = 0;
    for (const i of idx) right += s.correct.charCodeAt(i) === 49 ? 1 : 0;
    return right / idx.length;
  }
  let nll = 0;
  let tokens = 0;
  for (const i of idx) {
    nll += s.nll[i];
    tokens += s.tokens[i];
  }
  return Math.exp(nll / Math.max(tokens, 1));
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function size(s: ExampleScores): number {
  return s.kind === 'accuracy' ? s.correct.length : s.nll.length;
}

/**
 * The 95 % percentile interval of mean(metric of A's seeds) − mean(metric of B's seeds), every run of both on the
 * same resampled examples. Accuracy differences are in fractions (0.01 = 1 point).
 */
export function pairedBootstrap(a: ExampleScores[], b: ExampleScores[], resamples = 2000, seed = 0): Interval {
  const runs = [...a, ...b];
  const n = size(runs[0]);
  if (!a.length || !b.length || runs.some((s) => size(s) !== n || s.kind !== runs[0].kind))
    throw new Error('pairedBootstrap: both sides need runs scored on the same test examples');
  const all = Uint32Array.from({ length: n }, (_, i) => i);
  const diff = (idx: Uint32Array) => mean(a.map((s) => metricOn(s, idx))) - mean(b.map((s) => metricOn(s, idx)));
  const random = mulberry32(seed);
  const idx = new Uint32Array(n);
  const samples: number[] = [];
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) idx[i] = Math.floor(random() * n);
    samples.push(diff(idx));
  }
  samples.sort((x, y) => x - y);
  const at = (q: number) => samples[Math.min(resamples - 1, Math.max(0, Math.round(q * (resamples - 1))))];
  return { estimate: diff(all), low: at(0.025), high: at(0.975), resamples, examples: n };
}

/** Mean and sample standard deviation (0 for a single value). */
export function meanStd(xs: number[]): { mean: number; std: number; n: number } {
  const m = mean(xs);
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean: m, std, n: xs.length };
}
