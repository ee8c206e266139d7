/**
 * BENCHMARKS.md from results (bench/report.ts): seeds shown as mean ± std, a "better" only where the paired interval
 * excludes 0, stale entries left out, and the sweep from one run checked against runs trained at each budget.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { weightsDigest } from '../../bench/builds';
import { writeBenchmarksMd } from '../../bench/report';
import type { Entry, Results } from '../../bench/run';

/** n examples, the first `right` of them correct. */
const correct = (n: number, right: number) => '1'.repeat(right) + '0'.repeat(n - right);

function entry(method: Entry['method'], keep: number, seed: number, right: number, extra: Partial<Entry> = {}): Entry {
  const n = 1000;
  return {
    task: 'party',
    method,
    keep,
    seed,
    status: 'done',
    runDir: `bench/work/party/runs/${method}-${keep}-seed${seed}`,
    totalSeconds: 10,
    compressSeconds: method === 'faster' ? 10 : 100,
    achieved: keep,
    params: 1000,
    encoderParams: 500,
    flopsPerToken: 100,
    teacherFlopsPerToken: 300,
    settings: { seed },
    dev: { name: 'accuracy', value: right / n },
    test: { name: 'accuracy', value: right / n },
    teacherTest: { name: 'accuracy', value: 0.7 },
    latencyMs: null,
    onnxBytes: null,
    units: null,
    scores: { kind: 'accuracy', correct: correct(n, right) },
    ...extra,
  };
}

function results(entries: Entry[]): Results {
  return {
    machine: { cpu: 'test', cores: 2, memoryGiB: 4, node: 'v20', platform: 'linux' },
    settings: { budgets: [0.5, 0.3], kind: 'encoder-params', methods: { faster: {}, random: {} }, tasks: { party: {} }, common: {} },
    tasks: { party: { modelDir: 'm', training: {} } },
    entries,
    overhead: {},
    gpu: null,
    updatedAt: 'now',
  };
}

function render(r: Results, plot?: string): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-report-'));
  writeBenchmarksMd(r, root);
  return fs.readFileSync(plot ? path.join(root, 'bench', 'plots', plot) : path.join(root, 'BENCHMARKS.md'), 'utf8');
}

describe('BENCHMARKS.md', () => {
  it('shows seeds as mean ± std and reads a clear gap as better, a one-example gap as not separable', () => {
    const md = render(
      results([
        ...[0, 1, 2].map((s) => entry('faster', 0.3, s, 700 + s)),
        ...[0, 1, 2].map((s) => entry('random', 0.3, s, 600 + s)),
        entry('faster', 0.5, 0, 701),
        entry('random', 0.5, 0, 700),
      ]),
    );
    assert.match(md, /\| Faster-VTrans \| \*\*70\.10%\*\* \| \*\*70\.10% ± 0\.10 \(3\)\*\* \|/);
    assert.match(md, /\| 0\.3 \| Faster-VTrans \| Random \| \+10\.00 \| \[\+\d+\.\d+, \+\d+\.\d+\] \| better \|/);
    assert.match(md, /\| 0\.5 \| Faster-VTrans \| Random \| \+0\.10 \| \[[-+]\d+\.\d+, \+\d+\.\d+\] \| not separable \|/);
  });

  it('says where a peer is ahead, with its interval', () => {
    const md = render(results([entry('faster', 0.3, 0, 600), entry('random', 0.3, 0, 700)]));
    assert.match(md, /party, keep 0\.3: Random \(70\.00%; interval -\d+\.\d+ to -\d+\.\d+: worse\) ahead of the best VTrans variant/);
  });

  it('shows one build of the teacher and names the entries of another, left out of every table', () => {
    const md = render(
      results([
        entry('faster', 0.3, 0, 700),
        entry('faster', 0.3, 1, 702),
        entry('random', 0.3, 0, 650, { teacherTest: { name: 'accuracy', value: 0.71 } }),
      ]),
    );
    assert.match(
      md,
      /\*\*party: 1 stored entries \(Random\) compressed another build of the teacher from the same recipe \(its test accuracy 71\.00%, against 70\.00% for the 2 shown\)/,
    );
    assert.doesNotMatch(md, /65\.00%/);
    assert.match(md, /70\.10% ± 0\.14 \(2\)/);
  });

  it("names the entries of the teacher committed beside the demo, shown once they outnumber an earlier build's", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-report-'));
    fs.mkdirSync(path.join(root, 'teacher'));
    fs.writeFileSync(path.join(root, 'teacher', 'model.safetensors'), 'weights');
    fs.writeFileSync(path.join(root, 'teacher', 'pin.json'), '{"key": "k"}');
    const pinned = { teacherDigest: weightsDigest(path.join(root, 'teacher')), teacherTest: { name: 'accuracy', value: 0.69 } };
    const early = [entry('faster', 0.3, 0, 700), entry('faster', 0.3, 1, 702)];
    writeBenchmarksMd(results([...early, entry('random', 0.3, 0, 650, pinned)]), root);
    const md = fs.readFileSync(path.join(root, 'BENCHMARKS.md'), 'utf8');
    assert.match(md, /\*\*party: 1 stored entries \(Random\) compressed the teacher committed beside the demo/);
    assert.match(md, /the tables show one build, and this one once its entries outnumber the other's/);
    writeBenchmarksMd(results([...early, ...[0, 1, 2].map((s) => entry('random', 0.3, s, 650, pinned))]), root);
    assert.match(
      fs.readFileSync(path.join(root, 'BENCHMARKS.md'), 'utf8'),
      /\*\*party: 2 stored entries \(Faster-VTrans\) compressed another build of the teacher from the same recipe \(its test accuracy 70\.00%, against 69\.00% for the 3 shown\)\. .*the shown teacher is the committed one/,
    );
  });

  it('leaves stale entries out and says so', () => {
    const md = render(results([entry('faster', 0.3, 0, 700), entry('random', 0.3, 0, 100, { stale: true })]));
    assert.match(md, /\*\*1 stored entries ran with settings or method code that are no longer the benchmark's \(party Random\)/);
    assert.doesNotMatch(md, /10\.00%/);
  });

  it('checks the sweep of the largest budget against the run trained at each budget', () => {
    const md = render(results([entry('faster', 0.5, 0, 700, { sweep: [{ keep: 0.3, value: 0.69 }] }), entry('faster', 0.3, 0, 720)]));
    assert.match(md, /\| Faster-VTrans \| 0\.3 \| 69\.00% \(1\) \| 72\.00% \(1\) \| -3\.00 pts \| -3\.00 \(0\) \| no \|/);
  });

  it("checks the sweep on the mean over seeds of each side, each seed's pair beside it", () => {
    const md = render(
      results([
        ...[0, 1, 2].map((s) => entry('faster', 0.5, s, 700, { sweep: [{ keep: 0.3, value: [0.69, 0.7, 0.71][s] }] })),
        ...[0, 1, 2].map((s) => entry('faster', 0.3, s, [712, 700, 688][s])),
      ]),
    );
    // Seed 0 alone is 2.2 points short; the means are 0.
    assert.match(
      md,
      /\| Faster-VTrans \| 0\.3 \| 70\.00% \(3\) \| 70\.00% \(3\) \| \+0\.00 pts \| -2\.20 \(0\), \+0\.00 \(1\), \+2\.20 \(2\) \| yes \|/,
    );
  });

  it("checks Faster-VTrans against VTrans: its share of the wall time and the points it gives up, on the seeds' mean", () => {
    const md = render(
      results([
        entry('vtrans', 0.3, 0, 720, { compressSeconds: 1000 }),
        ...[0, 1].map((s) => entry('faster', 0.3, s, 700 + s, { compressSeconds: 80 + 40 * s })),
        entry('vtrans', 0.5, 0, 705, { compressSeconds: 1000 }),
        entry('faster', 0.5, 0, 695, { compressSeconds: 150 }),
      ]),
    );
    assert.match(
      md,
      /\| 0\.3 \| 100 s \(2\) \| 1000 s \(1\) \| 0\.100 \| — \| 0\.100 \| yes \| 70\.00% \| 70\.05% \| 72\.00% \| -1\.95 pts \| \[-\d+\.\d+, [-+]\d+\.\d+\] \| no \|/,
    );
    assert.match(
      md,
      /\| 0\.5 \| 150 s \(1\) \| 1000 s \(1\) \| 0\.150 \| — \| 0\.150 \| no \| 70\.00% \| 69\.50% \| 70\.50% \| -1\.00 pts \| \[-\d+\.\d+, [-+]\d+\.\d+\] \| yes \|/,
    );
    // VTrans ends above its teacher at both budgets, but only at 0.3 is the accuracy goal missed: only 0.3 is named.
    assert.match(
      md,
      /better than the teacher it was cut from \(at keep 0\.3 VTrans ends \+2\.00 pts from its teacher and Faster-VTrans \+0\.05 pts\)/,
    );
  });

  it("gives a perplexity gap and its interval both as a share of VTrans's perplexity", () => {
    // 200 windows of 10 tokens: every window's perplexity is exp(nll / 10), so both runs' test perplexity is exact.
    const lm = (method: Entry['method'], ppl: number, spread: number): Entry => {
      const nll = Array.from({ length: 200 }, (_, i) => 10 * Math.log(ppl * (1 + spread * (i % 2 ? 1 : -1))));
      const test = { name: 'perplexity', value: Math.exp(nll.reduce((a, b) => a + b, 0) / 2000) };
      return entry(method, 0.3, 0, 0, {
        task: 'sotu',
        dev: test,
        test,
        teacherTest: { name: 'perplexity', value: 150 },
        scores: { kind: 'perplexity', nll, tokens: nll.map(() => 10) },
      });
    };
    const r = results([lm('vtrans', 160, 0.05), { ...lm('faster', 190, 0.05), compressSeconds: 10 }]);
    r.tasks = { sotu: { modelDir: 'm', training: {} } };
    const row = render(r)
      .split('\n')
      .find((l) => l.startsWith('| 0.3 | 10 s (1) | 100 s (1) |'));
    const m = row?.match(/\| ([-+]\d+\.\d+) % \| \[([-+]\d+\.\d+) %, ([-+]\d+\.\d+) %\] \| no \|$/);
    assert.ok(m, row);
    const [gap, low, high] = m.slice(1).map(Number);
    assert.ok(Math.abs(gap - 18.75) < 0.05, `the gap is 190 / 160 - 1 = 18.75 %, got ${gap}`);
    assert.ok(low <= gap && gap <= high && high - low < 5, `the interval [${low}, ${high}] in % brackets the gap`);
  });

  it("scales Faster-VTrans's share to the speed of the machine VTrans ran on, by the teacher latency beside each run", () => {
    const latency = (teacher: number) => ({ teacher: { '1': 1, '32': teacher }, student: { '1': 1, '32': 1 } });
    const md = render(
      results([
        entry('vtrans', 0.3, 0, 720, { compressSeconds: 1000, latencyMs: latency(400) }),
        ...[0, 1].map((s) => entry('faster', 0.3, s, 700, { compressSeconds: 90, latencyMs: latency(300 + 20 * s) })),
      ]),
    );
    // 90 s on a machine 400 / 310 as fast: 116 s on VTrans's, over the goal although the raw share is under it.
    assert.match(md, /\| 0\.3 \| 90 s \(2\) \| 1000 s \(1\) \| 0\.090 \| 310 \/ 400 ms \| 0\.116 \| no \|/);
  });

  it('plots each method at each budget against its wall time, labelled with the budget', () => {
    const r = results([entry('faster', 0.5, 0, 700), entry('faster', 0.3, 0, 690), entry('random', 0.3, 0, 600)]);
    assert.match(render(r), /!\[party time to accuracy\]\(bench\/plots\/party-time-to-accuracy\.svg\)/);
    const svg = render(r, 'party-time-to-accuracy.svg');
    const labels = [...svg.matchAll(/<text x="([\d.]+)" y="([\d.]+)" font-size="10" fill="[^"]+">([\d.]+)<\/text>/g)];
    assert.deepEqual(labels.map((m) => m[3]).sort(), ['0.3', '0.3', '0.5'], 'one labelled point per method and budget');
    const [faster, random] = [Number(labels[0][1]), Number(labels[2][1])];
    assert.ok(faster < random, 'Faster-VTrans (10 s) left of random (100 s)');
    assert.doesNotMatch(svg, /<path d="[^"]*" fill="none" stroke="[^"]+" stroke-width="2"/, 'markers only, no line through the points');
    assert.match(svg, />10<\/text>/);
    assert.match(svg, />100<\/text>/);
  });
});
