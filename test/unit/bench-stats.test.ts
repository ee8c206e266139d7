/** The benchmark's paired bootstrap (bench/stats.ts): intervals that behave as the statistics say they must. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ExampleScores, meanStd, pairedBootstrap } from '../../bench/stats';

/** Correctness of n examples, each right with probability p (a fixed seed per call). */
function run(n: number, p: number, seed: number): ExampleScores {
  let a = seed;
  const next = () => (a = (a * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  return { kind: 'accuracy', correct: Array.from({ length: n }, () => (next() < p ? '1' : '0')).join('') };
}

const accuracy = (s: ExampleScores) => {
  if (s.kind !== 'accuracy') throw new Error('accuracy runs only');
  return [...s.correct].filter((c) => c === '1').length / s.correct.length;
};

describe('paired bootstrap', () => {
  it('gives a zero-width interval at zero for two identical runs', () => {
    const a = run(500, 0.7, 1);
    const i = pairedBootstrap([a], [a]);
    assert.deepEqual([i.estimate, i.low, i.high], [0, 0, 0]);
  });

  it('brackets a clear difference away from zero, as wide as the normal approximation says', () => {
    const a = run(2000, 0.9, 2);
    const b = run(2000, 0.8, 3);
    const i = pairedBootstrap([a], [b]);
    assert.ok(Math.abs(i.estimate - (accuracy(a) - accuracy(b))) < 1e-12);
    assert.ok(i.low > 0 && i.low < i.estimate && i.estimate < i.high);
    const d = [...(a as { correct: string }).correct].map((c, k) => Number(c) - Number((b as { correct: string }).correct[k]));
    const { std } = meanStd(d);
    const normalWidth = 2 * 1.96 * (std / Math.sqrt(d.length));
    assert.ok(Math.abs(i.high - i.low - normalWidth) / normalWidth < 0.15, `${i.high - i.low} vs ${normalWidth}`);
  });

  it('includes zero when two runs differ on one example of two hundred', () => {
    const a = run(200, 0.8, 4);
    const flipped = (a as { correct: string }).correct.replace('0', '1');
    const i = pairedBootstrap([{ kind: 'accuracy', correct: flipped }], [a]);
    assert.ok(Math.abs(i.estimate - 1 / 200) < 1e-12);
    assert.ok(i.low <= 0 && i.high > 0);
  });

  it('averages the seeds of each side', () => {
    const a = [run(300, 0.8, 5), run(300, 0.75, 6)];
    const b = [run(300, 0.7, 7), run(300, 0.72, 8), run(300, 0.69, 9)];
    const i = pairedBootstrap(a, b, 200);
    const m = (xs: ExampleScores[]) => meanStd(xs.map(accuracy)).mean;
    assert.ok(Math.abs(i.estimate - (m(a) - m(b))) < 1e-12);
  });

  it('recomputes perplexity from the resampled tokens', () => {
    const tokens = Array.from({ length: 100 }, (_, k) => 10 + (k % 7));
    const b: ExampleScores = { kind: 'perplexity', nll: tokens.map((t, k) => t * (4 + 0.1 * (k % 3))), tokens };
    // 0.05 nats a token more on every example: perplexity × e^0.05 on any resample.
    const a: ExampleScores = { kind: 'perplexity', nll: b.nll.map((x, k) => x + 0.05 * tokens[k]), tokens };
    const i = pairedBootstrap([a], [b], 300);
    const pb = Math.exp(b.nll.reduce((s, x) => s + x, 0) / tokens.reduce((s, x) => s + x, 0));
    assert.ok(Math.abs(i.estimate - pb * (Math.exp(0.05) - 1)) < 1e-9);
    assert.ok(i.low > 0);
  });

  it('refuses runs scored on different examples', () => {
    assert.throws(() => pairedBootstrap([run(10, 0.5, 1)], [run(11, 0.5, 1)]), /same test examples/);
  });

  it('is the same from the same results', () => {
    const a = run(400, 0.8, 10);
    const b = run(400, 0.78, 11);
    assert.deepEqual(pairedBootstrap([a], [b]), pairedBootstrap([a], [b]));
  });
});
