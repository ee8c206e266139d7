/** BENCHMARKS.md and its plots from bench/results.json (regenerated after every benchmark run). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DemoName } from '../examples/build/model';
import { pinnedDigest, splitByBuild, type TaskBuilds } from './builds';
import type { BenchMethod } from './plan';
import type { Entry, Results } from './run';
import { METHODS } from '../src/core/contracts';
import { median } from '../src/core/onnxEval';
import { ROUNDS } from './latency';
import { type Interval, meanStd, pairedBootstrap } from './stats';
import { lineChart, type Series } from './svg';

const LABEL: Record<string, string> = {
  vtrans: 'VTrans',
  fast: 'Fast-VTrans',
  faster: 'Faster-VTrans',
  cofi: 'CoFi (L0)',
  'torch-pruning': 'Torch-Pruning (DepGraph, PyPI)',
  kwon: 'Kwon et al. (retraining-free)',
  taylor: 'Taylor (Michel et al.)',
  magnitude: 'Magnitude (L1)',
  random: 'Random',
};
const OURS = new Set<string>(METHODS);
/** Methods whose run at the largest budget also sweeps every budget: its points are checked against separate runs. */
export const SWEPT = new Set<BenchMethod>(['vtrans', 'fast', 'faster']);
const TASK_TITLE: Record<string, string> = {
  spam: 'SpamAssassin spam classification (BERT, 4 × 4 heads)',
  sotu: 'State of the Union language modelling (GPT-2, 4 × 4 heads)',
  party: "State of the Union passages by the speaker's party (all-MiniLM-L6-v2 fine-tuned, 6 × 12 heads)",
};

const lowerIsBetter = (e: Entry) => e.test?.name === 'perplexity';
const fmtMetric = (name: string | undefined, v: number | undefined) =>
  v === undefined ? '—' : name === 'accuracy' ? `${(100 * v).toFixed(2)}%` : v.toFixed(2);
const fmtSpread = (name: string | undefined, v: number) => (name === 'accuracy' ? (100 * v).toFixed(2) : v.toFixed(2));
const fmtCount = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}K` : String(n));

/** One method at one budget: its seeds' runs, the test metric and the wall time as their means. */
type Cell = Entry & { runs: Entry[]; testStd?: number };

function cellsOf(entries: Entry[]): Cell[] {
  const groups = new Map<string, Entry[]>();
  for (const e of entries) groups.set(`${e.method}@${e.keep}`, [...(groups.get(`${e.method}@${e.keep}`) ?? []), e]);
  return [...groups.values()].map((group) => {
    const runs = group.filter((e) => e.status === 'done').sort((a, b) => (a.seed ?? 0) - (b.seed ?? 0));
    if (!runs.length) return { ...group[0], runs: [] };
    const tested = runs.filter((e) => e.test);
    const test = tested.length ? meanStd(tested.map((e) => e.test!.value)) : undefined;
    return {
      ...runs[0],
      runs,
      test: test ? { name: tested[0].test!.name, value: test.mean } : null,
      testStd: test && test.n > 1 ? test.std : undefined,
      compressSeconds: meanStd(runs.map((e) => e.compressSeconds)).mean,
    };
  });
}

function better(a: Entry, b: Entry): boolean {
  if (!a.test || !b.test) return false;
  return lowerIsBetter(a) ? a.test.value < b.test.value : a.test.value > b.test.value;
}

function metricTable(entries: Entry[], budgets: number[], methods: string[]): string {
  const head = `| method | ${budgets.map((b) => `keep ${b}`).join(' | ')} |\n|---|${budgets.map(() => '---:').join('|')}|`;
  const rows = methods.map((m) => {
    const cells = budgets.map((b) => {
      const e = entries.find((x) => x.method === m && x.keep === b);
      if (!e) return '—';
      if (e.status !== 'done') return 'failed';
      const best = entries.filter((x) => x.keep === b && x.status === 'done').every((x) => x === e || !better(x, e));
      const c = e as Cell;
      const spread = c.testStd !== undefined ? ` ± ${fmtSpread(e.test?.name, c.testStd)} (${c.runs.length})` : '';
      const v = fmtMetric(e.test?.name, e.test?.value) + spread;
      return best ? `**${v}**` : v;
    });
    return `| ${LABEL[m] ?? m} | ${cells.join(' | ')} |`;
  });
  return [head, ...rows].join('\n');
}

function sizeTable(entries: Entry[], budgets: number[], methods: string[]): string {
  const head = `| method | ${budgets.map((b) => `keep ${b}: params / encoder / FLOPs per token`).join(' | ')} |\n|---|${budgets.map(() => '---:').join('|')}|`;
  const rows = methods.map(
    (m) =>
      `| ${LABEL[m] ?? m} | ${budgets
        .map((b) => {
          const e = entries.find((x) => x.method === m && x.keep === b && x.status === 'done');
          return e ? `${fmtCount(e.params)} / ${fmtCount(e.encoderParams)} / ${fmtCount(e.flopsPerToken)}` : '—';
        })
        .join(' | ')} |`,
  );
  return [head, ...rows].join('\n');
}

function timeTable(entries: Entry[], budgets: number[], methods: string[]): string {
  const head = `| method | ${budgets.map((b) => `keep ${b}`).join(' | ')} |\n|---|${budgets.map(() => '---:').join('|')}|`;
  const rows = methods.map(
    (m) =>
      `| ${LABEL[m] ?? m} | ${budgets
        .map((b) => {
          const e = entries.find((x) => x.method === m && x.keep === b && x.status === 'done');
          return e ? `${e.compressSeconds.toFixed(0)} s` : '—';
        })
        .join(' | ')} |`,
  );
  return [head, ...rows].join('\n');
}

function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a !== undefined && b !== undefined && b > 0 ? a / b : undefined;
}

function latencyRows(entries: Entry[], teacherFlops: number): string {
  const head =
    '| method | keep | FLOPs reduction | speedup b1 | speedup b32 | speedup ÷ FLOPs reduction b1 | b32 | ONNX size |\n|---|---:|---:|---:|---:|---:|---:|---:|';
  const methodIndex = (e: Entry) => Object.keys(LABEL).indexOf(e.method);
  const rows = entries
    .filter((e) => e.status === 'done' && e.latencyMs)
    .sort((a, b) => b.keep - a.keep || methodIndex(a) - methodIndex(b))
    .map((e) => {
      const red = ratio(teacherFlops || undefined, e.flopsPerToken);
      const s1 = ratio(e.latencyMs!.teacher['1'], e.latencyMs!.student['1']);
      const s32 = ratio(e.latencyMs!.teacher['32'], e.latencyMs!.student['32']);
      const f = (v: number | undefined, d = 2) => (v === undefined ? '—' : v.toFixed(d));
      const times = (v: number | undefined) => (v === undefined ? '—' : `${f(v)}x`);
      return `| ${LABEL[e.method]} | ${e.keep} | ${times(red)} | ${times(s1)} | ${times(s32)} | ${f(s1 && red && s1 / red)} | ${f(s32 && red && s32 / red)} | ${e.onnxBytes ? `${(e.onnxBytes.student / 2 ** 20).toFixed(1)} MiB` : '—'} |`;
    });
  return [head, ...rows].join('\n');
}

/** VTrans variant − peer on the test examples, over the seeds both have scores for; null where one side has none. */
function intervalOf(ours: Cell, theirs: Cell): Interval | null {
  const scores = (c: Cell) => c.runs.map((e) => e.scores).filter((x): x is NonNullable<typeof x> => x !== undefined);
  const a = scores(ours);
  const b = scores(theirs);
  return a.length && b.length ? pairedBootstrap(a, b) : null;
}

/** "better" / "worse" only where the interval excludes 0; the sign read for the metric's direction. */
function verdict(i: Interval, metric: string): string {
  const good = metric === 'perplexity' ? i.high < 0 : i.low > 0;
  const bad = metric === 'perplexity' ? i.low > 0 : i.high < 0;
  return good ? 'better' : bad ? 'worse' : 'not separable';
}

const fmtDiff = (metric: string, v: number) => `${v >= 0 ? '+' : ''}${fmtSpread(metric, v)}`;
/** A difference with its sign, two decimals. */
const signed = (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(2)}`;

function intervalsSection(cells: Cell[], budgets: number[]): string[] {
  const rows: string[] = [];
  let metric = 'accuracy';
  let seeds = new Set<number>();
  for (const b of budgets)
    for (const ours of cells.filter((c) => c.keep === b && OURS.has(c.method) && c.test))
      for (const theirs of cells.filter((c) => c.keep === b && !OURS.has(c.method) && c.test)) {
        const i = intervalOf(ours, theirs);
        if (!i) continue;
        metric = ours.test!.name;
        seeds = new Set([...seeds, ours.runs.length, theirs.runs.length]);
        rows.push(
          `| ${b} | ${LABEL[ours.method]} | ${LABEL[theirs.method]} | ${fmtDiff(metric, i.estimate)} | [${fmtDiff(metric, i.low)}, ${fmtDiff(metric, i.high)}] | ${verdict(i, metric)} |`,
        );
      }
  if (!rows.length) return [];
  const unit = metric === 'accuracy' ? 'accuracy points' : 'perplexity';
  return [
    `### VTrans variants against the peers: paired bootstrap 95 % intervals (test ${unit})`,
    '',
    `The difference VTrans variant − peer of the mean over seeds, with the test examples resampled (2,000 resamples, every run on the same resample; seeds per side: ${[...seeds].sort().join(' or ')}). "better" or "worse" only where the interval excludes 0.`,
    '',
    '| keep | VTrans variant | peer | difference | 95 % interval | reading |',
    '|---:|---|---|---:|---|---|',
    ...rows,
    '',
  ];
}

/** Plain sentences on where the VTrans methods lose, computed from the cells: each peer ahead on the mean, with the
 * paired interval's reading where both sides have per-example scores. */
function losses(task: string, cells: Cell[], budgets: number[]): string[] {
  const out: string[] = [];
  const ahead = (ours: Cell, t: Cell) => {
    const i = intervalOf(ours, t);
    const name = `${LABEL[t.method]} (${fmtMetric(t.test!.name, t.test!.value)}`;
    return i
      ? `${name}; interval ${fmtDiff(t.test!.name, i.low)} to ${fmtDiff(t.test!.name, i.high)}: ${verdict(i, t.test!.name)})`
      : `${name})`;
  };
  for (const b of budgets) {
    const at = cells.filter((e) => e.keep === b && e.status === 'done' && e.test);
    const ours = at.filter((e) => OURS.has(e.method));
    const theirs = at.filter((e) => !OURS.has(e.method));
    if (!ours.length || !theirs.length) continue;
    const bestOurs = ours.reduce((a, e) => (better(e, a) ? e : a));
    const beating = theirs.filter((e) => better(e, bestOurs));
    if (beating.length) {
      out.push(
        `${task}, keep ${b}: ${beating.map((e) => ahead(bestOurs, e)).join(', ')} ahead of the best VTrans variant, ${LABEL[bestOurs.method]} (${fmtMetric(bestOurs.test!.name, bestOurs.test!.value)}).`,
      );
    }
    for (const m of METHODS) {
      const e = ours.find((x) => x.method === m);
      const worse = e ? theirs.filter((t) => better(t, e)) : [];
      if (e && worse.length && e !== bestOurs)
        out.push(
          `${task}, keep ${b}: ${LABEL[m]} (${fmtMetric(e.test!.name, e.test!.value)}) is below ${worse.map((t) => ahead(e, t)).join(', ')}.`,
        );
    }
  }
  return out;
}

/** The teacher's FLOPs per token of each task: as an entry recorded it, else from the report of a finished run. */
function teacherFlopsByTask(r: Results, root: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of r.entries) if (e.teacherFlopsPerToken && !out.has(e.task)) out.set(e.task, e.teacherFlopsPerToken);
  for (const e of r.entries) {
    const report = path.join(root, e.runDir, 'report.json');
    if (out.has(e.task) || e.status !== 'done' || !fs.existsSync(report)) continue;
    out.set(e.task, (JSON.parse(fs.readFileSync(report, 'utf8')) as { teacher: { flopsPerToken: number } }).teacher.flopsPerToken);
  }
  return out;
}

/** Where the VTrans methods cost more than the baselines: wall time, and speedup per FLOP saved. */
function costSentences(r: Results, teacherFlops: Map<string, number>): string[] {
  const out: string[] = [];
  const done = r.entries.filter((e) => e.status === 'done');
  const time = (ms: string[]) => done.filter((e) => ms.includes(e.method)).map((e) => e.compressSeconds);
  const vt = time(['vtrans']);
  const scored = time(['taylor', 'magnitude', 'random']);
  if (vt.length && scored.length) {
    out.push(
      `Time: VTrans trains its masks and weights, so a run takes ${median(vt).toFixed(0)} s (median over budgets and tasks) against ${median(scored).toFixed(0)} s for scoring heads and neurons once and fine-tuning (Taylor, magnitude, random): ${(median(vt) / median(scored)).toFixed(1)}x the wall time.`,
    );
  }
  const efficiency = (ours: boolean) =>
    done
      .filter((e) => OURS.has(e.method) === ours && e.latencyMs && teacherFlops.has(e.task))
      .map((e) => e.latencyMs!.teacher['32'] / e.latencyMs!.student['32'] / (teacherFlops.get(e.task)! / e.flopsPerToken));
  const [o, t] = [efficiency(true), efficiency(false)];
  if (o.length && t.length) {
    const figures = `batch-32 speedup ÷ FLOPs reduction, median ${median(o).toFixed(2)} for the VTrans variants against ${median(t).toFixed(2)} for the baselines`;
    // Within 5 % the two are the same on these noisy machines.
    out.push(
      median(o) < 0.95 * median(t)
        ? `Speedup per FLOP saved: the VTrans variants' models turn a FLOPs reduction into less measured speed than the baselines' (${figures}). They also narrow the hidden width, which leaves small, oddly sized matrices that run below their FLOPs share on a CPU.`
        : `Speedup per FLOP saved: no loss here, the VTrans variants' models run as close to their FLOPs reduction as the baselines' (${figures}).`,
    );
  }
  return out;
}

/** What each peer follows and where it departs from its source, as run here. */
const PEER_NOTES: Record<string, string> = {
  cofi: "CoFi's L0 gates as in its public `l0_module.py` (Xia et al. 2022; backend/vtrans/l0.py): hard-concrete gates on heads, FFN neurons, hidden dimensions and whole sublayers, one sample per unit and step, log α clamped to [log 0.01, log 100] after every step, CoFi's per-type start (heads, sublayers and hidden dimensions open at log α 10, FFN neurons at drop rate 0.5), its linear target warm-up over a fifth of pruning, and its deterministic cut (per layer and type the expected number of closed units, rounded, closed by the lowest soft mask; kept units scaled by it), which the common exact cut then fits to the budget; its distillation in both phases: 0.1 × the logit KL at temperature 2 plus 0.9 × its layer distillation with dynamic layer matching (every third teacher layer from the last, each matched at every step to the student layer, through a learned linear map, with the lowest MSE below the previous match among the layers whose attention is on; the map narrowed to the kept hidden dimensions for fine-tuning), no task loss. Departs from it in: the Lagrangian on the harness's expected size; the layer MSE over real tokens only (CoFi's also counts padding); no pre-pruning fine-tuning phase (the student starts from the fine-tuned teacher, which is where CoFi's starts too); the shared step budget (150 + 75 steps) instead of CoFi's 100 epochs for small data, with the harness's mask learning rate (0.1, not CoFi's 0.01, which moves log α too little in 150 steps). Cut to that budget, its distillation gives the student little to learn from: the layer map starts near zero (N(0, 0.02²), as CoFi's) and learns at the weights' rate, so for 150 steps the layer term mostly measures the teacher's own hidden states, and the logit term has a weight of 0.1. On party at keep 0.3 it ends below the majority class. So its figures here are CoFi's recipe on the shared step budget, not CoFi at its own 100 epochs.",
  'torch-pruning':
    "The Torch-Pruning package (torch-pruning 1.6.1 from PyPI; Fang et al. 2023, DepGraph) run on the Hugging Face model loaded by transformers: MetaPruner, L2 magnitude importance, local pruning of whole heads and FFN neurons at one ratio (the ratio bisected to the budget), the residual width left alone (backend/vtrans/torch_pruning_peer.py). Its pruned model is run once; its choice becomes the unit scores, so the common exact cut keeps it (plus the few units that separate its ratio's size from the budget, in its importance order), and the common fine-tuning follows. Departs from its HF-BERT example, which also prunes head dimensions and the hidden width.",
  kwon: "Kwon et al. 2022 (retraining-free; backend/vtrans/kwon_peer.py): the diagonal Fisher information of a mask on every head and FFN neuron from the task loss's gradients on 2,048 training samples (batches of 32), their mask search (for every number of heads kept, the most important heads, then as many of the most important neurons as the rest of the budget holds; the largest kept Fisher sum wins), their mask rearrangement (inside each layer, the same counts with the pruned set chosen again by the layer's block of the Fisher matrix, their greedy pass), the common exact cut, then the harness's layer-wise least-squares refit of the kept units' scales on the same 2,048 samples in place of their mask tuning (both fit each sublayer's output to the unpruned model's); no fine-tuning. Departs from it in: the budget kind of the run instead of FLOPs, and the refit of the kept units' scales in place of their LSMR solve for the mask values.",
  taylor:
    "Michel et al. 2019: head and neuron importance E|∂L/∂ξ| with a gate ξ = 1 on every unit, per parameter, on 16 training batches; then the common cut and fine-tuning. Departs from it in: FFN neurons ranked beside the heads (Michel et al. prune heads alone) on one per-parameter scale, without their per-layer ℓ2 normalisation of the scores. That scale favours neurons: in party's MiniLM a head carries 64 times a neuron's parameters, and at keep 0.3 the cut keeps almost no heads, so a seed can end with a model that predicts the majority class.",
  magnitude: 'The mean |w| of the weights of each head and neuron (L1 per parameter); then the common cut and fine-tuning.',
  random: 'A seeded uniform draw of heads and neurons; then the common cut and fine-tuning.',
};

function peerRows(r: Results): string[] {
  const peers = Object.keys(r.settings.methods).filter((m) => PEER_NOTES[m]);
  return peers.length ? ['## Peers', '', ...peers.map((m) => `- **${LABEL[m] ?? m}**: ${PEER_NOTES[m]}`), ''] : [];
}

/** What each method ran with: its settings on top of its defaults, and the steps its runs took per phase. */
function settingsRows(r: Results): string[] {
  const rows = ["| method | settings (on top of the method's defaults) | steps per run: phase 1 + phase 2, by task |", '|---|---|---|'];
  for (const [m, settings] of Object.entries(r.settings.methods)) {
    const steps = Object.keys(r.tasks)
      .map((task) => {
        const e = r.entries.find((x) => x.task === task && x.method === m && !x.stale && x.steps);
        return e ? `${task} ${e.steps!.prune ?? 0} + ${e.steps!.finetune ?? 0}` : undefined;
      })
      .filter(Boolean);
    const own = Object.keys(settings).length ? `\`${JSON.stringify(settings)}\`` : 'none: the default recipe';
    rows.push(`| ${LABEL[m] ?? m} | ${own} | ${steps.join('; ') || '—'} |`);
  }
  return rows;
}

/** Faster-VTrans against VTrans at each budget both ran: the share of VTrans's wall time it takes (goal ≤ 0.1) and
 * what it gives up (goal: within 1.5 accuracy points or 5 % perplexity, on the mean over seeds), with the paired
 * interval of the difference where both have per-example scores. */
function fasterAgainstVTrans(cells: Cell[], budgets: number[], teacher: { name: string; value: number } | undefined): string[] {
  const rows: string[] = [];
  const aboveTeacher: string[] = [];
  for (const b of budgets) {
    const done = (m: string) => cells.find((c) => c.method === m && c.keep === b && c.status === 'done' && c.test);
    const faster = done('faster');
    const vtrans = done('vtrans');
    if (!faster || !vtrans) continue;
    // The two may have run in different sessions: the teacher's batch-32 latency beside each (the same model, measured
    // in its bench's latency pass) says how fast each machine was, and the goal holds only where it holds at equal speed.
    const [fasterMs, vtransMs] = [teacherLatency(faster), teacherLatency(vtrans)];
    const measured = fasterMs !== undefined && vtransMs !== undefined;
    const share = faster.compressSeconds / vtrans.compressSeconds;
    const matched = measured ? (share * vtransMs) / fasterMs : share;
    const latencies = measured ? `${fasterMs.toFixed(0)} / ${vtransMs.toFixed(0)} ms` : '—';
    const name = vtrans.test!.name;
    const acc = name === 'accuracy';
    // Perplexity: the difference and its interval both as a share of VTrans's perplexity.
    const relative = (d: number) => (acc ? 100 * d : (100 * d) / vtrans.test!.value);
    const gap = relative(faster.test!.value - vtrans.test!.value);
    const i = intervalOf(faster, vtrans);
    const unit = acc ? '' : ' %';
    const interval = i ? `[${signed(relative(i.low))}${unit}, ${signed(relative(i.high))}${unit}]` : '—';
    const teacherCell = teacher ? fmtMetric(name, teacher.value) : '—';
    const within = acc ? gap >= -1.5 : gap <= 5;
    rows.push(
      `| ${b} | ${faster.compressSeconds.toFixed(0)} s (${faster.runs.length}) | ${vtrans.compressSeconds.toFixed(0)} s (${vtrans.runs.length}) | ${share.toFixed(3)} | ${latencies} | ${matched.toFixed(3)} | ${Math.max(share, matched) <= 0.1 ? 'yes' : 'no'} | ${teacherCell} | ${fmtMetric(name, faster.test!.value)} | ${fmtMetric(name, vtrans.test!.value)} | ${signed(gap)}${acc ? ' pts' : ' %'} | ${interval} | ${within ? 'yes' : 'no'} |`,
    );
    // Where the goal is missed and VTrans's student is better than its teacher, it gained from its weight training
    // what masks on the teacher's frozen weights (Faster-VTrans) cannot: say how much of the gap that is.
    const fromTeacher = (v: number) => relative(v - teacher!.value);
    if (!within && teacher && (acc ? fromTeacher(vtrans.test!.value) > 0 : fromTeacher(vtrans.test!.value) < 0))
      aboveTeacher.push(
        `at keep ${b} VTrans ends ${signed(fromTeacher(vtrans.test!.value))}${acc ? ' pts' : ' %'} from its teacher and Faster-VTrans ${signed(fromTeacher(faster.test!.value))}${acc ? ' pts' : ' %'}`,
      );
  }
  if (!rows.length) return [];
  return [
    '### Faster-VTrans against VTrans (default recipes of both)',
    '',
    "Goals: Faster-VTrans in at most 0.1 of VTrans's wall time, and within 1.5 points of its test accuracy (5 % of its perplexity), both on the mean over seeds (seeds in parentheses). The interval is the paired bootstrap 95 % interval of Faster-VTrans − VTrans. Where the runs come from different sessions, the teacher's batch-32 latency measured beside each tells the machines' speeds apart: the matched share is Faster-VTrans's time scaled to VTrans's machine, and the time goal must hold for both shares.",
    '',
    '| keep | Faster-VTrans time | VTrans time | share | teacher b32 latency (Faster-VTrans / VTrans) | matched share | ≤ 0.1 | teacher | Faster-VTrans | VTrans | difference | 95 % interval | within the goal |',
    '|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---|',
    ...rows,
    '',
    ...(aboveTeacher.length
      ? [
          `VTrans's student is better than the teacher it was cut from (${aboveTeacher.join('; ')}): that part of the gap is what training the weights adds beyond the teacher, which Faster-VTrans, masks on the teacher's frozen weights, does not do.`,
          '',
        ]
      : []),
  ];
}

/** The mean over a cell's runs of the teacher's batch-32 latency, where every run has one. */
function teacherLatency(cell: Cell): number | undefined {
  const ms = cell.runs.map((e) => e.latencyMs?.teacher['32']);
  return ms.every((x) => x !== undefined) ? meanStd(ms as number[]).mean : undefined;
}

/**
 * The sweep of each seed's run at the largest budget against the runs trained at each smaller one, on the mean over
 * seeds of each side (one seed's run is as noisy as the gap the goal allows); the same seed's pair beside it.
 */
function sweepCheck(cells: Cell[], budgets: number[]): string[] {
  const top = Math.max(...budgets);
  const devBySeed = (m: string, keep: number, value: (e: Entry) => number | undefined) =>
    new Map(
      (cells.find((c) => c.method === m && c.keep === keep)?.runs ?? [])
        .filter((e) => e.dev && value(e) !== undefined)
        .map((e) => [e.seed ?? 0, value(e)!]),
    );
  const rows: string[] = [];
  for (const m of SWEPT) {
    const name = cells.find((c) => c.method === m && c.keep === top)?.runs.find((e) => e.sweep && e.dev)?.dev!.name;
    if (!name) continue;
    const acc = name === 'accuracy';
    const gapOf = (point: number, own: number) => (acc ? 100 * (point - own) : 100 * (point / own - 1));
    for (const b of budgets.filter((x) => x < top)) {
      const swept = devBySeed(m, top, (e) => e.sweep?.find((p) => p.keep === b)?.value);
      const own = devBySeed(m, b, (e) => e.dev!.value);
      if (!swept.size || !own.size) continue;
      const point = meanStd([...swept.values()]).mean;
      const trained = meanStd([...own.values()]).mean;
      const gap = gapOf(point, trained);
      const paired = [...swept].filter(([seed]) => own.has(seed)).map(([seed, v]) => `${signed(gapOf(v, own.get(seed)!))} (${seed})`);
      rows.push(
        `| ${LABEL[m]} | ${b} | ${fmtMetric(name, point)} (${swept.size}) | ${fmtMetric(name, trained)} (${own.size}) | ${signed(gap)}${acc ? ' pts' : ' %'} | ${paired.join(', ') || '—'} | ${(acc ? gap >= -2 : gap <= 5) ? 'yes' : 'no'} |`,
      );
    }
  }
  if (!rows.length) return [];
  return [
    `### The tradeoff curve from one run (keep ${top}) against a run trained at each budget (dev split)`,
    '',
    `Each swept method's run at keep ${top} cuts its masks again at the smaller budgets (the cost-aware cut and the least-squares correction, no retraining); beside it the same method's own run at that budget, both as the mean over seeds (seeds in parentheses), and the difference of each seed's pair. Goal: within 2 points (accuracy) or 5 % (perplexity), on the means.`,
    '',
    `| method | keep | from the keep ${top} run | trained at the budget | difference | per seed (seed) | within the goal |`,
    '|---|---:|---:|---:|---:|---|---|',
    ...rows,
    '',
  ];
}

/** Where a task's stored entries also compressed another build of its teacher: how many, and what happens to them. */
function otherBuildNotice(task: string, other: TaskBuilds['others'][number], shown: TaskBuilds, pinned: string | undefined): string[] {
  const metric = other.entries.find((e) => e.teacherTest)!.teacherTest!.name;
  const shownTest = shown.entries.find((e) => e.teacherTest)?.teacherTest?.value;
  const what = `**${task}: ${other.entries.length} stored entries (${[...new Set(other.entries.map((e) => LABEL[e.method]))].join(', ')})`;
  const tests = `its test ${metric} ${fmtMetric(metric, other.teacherTest)}${shownTest === undefined ? '' : `, against ${fmtMetric(metric, shownTest)} for the ${shown.entries.length} shown`}`;
  const why = 'Training from random weights is not bit-reproducible across CPUs, and students of different teachers do not pair';
  const then =
    other.build === pinned
      ? "the tables show one build, and this one once its entries outnumber the other's"
      : shown.shown === pinned
        ? 'they are left out; the shown teacher is the committed one, on which `npm run bench` runs them again'
        : 'they are left out; `npm run bench` on a machine that builds the shown teacher runs them again';
  const whose =
    other.build === pinned
      ? 'compressed the teacher committed beside the demo (its `teacher/` folder), the build `npm run bench` now uses on every machine'
      : 'compressed another build of the teacher from the same recipe';
  return [`${what} ${whose} (${tests}). ${why}: ${then}.**`, ''];
}

export function writeBenchmarksMd(all: Results, root: string): void {
  const stale = all.entries.filter((e) => e.stale);
  const fresh = all.entries.filter((e) => !e.stale);
  // Each task's tables show one build of its teacher (builds.ts); the entries of any other are counted, not mixed in.
  const pinnedOf = (task: string) => {
    const dir = all.tasks[task as keyof typeof all.tasks]?.modelDir;
    return dir ? pinnedDigest(path.join(root, dir)) : undefined;
  };
  const builds = [...new Set(fresh.map((e) => e.task))].map((task) => ({
    task,
    pinned: pinnedOf(task),
    ...splitByBuild(fresh.filter((e) => e.task === task)),
  }));
  const r: Results = { ...all, entries: builds.flatMap((b) => b.entries) };
  const teacherFlopsOf = teacherFlopsByTask(r, root);
  const plots = path.join(root, 'bench', 'plots');
  fs.mkdirSync(plots, { recursive: true });
  const budgets = r.settings.budgets;
  const methods = [...new Set(r.entries.map((e) => e.method))].sort(
    (a, b) => Object.keys(LABEL).indexOf(a) - Object.keys(LABEL).indexOf(b),
  ) as BenchMethod[];
  const md: string[] = [
    '# Benchmarks',
    '',
    'Generated by `npm run bench` from `bench/results.json` (one run of the whole benchmark; re-running resumes unfinished entries, `--force` redoes them).',
    'Every method runs through the same harness (`vtrans compress` with `--method`), to the same exact budget (a fraction of the',
    "encoder parameters, CoFi's convention), with the same distillation. VTrans, Fast- and Faster-VTrans run their default",
    'recipes; the peers share one step budget (Settings, with the steps each run took). Model selection',
    'uses the dev split only and every metric below is on the **test split**. Latencies are onnxruntime-node medians of the',
    'exported teacher and student, measured again in a final pass once all training is over: teacher and student of each entry',
    `interleaved over ${ROUNDS} rounds, the median round kept. Their ratio is what to compare (these machines are noisy).`,
    ...(r.entries.some((e) => e.latencyMs && !e.latencyPass)
      ? ['', '**Some latencies below are still the figures taken during compression (the final latency pass has not run on them).**']
      : []),
    '',
    ...(stale.length
      ? [
          `**${stale.length} stored entries ran with settings or method code that are no longer the benchmark's (${[...new Set(stale.map((e) => `${e.task} ${LABEL[e.method]}`))].join(', ')}); they are left out until \`npm run bench\` runs them again.**`,
          '',
        ]
      : []),
    ...builds.flatMap((b) => b.others.flatMap((o) => otherBuildNotice(b.task, o, b, b.pinned))),
    '**How far these tables go.** A cell with several seeds shows mean ± standard deviation (seeds); one without is one',
    'seed. On the spam test split one example is 0.2 points of accuracy. A claim that one method beats another is made only',
    'from a paired bootstrap interval that excludes 0 (the interval tables, and "Where VTrans loses"); the sizes, wall times',
    'and latency ratios are measured, not sampled, and hold as stated for this machine.',
    '',
    '## Machine',
    '',
    `- CPU: ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB; ${r.machine.platform}; Node ${r.machine.node}`,
    `- backend: Python ${r.machine.python ?? '?'}, torch ${r.machine.torch ?? '?'}, ${r.machine.backendThreads ?? '?'} threads, device ${r.machine.device ?? '?'}, OMP_WAIT_POLICY=PASSIVE`,
    `- onnxruntime-node: ${r.machine.onnxThreads ?? '?'} intra-op threads, sequence length 128, batch 1 and 32, 3 warm-up runs, median of 20 (b1) / 5 (b32)`,
    '',
    '## Settings',
    '',
    ...settingsRows(r),
    '',
    `Common: ${JSON.stringify(r.settings.common)}; per task: ${JSON.stringify(r.settings.tasks)}.`,
    '',
    ...peerRows(r),
  ];
  const where: string[] = [];
  for (const task of Object.keys(r.tasks)) {
    const runs = r.entries.filter((e) => e.task === task);
    if (!runs.length) continue;
    const entries: Cell[] = cellsOf(runs);
    const training = r.tasks[task as keyof typeof r.tasks]!.training as {
      test?: { name: string; value: number };
      params?: { total: number; encoder: number };
      unigramTestPerplexity?: number;
    };
    const teacherTest = entries.find((e) => e.teacherTest)?.teacherTest ?? training.test;
    const teacherFlops = teacherFlopsOf.get(task) ?? 0;
    md.push(`## ${TASK_TITLE[task] ?? task}`, '');
    md.push(
      `Teacher: ${training.params ? `${fmtCount(training.params.total)} parameters (${fmtCount(training.params.encoder)} encoder)` : ''}, test ${teacherTest ? `${teacherTest.name} ${fmtMetric(teacherTest.name, teacherTest.value)}` : '—'}${training.unigramTestPerplexity ? ` (an add-one unigram model: perplexity ${training.unigramTestPerplexity.toFixed(1)})` : ''}.`,
      '',
    );
    const series: Series[] = methods.map((m) => ({
      name: LABEL[m],
      dashed: !OURS.has(m),
      points: entries
        .filter((e) => e.method === m && e.status === 'done' && e.test)
        .map((e) => {
          const scale = e.test!.name === 'accuracy' ? 100 : 1;
          return { x: e.keep, y: scale * e.test!.value, err: e.testStd && scale * e.testStd };
        }),
    }));
    const metricName = entries.find((e) => e.test)?.test?.name ?? 'metric';
    const svg = `${task}-tradeoff.svg`;
    fs.writeFileSync(
      path.join(plots, svg),
      lineChart(series, {
        title: `${task}: test ${metricName} vs encoder parameters kept`,
        xLabel: 'fraction of encoder parameters kept (log scale)',
        yLabel: metricName === 'accuracy' ? 'test accuracy (%)' : 'test perplexity (lower is better)',
        logX: true,
        reference: teacherTest
          ? { y: metricName === 'accuracy' ? 100 * teacherTest.value : teacherTest.value, label: 'teacher' }
          : undefined,
      }),
    );
    md.push(`![${task} tradeoff](bench/plots/${svg})`, '');
    md.push(`### Test ${metricName} (best per budget in bold)`, '', metricTable(entries, budgets, methods), '');
    md.push('### Size of the compressed model', '', sizeTable(entries, budgets, methods), '');
    md.push('### Wall time of the compression (training + export)', '', timeTable(entries, budgets, methods), '');
    md.push(...timeToMetric(task, entries, methods, plots, teacherTest));
    md.push(...fasterAgainstVTrans(entries, budgets, teacherTest));
    md.push(...intervalsSection(entries, budgets));
    md.push(...sweepCheck(entries, budgets));
    md.push('### Measured speedup against the FLOPs reduction (onnxruntime-node, CPU)', '', latencyRows(entries, teacherFlops), '');
    const lat: Series[] = methods.map((m) => ({
      name: LABEL[m],
      dashed: !OURS.has(m),
      points: entries
        .filter((e) => e.method === m && e.status === 'done' && e.latencyMs)
        .map((e) => ({
          x: teacherFlops / e.flopsPerToken,
          y: e.latencyMs!.teacher['32'] / e.latencyMs!.student['32'],
        }))
        .filter((p) => p.x > 0),
    }));
    const svg2 = `${task}-speedup.svg`;
    fs.writeFileSync(
      path.join(plots, svg2),
      lineChart(lat, {
        title: `${task}: measured speedup (batch 32) vs FLOPs reduction`,
        xLabel: 'FLOPs reduction (teacher ÷ student, log scale)',
        yLabel: 'onnxruntime-node speedup, batch 32',
        logX: true,
      }),
    );
    md.push(`![${task} speedup](bench/plots/${svg2})`, '');
    const failed = entries.filter((e) => e.status !== 'done');
    if (failed.length) md.push('Failed runs: ' + failed.map((e) => `${LABEL[e.method]} at ${e.keep}: ${e.error}`).join('; '), '');
    where.push(...losses(task, entries, budgets));
  }
  md.push(...stepCostSection(r));
  md.push(...algorithmSection(r));
  md.push(...shapesSection(r));
  md.push('', '## Interactive latency', '');
  const it = r.interactive;
  if (it?.predict)
    md.push(
      `- Live budget tuning: a \`predict\` round trip (re-threshold the masks of the spam Fast-VTrans run at a new budget: exact sizes from the log α ranking, the sweep's metric) takes ${it.predict.medianMs.toFixed(0)} ms median, ${it.predict.maxMs.toFixed(0)} ms at most, over ${it.predict.calls} budgets, through a warm backend (goal: 2 s).`,
    );
  for (const h of it?.heatmaps ?? [])
    md.push(
      `- Heatmap grid of a ${h.model} report (${h.layers * h.heads} cells) drawn in headless chromium: ${h.medianMs} ms median, ${h.maxMs} ms at most over 5 loads (goal: 300 ms).`,
    );
  if (!it) md.push('- Not measured in this run.');
  md.push(...memorySection(r));
  md.push(...gpuSection(r));
  md.push('## Where VTrans loses', '');
  if (where.length) md.push(...where.map((w) => `- ${w}`));
  else md.push('- In this run a VTrans variant has the best test metric at every budget of both tasks.');
  md.push(...costSentences(r, teacherFlopsOf).map((w) => `- ${w}`));
  md.push('');
  fs.writeFileSync(path.join(root, 'BENCHMARKS.md'), md.join('\n'));
}

/** Test metric against the compression's wall time: each point one method at one budget (labelled with it), so a
 * method's cost to reach a quality reads off directly, up and to the left being better for accuracy. */
function timeToMetric(
  task: string,
  entries: Cell[],
  methods: string[],
  plots: string,
  teacherTest: { name: string; value: number } | undefined,
): string[] {
  const done = entries.filter((e) => e.status === 'done' && e.test && e.compressSeconds > 0);
  if (!done.length) return [];
  const accuracy = done[0].test!.name === 'accuracy';
  const scale = accuracy ? 100 : 1;
  const series: Series[] = methods.map((m) => ({
    name: LABEL[m],
    dashed: !OURS.has(m),
    points: done
      .filter((e) => e.method === m)
      .map((e) => ({ x: e.compressSeconds, y: scale * e.test!.value, err: e.testStd && scale * e.testStd, label: String(e.keep) })),
  }));
  const svg = `${task}-time-to-${accuracy ? 'accuracy' : 'perplexity'}.svg`;
  fs.writeFileSync(
    path.join(plots, svg),
    lineChart(series, {
      title: `${task}: test ${done[0].test!.name} vs compression wall time`,
      xLabel: 'wall time of the compression, seconds (log scale); each point labelled with its budget',
      yLabel: accuracy ? 'test accuracy (%)' : 'test perplexity (lower is better)',
      logX: true,
      scatter: true,
      reference: teacherTest ? { y: scale * teacherTest.value, label: 'teacher' } : undefined,
    }),
  );
  return [`![${task} time to ${done[0].test!.name}](bench/plots/${svg})`, ''];
}

/** Seconds per step against a plain fine-tuning step, per task, with the spread over the processes that measured it. */
function stepCostSection(r: Results): string[] {
  const out = [
    '## Step costs',
    '',
    "A plain fine-tuning step (task loss, backward, clipping, AdamW) against a VTrans mask step (masks and weights, the teacher's outputs read from the cache as in every epoch after the first) and a Faster-VTrans mask step (masks alone on the frozen weights), the three interleaved in one process at the same batch. Each task is measured in several processes; the one with the median VTrans ratio is shown, with the range over all of them. Goals: a VTrans step ≤ 1.25x, a Faster-VTrans step ≤ 0.8x. The last column: a VTrans step after a commit at keep 0.3 of the encoder's parameters with `vib.dropClosed`, whose student has its closed units physically removed (docs/algorithm.md), against the plain step (— where not measured).",
    '',
    "| task | measured | plain step | VTrans step | ratio | with the teacher's forward | Faster-VTrans step | ratio | VTrans step after the drop |",
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const ms = (v: unknown) => `${(1000 * Number(v)).toFixed(0)} ms`;
  for (const task of Object.keys(r.tasks) as DemoName[]) {
    const costs = r.overhead[task];
    if (!costs) {
      out.push(`| ${task} | not with the current code: \`npm run bench -- --algorithm --tasks ${task}\` | | | | | | | |`);
      continue;
    }
    const o = costs.median;
    if ('error' in o) {
      out.push(`| ${task} | ${costs.at.slice(0, 10)} | ${String(o.error)} | | | | | | |`);
      continue;
    }
    const range = (key: string) => {
      const v = costs.repeats.filter((x) => !('error' in x)).map((x) => Number(x[key]));
      return v.length > 1 ? ` (${Math.min(...v).toFixed(2)}–${Math.max(...v).toFixed(2)})` : '';
    };
    const x = (key: string) => `${Number(o[key]).toFixed(2)}x`;
    const dropped = o.vtransDroppedStepSeconds === undefined ? '—' : `${ms(o.vtransDroppedStepSeconds)}, ${x('vtransDroppedOverhead')}`;
    out.push(
      `| ${task} (batch ${o.batchSize}, length ${o.seqLen}, ${o.threads} threads, ${o.steps} steps × ${costs.repeats.length} processes) | ${costs.at.slice(0, 10)} | ${ms(o.plainStepSeconds)} | ${ms(o.vtransStepSeconds)} | **${x('vtransOverhead')}**${range('vtransOverhead')} | ${x('vtransUncachedOverhead')} | ${ms(o.fasterStepSeconds)} | **${x('fasterOverhead')}**${range('fasterOverhead')} | ${dropped} |`,
    );
  }
  return out;
}

/** The `--algorithm` figures: each measured in one process on this machine, so ratios compare within a row. */
function algorithmSection(r: Results): string[] {
  const a = r.algorithm;
  if (!a) return [];
  const out = ['', `## The algorithm's costs and its cut (torch ${a.torch}, Python ${a.python}, measured ${a.at.slice(0, 10)})`, ''];
  for (const sel of a.select) {
    if ('error' in sel) out.push(`- The cut of a LLaMA-2-7B shape: ${String(sel.error)}`);
    else
      out.push(
        `- The exact cut of a LLaMA-2-7B shape (${Number(sel.units).toLocaleString('en-US')} units, \`${sel.rule}\` rule, roundTo ${sel.roundTo}, ${sel.kind}): ranking once ${Number(sel.rankSeconds).toFixed(2)} s, then the worst keep-set over the budgets ${Number(sel.worstKeepSetSeconds).toFixed(3)} s; the first keep-set ${Number(sel.firstKeepSetSeconds).toFixed(2)} s (goal: 0.5 s).`,
      );
  }
  const p = a.predict;
  if ('error' in p) out.push(`- \`predict\` on 7B-shaped masks: ${String(p.error)}`);
  else
    out.push(
      `- \`predict\` on LLaMA-2-7B-shaped masks through the server's handler: the first request (masks loaded and ranked) ${Number(p.firstSeconds).toFixed(2)} s, later ones at most ${Number(p.worstLaterSeconds).toFixed(3)} s (goal: 2 s).`,
    );
  out.push(
    '',
    '| method (default recipe) | phase-1 steps | seconds | target | expected size | thresholded size | expected − target | thresholded − target |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const f of a.phase1) {
    if ('error' in f) out.push(`| ${String(f.method ?? '?')} | ${String(f.error)} | | | | | | |`);
    else {
      const pct = (v: unknown) => `${(100 * Number(v)).toFixed(2)}%`;
      const pts = (v: unknown) => `${signed(100 * Number(v))} pts`;
      out.push(
        `| ${String(f.method)} | ${f.steps} | ${Number(f.seconds).toFixed(0)} | ${pct(f.target)} ${f.budget} | ${pct(f.expected)} | ${pct(f.achieved)} | ${pts(f.expectedGap)} | ${pts(f.achievedGap)} |`,
      );
    }
  }
  out.push(
    '',
    'Spam demo model, keep 0.3 of the encoder parameters, one seed. `npm run bench -- --algorithm` measures these again (`python -m vtrans.benchmarks overhead|select|predict|phase1` one by one; the step costs are in the table above).',
  );
  return out;
}

const gib = (v: unknown) => `${(Number(v) / 2 ** 30).toFixed(2)} GiB`;

/** `--memory`: peak resident memory per parameter against vtrans/memory.py's estimate, and a 7B masks file's costs. */
function memorySection(r: Results): string[] {
  const m = r.memory as
    | (Record<string, unknown> & {
        at: string;
        torch: string;
        error?: string;
        params?: number;
        threads?: number;
        slice?: Record<string, number>;
        runs?: Array<Record<string, unknown> & { estimateParts: Record<string, number> }>;
        masks7b?: Record<string, unknown> & { predict?: Record<string, unknown> };
      })
    | undefined;
  if (!m) return [];
  const out = ['', `## Memory (torch ${m.torch}, CPU, measured ${m.at.slice(0, 10)})`, ''];
  if (m.error || !m.runs) return [...out, `Not measured: ${m.error ?? 'no runs'}.`];
  const sl = m.slice ?? {};
  out.push(
    `A LLaMA-2-7B-shaped slice: hidden ${sl.hidden_size}, ${sl.num_attention_heads} heads, FFN ${sl.intermediate_size}, ${sl.num_hidden_layers} layers, vocabulary ${sl.vocab_size}, random bf16 weights (${Number(m.params).toLocaleString('en-US')} parameters). Each method runs in its own process (load, phase-1 setup, the teacher cache filled, two phase-1 steps, ${m.threads} threads); the peak is that process's ru_maxrss. The estimate is \`vtrans/memory.py\`'s, the one the check before training uses (its model: docs/algorithm.md, Memory).`,
    '',
    '| method | batch × tokens | frozen copy | peak resident | per parameter | estimate | estimate − peak | largest parts of the estimate | step |',
    '|---|---:|---|---:|---:|---:|---:|---|---:|',
  );
  for (const run of m.runs) {
    const parts = Object.entries(run.estimateParts)
      .filter(([, v]) => v >= 2 ** 27)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${gib(v)}`)
      .join(', ');
    out.push(
      `| ${LABEL[String(run.method)] ?? run.method} | ${run.batchSize} × ${run.seqLen} | ${run.frozenDtype} | ${gib(run.peakBytes)} | ${Number(run.bytesPerParam).toFixed(2)} B | ${gib(run.estimatedBytes)} | ${(100 * Number(run.estimateError)).toFixed(1)}% | ${parts} | ${Number(run.stepSeconds).toFixed(1)} s |`,
    );
  }
  out.push(
    '',
    "Where the teacher cache's fill (the teacher on up to 64 examples at once, its logits over the whole vocabulary) is larger than a step's transient memory, it sets the peak, before AdamW's states exist; that is Faster-VTrans's case here. The step times are for the record only: this CPU has no bf16 instructions, so the bf16 matrix products are emulated and slower than fp32 ones.",
  );
  const k = m.masks7b;
  if (k)
    out.push(
      '',
      `A full LLaMA-2-7B-shaped masks file (${Number(k.units).toLocaleString('en-US')} units, ${k.cells} heads): \`select_keep\` (ranking and one keep-set) ${Number(k.selectKeepSeconds).toFixed(2)} s; the heatmap data (report.json's per-layer, per-head table) ${(1000 * Number(k.heatmapDataSeconds)).toFixed(0)} ms; the report (the 100-row prediction table, built and written) ${Number(k.reportSeconds).toFixed(2)} s; \`predict\` through the server's handler ${Number(k.predict?.firstSeconds).toFixed(2)} s for the first request, at most ${Number(k.predict?.worstLaterSeconds).toFixed(3)} s later.`,
    );
  out.push('', '`npm run bench -- --memory` measures these again (`python -m vtrans.benchmarks memory`).');
  return out;
}

const GPU_COMMAND = 'npm run bench -- --gpu';

/** `--gpu`: the figures of `python -m vtrans.benchmarks gpu` on one card, or the command that fills this section. */
function gpuSection(r: Results): string[] {
  const out = ['', '## GPU', ''];
  const g = r.gpu as
    | (Record<string, unknown> & {
        at?: string;
        error?: string;
        faster7b?: Record<string, unknown>;
        bertVtrans?: Record<string, unknown>;
        bf16VsFp32?: Record<string, unknown>;
      })
    | null;
  if (!g || !g.faster7b) {
    out.push(
      `Not run yet: no GPU machine has run it. \`${GPU_COMMAND}\` on a machine where torch sees CUDA fills this section (under 10 minutes on one H100/H200): Faster-VTrans steps on a LLaMA-2-7B-shaped model (random bf16 weights) with the peak GPU memory against the estimate, a BERT-base VTrans step, the MFU of the mask-training loop, and bf16 GPU results against CPU fp32 on a small model, recorded with the card's name in bench/results.json. \`${GPU_COMMAND} --dry\` runs the same code with tiny shapes on any machine (its command, \`python -m vtrans.benchmarks gpu --dry\`, is run by backend/tests/test_memory.py).`,
    );
    if (g?.error) out.push('', `The last attempt failed: ${g.error}`);
    out.push('');
    return out;
  }
  const f = g.faster7b;
  const b = g.bertVtrans ?? {};
  const e = g.bf16VsFp32 ?? {};
  const pct = (v: unknown) => (v === null || v === undefined ? '—' : `${(100 * Number(v)).toFixed(1)}%`);
  out.push(
    `${String(g.device)}, torch ${String(g.torch)}, measured ${String(g.at ?? '').slice(0, 10)} by \`${GPU_COMMAND}\`.`,
    '',
    `- Faster-VTrans on a LLaMA-2-7B shape (${Number(f.params).toLocaleString('en-US')} parameters, batch ${f.batchSize} × ${f.seqLen}): ${Number(f.stepSeconds).toFixed(3)} s a step, ${Number(f.tokensPerSecond).toFixed(0)} tokens/s, ${Number(f.achievedTflops).toFixed(1)} TFLOP/s (MFU ${pct(f.mfu)}); peak GPU memory ${gib(f.peakMemoryBytes)} against the estimate ${gib(f.estimatedBytes)}.`,
    `- A BERT-base VTrans step (batch ${b.batchSize} × ${b.seqLen}): ${Number(b.stepSeconds).toFixed(3)} s, ${Number(b.samplesPerSecond).toFixed(0)} samples/s, ${Number(b.achievedTflops).toFixed(1)} TFLOP/s (MFU ${pct(b.mfu)}).`,
    `- bf16 on the GPU against fp32 on the CPU (a small BERT, the same batch): largest logit difference ${Number(e.maxAbsLogitDiff).toFixed(4)} (${pct(e.relLogitDiff)} of the largest logit), argmax agreement ${pct(e.argmaxAgreement)}, loss ${Number(e.lossBf16).toFixed(4)} against ${Number(e.lossFp32).toFixed(4)}.`,
    '',
  );
  return out;
}

/** `--shapes`: the price of the standard (uniform) shape at each budget, from one run's masks. */
function shapesSection(r: Results): string[] {
  const sh = r.shapes as
    | {
        at: string;
        torch: string;
        run: string;
        error?: string;
        kind?: string;
        latency?: { seqLen: number; threads: number };
        points?: Array<{
          keep: number;
          shape: string;
          achieved: number;
          params: number;
          metric: { name: string; value: number; count: number };
          latencyMs: Record<string, number>;
        }>;
      }
    | undefined;
  if (!sh) return [];
  const out = ['', `## Output shapes: uniform against heterogeneous (torch ${sh.torch}, measured ${sh.at.slice(0, 10)})`, ''];
  if (sh.error || !sh.points) return [...out, `Not measured: ${sh.error ?? 'no points'}.`];
  out.push(
    `One VTrans run on the spam demo (keep 0.3 of the encoder parameters, \`${sh.run}\`); its masks re-thresholded at each budget of ${sh.kind} in both shapes, no retraining. The metric is on the run's eval split (${sh.points[0]?.metric.count ?? '?'} examples); latency is onnxruntime (Python) at length ${sh.latency?.seqLen}, ${sh.latency?.threads} threads, the median of 20 (b1) / 5 (b32) runs. Points above the run's own budget come from its phase-1 snapshots.`,
    '',
    '| keep | shape | achieved | parameters | metric | latency b1 | latency b32 |',
    '|---:|---|---:|---:|---:|---:|---:|',
  );
  for (const p of sh.points)
    out.push(
      `| ${p.keep} | ${p.shape} | ${(100 * p.achieved).toFixed(2)}% | ${p.params.toLocaleString('en-US')} | ${p.metric.name === 'accuracy' ? `${(100 * p.metric.value).toFixed(2)}%` : p.metric.value.toFixed(2)} | ${p.latencyMs['1'].toFixed(2)} ms | ${p.latencyMs['32'].toFixed(2)} ms |`,
    );
  return out;
}
