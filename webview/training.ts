/**
 * The live training panel: a run's metrics.jsonl (the backend's MetricsRecord lines) drawn while it trains and
 * after — the loss of both phases, the VIB KL term, the expected size under the soft gates against the ramping
 * target, and the Lagrange multipliers λ1, λ2. The host sends records as the file grows (`metrics` messages);
 * the page asks for what it misses with `requestMetrics`. Observable Plot, like the tradeoff chart.
 */
import type * as PlotNs from '@observablehq/plot' with { 'resolution-mode': 'import' };
import type { MetricsRecord } from '../src/core/contracts';
import { fmtMetric, fmtPct } from '../src/core/findings';
import { BUDGET_KIND_LABEL } from '../src/core/labels';
import { formatEta, PHASE_LABEL } from '../src/core/progressText';
import type { TrainingState } from '../src/core/webviewProtocol';
import { h, themeColor } from './dom';
import { plotReady } from './tradeoff';

let Plot: typeof PlotNs | null = null;
void plotReady.then((m) => (Plot = m));

/** One drawn point: the step across both phases (phase 2 continues after phase 1's last step). */
export interface SeriesPoint {
  x: number;
  y: number;
  series: string;
  phase: 'prune' | 'finetune';
  step: number;
}

interface ChartSpec {
  id: string;
  title: string;
  yLabel: string;
  points(records: MetricsRecord[], offsets: { finetune: number }): SeriesPoint[];
  tick?: (v: number) => string;
}

/** Steps of phase 2 continue after phase 1's last step, so both phases share one x axis. */
export function phaseOffsets(records: readonly MetricsRecord[]): { finetune: number } {
  let last = 0;
  for (const r of records) if (r.phase === 'prune' && r.step != null) last = Math.max(last, r.step);
  return { finetune: last };
}

const x = (r: MetricsRecord, o: { finetune: number }) => (r.step ?? 0) + (r.phase === 'finetune' ? o.finetune : 0);
const isStep = (r: MetricsRecord): r is MetricsRecord & { phase: 'prune' | 'finetune'; step: number } =>
  (r.phase === 'prune' || r.phase === 'finetune') && r.step != null && r.eval == null;

export const CHARTS: ChartSpec[] = [
  {
    id: 'loss',
    title: 'Loss (distillation + task)',
    yLabel: 'loss',
    points: (rs, o) =>
      rs
        .filter(isStep)
        .filter((r) => r.loss != null && Number.isFinite(r.loss))
        .map((r) => ({
          x: x(r, o),
          y: r.loss!,
          series: r.phase === 'prune' ? 'phase 1: masks' : 'phase 2: fine-tune',
          phase: r.phase,
          step: r.step,
        })),
  },
  {
    id: 'kl',
    title: 'KL of the VIB gates',
    yLabel: 'KL',
    points: (rs, o) =>
      rs
        .filter(isStep)
        .filter((r) => r.kl != null && Number.isFinite(r.kl))
        .map((r) => ({ x: x(r, o), y: r.kl!, series: 'KL', phase: r.phase, step: r.step })),
  },
  {
    id: 'size',
    title: 'Expected size vs target',
    yLabel: 'share kept',
    tick: (v) => fmtPct(v, 0),
    points: (rs, o) =>
      rs
        .filter(isStep)
        .flatMap((r) => [
          ...(r.sparsity != null ? [{ x: x(r, o), y: 1 - r.sparsity, series: 'expected size', phase: r.phase, step: r.step }] : []),
          ...(r.target != null ? [{ x: x(r, o), y: r.target, series: 'target', phase: r.phase, step: r.step }] : []),
        ]),
  },
  {
    id: 'lambda',
    title: 'Lagrange multipliers λ',
    yLabel: 'λ',
    points: (rs, o) =>
      rs
        .filter(isStep)
        .flatMap((r) =>
          (r.lambda ?? []).slice(0, 2).map((v, i) => ({ x: x(r, o), y: v, series: i === 0 ? 'λ1' : 'λ2', phase: r.phase, step: r.step })),
        ),
  },
];

const SERIES_COLOR: Record<string, [string, string]> = {
  'phase 1: masks': ['--vscode-charts-blue', '#3794ff'],
  'phase 2: fine-tune': ['--vscode-charts-green', '#388a34'],
  KL: ['--vscode-charts-purple', '#b180d7'],
  'expected size': ['--vscode-charts-blue', '#3794ff'],
  target: ['--vscode-charts-foreground', '#888888'],
  λ1: ['--vscode-charts-orange', '#d18616'],
  λ2: ['--vscode-charts-yellow', '#cca700'],
};

export class TrainingView {
  readonly root: HTMLElement;
  private records: MetricsRecord[] = [];
  private state: TrainingState | null = null;
  private readonly header = h('header', { class: 'vt-header' });
  private readonly evals = h('p', { class: 'vt-subtitle vt-train-evals' });
  private readonly grid = h('div', { class: 'vt-train-grid', 'data-testid': 'training-charts' });
  private readonly boxes = new Map<string, HTMLElement>();
  private readonly resize: ResizeObserver;
  private lastWidth = 0;

  constructor() {
    for (const c of CHARTS) {
      const box = h(
        'figure',
        { class: 'vt-train-chart', 'data-chart': c.id },
        h('figcaption', {}, c.title),
        h('div', { class: 'vt-train-plot' }),
      );
      this.boxes.set(c.id, box);
      this.grid.append(box);
    }
    this.root = h('section', { class: 'vt-view vt-training', 'aria-label': 'Training curves' }, this.header, this.evals, this.grid);
    this.resize = new ResizeObserver(() => {
      if (Math.abs(this.grid.clientWidth - this.lastWidth) > 24) this.draw();
    });
  }

  mount(): void {
    this.resize.observe(this.grid);
    if (Plot) this.draw();
    else void plotReady.then(() => this.draw());
  }

  /** Records from index `from` (0 replaces); returns false when a gap means the page must ask for more. */
  update(state: TrainingState, from: number, records: MetricsRecord[]): boolean {
    if (from > this.records.length) return false;
    this.records = [...this.records.slice(0, from), ...records];
    this.state = state;
    this.draw();
    return true;
  }

  get count(): number {
    return this.records.length;
  }

  private drawHeader(): void {
    const st = this.state;
    if (!st) return;
    const p = st.progress;
    const target = st.target ? `target: keep ${fmtPct(st.target.keep)} of ${BUDGET_KIND_LABEL[st.target.kind]}` : '';
    const phase = p
      ? `${PHASE_LABEL[p.phase] ?? p.phase} ${p.step}/${p.total}${formatEta(p.eta) ? ` · ${formatEta(p.eta)} left in this phase` : ''}`
      : '';
    const status = st.status === 'running' ? (phase ? `running — ${phase}` : 'running') : st.status;
    this.header.replaceChildren(
      h('h1', { class: 'vt-title' }, 'Training'),
      h(
        'p',
        { class: 'vt-subtitle' },
        h('span', { class: 'vt-runid' }, st.title),
        ` — ${[status, target, `${this.records.filter(isStep).length} points from metrics.jsonl`].filter(Boolean).join(' · ')}`,
      ),
      ...(st.status === 'running'
        ? [h('p', { class: 'vt-hint' }, 'The curves grow as the backend appends to metrics.jsonl (every 10 steps).')]
        : []),
    );
    const evals = this.records.filter((r) => r.eval);
    this.evals.textContent = evals.length
      ? `Evaluations: ${evals
          .map(
            (r) =>
              `${r.phase === 'teacher' ? 'teacher' : `fine-tune step ${r.step}`} ${r.eval!.name} ${fmtMetric(r.eval!.name, r.eval!.value)}`,
          )
          .join(' · ')}`
      : '';
  }

  private draw(): void {
    this.drawHeader();
    const P = Plot;
    if (!P) return;
    const width = Math.max(280, Math.floor(((this.grid.clientWidth || 900) - 24) / 2));
    this.lastWidth = this.grid.clientWidth;
    const offsets = phaseOffsets(this.records);
    const fg = themeColor('--vscode-foreground', '#333333');
    for (const c of CHARTS) {
      const box = this.boxes.get(c.id)!;
      const plotBox = box.querySelector('.vt-train-plot') as HTMLElement;
      const pts = c.points(this.records, offsets);
      box.dataset.points = String(pts.length);
      if (!pts.length) {
        plotBox.replaceChildren(
          h('p', { class: 'vt-hint' }, this.state?.status === 'running' ? 'Waiting for the first records…' : 'No records.'),
        );
        continue;
      }
      const series = [...new Set(pts.map((p) => p.series))];
      const colors = series.map((s) => themeColor(...(SERIES_COLOR[s] ?? ['--vscode-foreground', fg])));
      const marks: PlotNs.Markish[] = [P.frame({ stroke: fg, strokeOpacity: 0.2 })];
      if (offsets.finetune > 0 && pts.some((p) => p.phase === 'finetune'))
        marks.push(P.ruleX([offsets.finetune], { stroke: fg, strokeOpacity: 0.35, strokeDasharray: '3,3' }));
      marks.push(
        P.line(pts, { x: 'x', y: 'y', z: 'series', stroke: 'series', strokeWidth: 1.5 }),
        P.dot(pts, { x: 'x', y: 'y', fill: 'series', r: 2.2, className: 'vt-train-point' }),
      );
      const chart = P.plot({
        width,
        height: 200,
        marginLeft: 52,
        marginBottom: 34,
        marginTop: 12,
        marginRight: 12,
        style: { background: 'transparent', color: fg, fontSize: '11px', fontFamily: 'var(--vscode-font-family, system-ui, sans-serif)' },
        x: { label: 'step →', labelArrow: 'none', grid: true, ticks: Math.max(3, Math.floor(width / 90)) },
        y: { label: c.yLabel, labelArrow: 'none', grid: true, nice: true, ...(c.tick ? { tickFormat: c.tick } : {}) },
        color: { domain: series, range: colors, legend: false },
        marks,
      }) as SVGSVGElement;
      for (const st of chart.querySelectorAll('style')) st.remove();
      chart.classList.add('vt-plot');
      chart.setAttribute('role', 'img');
      chart.setAttribute('aria-label', `${c.title}: ${pts.length} points`);
      const legend = h(
        'ul',
        { class: 'vt-legend vt-train-legend' },
        ...series.map((s, i) => h('li', { class: 'vt-legend-item' }, h('span', { class: 'vt-swatch', 'data-color': colors[i] }), s)),
      );
      plotBox.replaceChildren(chart, legend);
      // Swatch colours through CSSOM (the CSP allows no style attributes).
      legend.querySelectorAll<HTMLElement>('.vt-swatch').forEach((el) => (el.style.background = el.dataset.color ?? ''));
    }
  }

  dispose(): void {
    this.resize.disconnect();
    this.root.remove();
  }
}
