/**
 * Plain-sentence findings computed from a run's report.json, and the number formatting every view shares
 * (webviews, report.html, report.md). Deterministic (no locale-dependent formatting) and browser-safe.
 *
 * The main finding checks the paper's observation (VTrans, arXiv 2406.05276, section on attention probes):
 * heads that get pruned put most of their attention on special tokens ([CLS]/[SEP]/BOS/EOS), while the
 * retained heads attend to content. It is reported as confirmed, partly confirmed or not confirmed on the
 * model at hand, with the figures.
 */
import { higherIsBetter, PROBE_NAMES, type HeadReport, type LayerReport, type MetricName, type ProbeName, type RunReport } from './report';

// ---------------------------------------------------------------- formatting

/** 1234567 → "1,234,567". */
export function fmtInt(n: number): string {
  const sign = n < 0 ? '-' : '';
  const s = String(Math.round(Math.abs(n)));
  return sign + s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/**
 * Counts in one compact form everywhere (views, status bar, CLI, axis ticks): three significant digits, no space,
 * k / M / B — 6738415616 → "6.74B", 109482240 → "109M", 569900 → "570k", 12345 → "12.3k", 812 → "812".
 */
export function fmtCount(n: number): string {
  const a = Math.abs(n);
  const [d, u] = a >= 999.5e6 ? [1e9, 'B'] : a >= 999.5e3 ? [1e6, 'M'] : a >= 1e3 ? [1e3, 'k'] : [1, ''];
  if (d === 1) return fmtInt(n);
  return `${Number((n / d).toPrecision(3))}${u}`;
}

/** FLOPs per token: 2.2e10 → "22B FLOPs" (the count form of fmtCount). */
export function fmtFlops(n: number): string {
  return `${fmtCount(n)} FLOPs`;
}

/** A fraction as a percentage: 0.6123 → "61.2%". */
export function fmtPct(fraction: number, digits = 1): string {
  return `${(fraction * 100).toFixed(digits)}%`;
}

export function fmtMs(ms: number): string {
  return `${ms < 10 ? ms.toFixed(2) : ms.toFixed(1)} ms`;
}

export function fmtBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

/** A number with `digits` decimals and no locale grouping ("-2.314"). */
export function fmtNum(v: number, digits = 3): string {
  return v.toFixed(digits);
}

export const METRIC_LABEL: Record<MetricName, string> = { accuracy: 'accuracy', perplexity: 'perplexity' };

/** A metric value as the views print it: accuracy as a percentage with two decimals, perplexity with two decimals. */
export function fmtMetric(name: MetricName, v: number | null | undefined): string {
  if (v == null || !Number.isFinite(v)) return '—';
  return name === 'accuracy' ? fmtPct(v, 2) : v.toFixed(2);
}

/** Exact figure (tooltips, tables): accuracy as a percentage with two decimals, perplexity with four decimals. */
export function fmtMetricExact(name: MetricName, v: number | null | undefined): string {
  if (v == null || !Number.isFinite(v)) return '—';
  return name === 'accuracy' ? fmtPct(v, 2) : v.toFixed(4);
}

/** How much worse or better `student` is than `teacher`, in the metric's own terms. */
export function fmtMetricDelta(name: MetricName, student: number, teacher: number): string {
  if (name === 'accuracy') {
    const pts = (student - teacher) * 100;
    if (Math.abs(pts) < 0.005) return 'no change';
    return pts < 0 ? `a drop of ${(-pts).toFixed(2)} points` : `a gain of ${pts.toFixed(2)} points`;
  }
  const rel = teacher !== 0 ? student / teacher - 1 : 0;
  if (Math.abs(rel) < 0.00005) return 'no change';
  return `${rel > 0 ? '+' : '-'}${fmtPct(Math.abs(rel))}, ${higherIsBetter(name) ? 'higher' : 'lower'} is better`;
}

export const PROBE_LABEL: Record<ProbeName, string> = {
  special: 'special tokens',
  current: 'current token',
  previous: 'previous token',
  keywords: 'keywords',
  entropy: 'entropy',
};

/** Probe values: attention masses as percentages, entropy in nats. */
export function fmtProbe(name: ProbeName, v: number | undefined): string {
  if (v == null || !Number.isFinite(v)) return '—';
  return name === 'entropy' ? `${v.toFixed(3)} nats` : fmtPct(v);
}

// ---------------------------------------------------------------- per-layer summaries

/** A head counts as retained only when it and its attention sublayer are both kept. */
export function headKept(layer: LayerReport, head: HeadReport): boolean {
  return head.kept && layer.attentionKept;
}

export function mean(xs: readonly number[]): number | null {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}

export interface ProbeMeans {
  kept: Partial<Record<ProbeName, number>>;
  pruned: Partial<Record<ProbeName, number>>;
}

export interface LayerSummary {
  index: number;
  headsTotal: number;
  keptHeads: number[];
  prunedHeads: number[];
  ffnKept: number;
  ffnTotal: number;
  attentionKept: boolean;
  ffnSublayerKept: boolean;
  probes: ProbeMeans;
  /** Approximate share of the layer's attention + FFN weights removed (see `unitWeights`). */
  removedShare: number;
  removedAttentionWeights: number;
  removedFfnWeights: number;
}

/**
 * Weights per head and per FFN neuron, from the teacher's shape: a head owns its query and output slices
 * (2·H·d) plus its share of the key/value projections (2·H·d / groupSize); an FFN neuron owns one row and
 * one column of each FFN matrix (2 matrices, 3 for LLaMA's gated FFN). Biases and norms are ignored.
 */
export function unitWeights(report: RunReport, layer: LayerReport): { head: number; neuron: number } {
  const H = report.model.hidden;
  const d = report.model.heads > 0 ? H / report.model.heads : 0;
  const g = Math.max(1, layer.groupSize || 1);
  return { head: H * d * (2 + 2 / g), neuron: H * (report.model.family === 'llama' ? 3 : 2) };
}

function probeMeans(layers: readonly LayerReport[]): ProbeMeans {
  const kept: Partial<Record<ProbeName, number>> = {};
  const pruned: Partial<Record<ProbeName, number>> = {};
  for (const p of PROBE_NAMES) {
    const k: number[] = [];
    const q: number[] = [];
    for (const l of layers) {
      for (const h of l.heads) {
        const v = h.probes?.[p];
        if (v == null || !Number.isFinite(v)) continue;
        (headKept(l, h) ? k : q).push(v);
      }
    }
    const mk = mean(k);
    const mq = mean(q);
    if (mk != null) kept[p] = mk;
    if (mq != null) pruned[p] = mq;
  }
  return { kept, pruned };
}

export function summarizeLayer(report: RunReport, layer: LayerReport): LayerSummary {
  const keptHeads: number[] = [];
  const prunedHeads: number[] = [];
  for (const h of layer.heads) (headKept(layer, h) ? keptHeads : prunedHeads).push(h.index);
  const ffnKept = layer.ffnKept ? layer.ffn.kept : 0;
  const w = unitWeights(report, layer);
  const removedAttentionWeights = prunedHeads.length * w.head;
  const removedFfnWeights = (layer.ffn.total - ffnKept) * w.neuron;
  const totalWeights = layer.heads.length * w.head + layer.ffn.total * w.neuron;
  return {
    index: layer.index,
    headsTotal: layer.heads.length,
    keptHeads,
    prunedHeads,
    ffnKept,
    ffnTotal: layer.ffn.total,
    attentionKept: layer.attentionKept,
    ffnSublayerKept: layer.ffnKept,
    probes: probeMeans([layer]),
    removedShare: totalWeights > 0 ? (removedAttentionWeights + removedFfnWeights) / totalWeights : 0,
    removedAttentionWeights,
    removedFfnWeights,
  };
}

export function summarizeLayers(report: RunReport): LayerSummary[] {
  return report.layers.map((l) => summarizeLayer(report, l));
}

/** Mean probe figures over all pruned and all retained heads of the model. */
export function modelProbeMeans(report: RunReport): ProbeMeans {
  return probeMeans(report.layers);
}

// ---------------------------------------------------------------- findings

export type FindingId = 'student' | 'special' | 'otherProbes' | 'layers' | 'share' | 'sublayers' | 'hidden';

export interface Finding {
  id: FindingId;
  text: string;
}

/** Lists numbers as English: [3] → "3", [3, 7] → "3 and 7", [1, 2, 5] → "1, 2 and 5". */
export function listEnglish(xs: readonly (string | number)[]): string {
  const s = xs.map(String);
  if (s.length <= 1) return s.join('');
  return `${s.slice(0, -1).join(', ')} and ${s[s.length - 1]}`;
}

function studentFinding(r: RunReport): Finding {
  const s = r.student;
  if (!s) {
    const why =
      r.status === 'running'
        ? 'the run is still running'
        : r.status === 'failed'
          ? 'the run failed before writing it'
          : r.status === 'cancelled'
            ? 'the run was cancelled before writing it'
            : 'the report has none';
    return { id: 'student', text: `No compressed model yet: ${why}.` };
  }
  const t = r.teacher;
  let text = `The compressed model keeps ${fmtPct(s.params / t.params)} of the parameters (${fmtCount(s.params)} of ${fmtCount(t.params)}) and ${fmtPct(s.flopsPerToken / t.flopsPerToken)} of the FLOPs per token`;
  if (s.metric && t.metric) {
    const name = r.metricName;
    text += `; its ${METRIC_LABEL[name]} is ${fmtMetric(name, s.metric.value)} against the teacher's ${fmtMetric(name, t.metric.value)} (${fmtMetricDelta(name, s.metric.value, t.metric.value)})`;
  } else {
    text += `; its ${METRIC_LABEL[r.metricName]} has not been measured`;
  }
  return { id: 'student', text: text + '.' };
}

/** Verdict on the paper's observation from the mean special-token attention of pruned and retained heads. */
export type Verdict = 'confirmed' | 'partly' | 'not-confirmed';
export function specialVerdict(prunedMean: number, keptMean: number): Verdict {
  if (prunedMean > keptMean && prunedMean >= 0.5) return 'confirmed';
  if (prunedMean > keptMean) return 'partly';
  return 'not-confirmed';
}

function specialFinding(r: RunReport, m: ProbeMeans, counts: { kept: number; pruned: number }): Finding | null {
  if (r.layers.length === 0) return null;
  const pk = m.kept.special;
  const pp = m.pruned.special;
  if (counts.pruned === 0) return { id: 'special', text: 'No attention head was pruned, so pruned and retained heads cannot be compared.' };
  if (counts.kept === 0)
    return { id: 'special', text: 'Every attention head was pruned, so pruned and retained heads cannot be compared.' };
  if (pk == null || pp == null) {
    return {
      id: 'special',
      text: "This report has no attention probes, so the paper's observation on special tokens cannot be checked (the backend computes them when a run finishes).",
    };
  }
  const head = `Pruned heads put ${fmtPct(pp)} of their attention on special tokens on average, retained heads ${fmtPct(pk)} (${fmtInt(counts.pruned)} pruned, ${fmtInt(counts.kept)} retained heads)`;
  switch (specialVerdict(pp, pk)) {
    case 'confirmed':
      return { id: 'special', text: `${head}: this confirms the paper's observation that pruned heads attend mostly to special tokens.` };
    case 'partly':
      return {
        id: 'special',
        text: `${head}: pruned heads attend more to special tokens than retained ones, as the paper observed, but not mostly (under 50%), so the observation is only partly confirmed.`,
      };
    case 'not-confirmed':
      return {
        id: 'special',
        text: `${head}: this does not confirm the paper's observation that pruned heads attend mostly to special tokens.`,
      };
  }
}

function otherProbesFinding(m: ProbeMeans): Finding | null {
  const parts: string[] = [];
  for (const p of ['current', 'previous', 'keywords', 'entropy'] as const) {
    const a = m.pruned[p];
    const b = m.kept[p];
    if (a == null || b == null) continue;
    parts.push(`${PROBE_LABEL[p]} ${fmtProbe(p, a)} vs ${fmtProbe(p, b)}`);
  }
  if (!parts.length) return null;
  return { id: 'otherProbes', text: `Other probes, pruned vs retained heads: ${listEnglish(parts)}.` };
}

function layersFinding(summaries: LayerSummary[]): Finding | null {
  if (!summaries.length) return null;
  const lost = summaries.filter((s) => s.removedShare > 0).sort((a, b) => b.removedShare - a.removedShare || a.index - b.index);
  if (!lost.length) return { id: 'layers', text: 'No layer lost any attention heads or FFN neurons.' };
  const top = lost
    .slice(0, 3)
    .map(
      (s) =>
        `layer ${s.index} (${fmtPct(s.removedShare)} of its weights: ${s.prunedHeads.length} of ${s.headsTotal} heads and ${fmtInt(s.ffnTotal - s.ffnKept)} of ${fmtInt(s.ffnTotal)} FFN neurons removed)`,
    );
  return { id: 'layers', text: `The layers that lost most: ${listEnglish(top)}.` };
}

function shareFinding(summaries: LayerSummary[]): Finding | null {
  if (!summaries.length) return null;
  const attn = summaries.reduce((a, s) => a + s.removedAttentionWeights, 0);
  const ffn = summaries.reduce((a, s) => a + s.removedFfnWeights, 0);
  const heads = summaries.reduce((a, s) => a + s.keptHeads.length, 0);
  const headsTotal = summaries.reduce((a, s) => a + s.headsTotal, 0);
  const neurons = summaries.reduce((a, s) => a + s.ffnKept, 0);
  const neuronsTotal = summaries.reduce((a, s) => a + s.ffnTotal, 0);
  const remain = `${fmtInt(heads)} of ${fmtInt(headsTotal)} attention heads (${fmtPct(heads / headsTotal)}) and ${fmtInt(neurons)} of ${fmtInt(neuronsTotal)} FFN neurons (${fmtPct(neurons / neuronsTotal)}) remain`;
  if (attn + ffn === 0) return { id: 'share', text: `Nothing was removed inside the layers: ${remain}.` };
  return {
    id: 'share',
    text: `Of the weights removed inside the layers, ${fmtPct(ffn / (attn + ffn))} were FFN neurons and ${fmtPct(attn / (attn + ffn))} attention heads; ${remain}.`,
  };
}

function sublayersFinding(summaries: LayerSummary[]): Finding | null {
  if (!summaries.length) return null;
  const attn = summaries.filter((s) => !s.attentionKept).map((s) => s.index);
  const ffn = summaries.filter((s) => !s.ffnSublayerKept).map((s) => s.index);
  if (!attn.length && !ffn.length) return { id: 'sublayers', text: 'No whole attention or FFN sublayer was removed.' };
  const parts: string[] = [];
  if (attn.length) parts.push(`attention in ${attn.length === 1 ? 'layer' : 'layers'} ${listEnglish(attn)}`);
  if (ffn.length) parts.push(`FFN in ${ffn.length === 1 ? 'layer' : 'layers'} ${listEnglish(ffn)}`);
  return { id: 'sublayers', text: `Whole sublayers removed: ${parts.join('; ')}.` };
}

function hiddenFinding(r: RunReport): Finding | null {
  const h = r.hiddenKept;
  if (!h) return null;
  if (h.kept >= h.total) return { id: 'hidden', text: `All ${fmtInt(h.total)} hidden dimensions were kept.` };
  return {
    id: 'hidden',
    text: `The hidden width was pruned from ${fmtInt(h.total)} to ${fmtInt(h.kept)} dimensions (${fmtPct(h.kept / h.total)} kept).`,
  };
}

/** Counts of retained and pruned heads over the model. */
export function headCounts(r: RunReport): { kept: number; pruned: number } {
  let kept = 0;
  let pruned = 0;
  for (const l of r.layers) {
    for (const h of l.heads) {
      if (headKept(l, h)) kept++;
      else pruned++;
    }
  }
  return { kept, pruned };
}

/** The findings, in reading order. */
export function computeFindings(r: RunReport): Finding[] {
  const summaries = summarizeLayers(r);
  const means = modelProbeMeans(r);
  const out: (Finding | null)[] = [
    studentFinding(r),
    specialFinding(r, means, headCounts(r)),
    otherProbesFinding(means),
    layersFinding(summaries),
    shareFinding(summaries),
    sublayersFinding(summaries),
    hiddenFinding(r),
  ];
  return out.filter((f): f is Finding => f !== null);
}
