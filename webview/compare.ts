/**
 * Comparing runs: their tradeoff curves overlaid in one chart (each run its colour and symbol, its Pareto front
 * as a step line, its compressed model marked) and their figures side by side in a table. The runs' report.json
 * come from the host (`compare` message); x axis parameters, encoder parameters or FLOPs per token.
 */
import type * as PlotNs from '@observablehq/plot' with { 'resolution-mode': 'import' };
import { fmtBytes, fmtCount, fmtInt, fmtMetric, fmtMs, fmtPct, METRIC_LABEL } from '../src/core/findings';
import { fmtDuration } from '../src/core/reportHtml';
import { BUDGET_KIND_LABEL, METHOD_LABEL } from '../src/core/labels';
import { higherIsBetter, type RunReport, type TradeoffPoint } from '../src/core/report';
import type { CompareRun, TradeoffAxis } from '../src/core/webviewProtocol';
import { h, themeColor } from './dom';
import type { Host } from './host';
import { plotReady } from './tradeoff';
import { AXES, allPoints, metricAxisLabel, paretoFront } from './tradeoffData';

let Plot: typeof PlotNs | null = null;
void plotReady.then((m) => (Plot = m));

const RUN_COLORS: [string, string][] = [
  ['--vscode-charts-blue', '#3794ff'],
  ['--vscode-charts-orange', '#d18616'],
  ['--vscode-charts-green', '#388a34'],
  ['--vscode-charts-purple', '#b180d7'],
  ['--vscode-charts-red', '#f14c4c'],
  ['--vscode-charts-yellow', '#cca700'],
];
const RUN_SYMBOLS = ['circle', 'square', 'triangle', 'diamond', 'hexagon', 'star'] as const;

export interface ComparePoint {
  run: number;
  x: number;
  y: number;
  source: TradeoffPoint['source'];
}

/** One run's drawable points on an axis (sweep, fine-tuned, teacher; baselines are left to the run's own view). */
export function runPoints(report: RunReport, run: number, axis: TradeoffAxis): ComparePoint[] {
  return allPoints(report)
    .filter((p) => !p.source.startsWith('baseline:'))
    .flatMap((p) => {
      const xv = AXES[axis].value(p);
      return xv != null && p.metric != null && Number.isFinite(p.metric) ? [{ run, x: xv, y: p.metric, source: p.source }] : [];
    });
}

/** A run's Pareto front, sorted by size. */
export function runFront(points: ComparePoint[], higherBetter: boolean): ComparePoint[] {
  const idx = paretoFront(
    points.map((p) => p.x),
    points.map((p) => p.y),
    higherBetter,
  );
  return idx.map((i) => points[i]).sort((a, b) => a.x - b.x);
}

export class CompareView {
  readonly root: HTMLElement;
  private axis: TradeoffAxis = 'params';
  private readonly chartBox = h('div', { class: 'vt-chart', 'data-testid': 'compare-chart' });
  private readonly legendBox = h('ul', { class: 'vt-legend', 'aria-label': 'Runs' });
  private readonly colors: string[];

  constructor(
    private readonly host: Host,
    private readonly runs: CompareRun[],
  ) {
    this.colors = runs.map((_, i) => themeColor(...RUN_COLORS[i % RUN_COLORS.length]));
    const first = runs[0]?.report;
    const metric = first?.metricName ?? 'accuracy';
    const comparable = runs.filter((r) => r.report.metricName === metric);
    const axisGroup = h('vscode-radio-group', { class: 'vt-axis', 'aria-label': 'x axis' });
    for (const a of ['params', 'encoderParams', 'flopsPerToken'] as const)
      axisGroup.append(h('vscode-radio', { name: 'vt-axis', value: a, checked: a === this.axis }, AXES[a].label));
    axisGroup.addEventListener('change', (e) => {
      const v = (e.target as HTMLInputElement).value as TradeoffAxis;
      if (v !== this.axis && v in AXES) {
        this.axis = v;
        this.draw();
      }
    });
    this.root = h(
      'section',
      { class: 'vt-view vt-compare', 'aria-label': 'Compare runs' },
      h(
        'header',
        { class: 'vt-header' },
        h('h1', { class: 'vt-title' }, `Compare ${runs.length} runs`),
        h(
          'p',
          { class: 'vt-subtitle' },
          `${cap(METRIC_LABEL[metric])} against size; each run's Pareto front as a step line, its compressed model filled.`,
        ),
        comparable.length < runs.length
          ? h(
              'p',
              { class: 'vt-banner vt-banner-failed', role: 'status' },
              `Runs measured in another metric than ${METRIC_LABEL[metric]} are in the table only.`,
            )
          : null,
      ),
      h('div', { class: 'vt-controls' }, h('span', { class: 'vt-control-label' }, 'x axis'), axisGroup),
      this.chartBox,
      this.legendBox,
      this.table(),
    );
  }

  mount(): void {
    if (Plot) this.draw();
    else void plotReady.then(() => this.draw());
  }

  private draw(): void {
    const P = Plot;
    if (!P) return;
    const metric = this.runs[0]?.report.metricName ?? 'accuracy';
    const hb = higherIsBetter(metric);
    const width = Math.max(420, this.chartBox.clientWidth || 800);
    const fg = themeColor('--vscode-foreground', '#333333');
    const marks: PlotNs.Markish[] = [P.frame({ stroke: fg, strokeOpacity: 0.25 })];
    const counts: number[] = [];
    this.runs.forEach((run, i) => {
      if (run.report.metricName !== metric) return counts.push(0);
      const pts = runPoints(run.report, i, this.axis);
      counts.push(pts.length);
      const front = runFront(pts, hb);
      if (front.length > 1)
        marks.push(
          P.line(front, {
            x: 'x',
            y: 'y',
            curve: 'step-after',
            stroke: this.colors[i],
            strokeWidth: 1.6,
            className: `vt-compare-front vt-run-${i}`,
          }),
        );
      marks.push(
        P.dot(pts, {
          x: 'x',
          y: 'y',
          symbol: RUN_SYMBOLS[i % RUN_SYMBOLS.length],
          r: 4.5,
          stroke: this.colors[i],
          strokeWidth: 1.6,
          fill: (d: ComparePoint) => (d.source === 'finetuned' ? this.colors[i] : themeColor('--vscode-editor-background', '#ffffff')),
          className: `vt-compare-points vt-run-${i}`,
          title: (d: ComparePoint) => `${run.title}\n${d.source}: ${AXES[this.axis].exact(d.x)}, ${fmtMetric(metric, d.y)}`,
        }),
      );
    });
    const chart = P.plot({
      width,
      height: 380,
      marginLeft: 64,
      marginBottom: 44,
      marginTop: 20,
      marginRight: 24,
      style: { background: 'transparent', color: fg, fontSize: '11px', fontFamily: 'var(--vscode-font-family, system-ui, sans-serif)' },
      x: { label: `${AXES[this.axis].label} →`, labelArrow: 'none', tickFormat: AXES[this.axis].tick, grid: true },
      y: {
        label: metricAxisLabel(metric),
        labelArrow: 'none',
        grid: true,
        nice: true,
        tickFormat: (v: number) => (metric === 'accuracy' ? fmtPct(v, 0) : String(Number(v.toPrecision(3)))),
      },
      marks,
    }) as SVGSVGElement;
    for (const st of chart.querySelectorAll('style')) st.remove();
    chart.classList.add('vt-plot');
    chart.setAttribute('role', 'img');
    chart.setAttribute('aria-label', `${METRIC_LABEL[metric]} against ${AXES[this.axis].label.toLowerCase()} for ${this.runs.length} runs`);
    chart.dataset.curves = String(chart.querySelectorAll('g.vt-compare-front').length);
    this.chartBox.replaceChildren(chart);
    this.legendBox.replaceChildren(
      ...this.runs.map((r, i) => {
        const sw = h('span', { class: 'vt-swatch', 'aria-hidden': 'true' });
        sw.style.background = this.colors[i];
        return h('li', { class: 'vt-legend-item', 'data-run': i }, sw, `${r.title}${r.note ? ` — ${r.note}` : ''} (${counts[i]} points)`);
      }),
    );
  }

  private table(): HTMLElement {
    const rows: [string, (r: RunReport) => string][] = [
      ['Model', (r) => `${r.model.family}, ${r.model.layers} layers × ${r.model.heads} heads, hidden ${r.model.hidden}`],
      ['Method', (r) => METHOD_LABEL[r.method]],
      ['Run target', (r) => `keep ${fmtPct(r.budget.keep)} of ${BUDGET_KIND_LABEL[r.budget.kind]}`],
      ['Achieved', (r) => fmtPct(r.budget.achieved)],
      ['Parameters', (r) => (r.student ? `${fmtInt(r.student.params)} (${fmtCount(r.student.params)})` : '—')],
      ['Encoder params', (r) => (r.student ? fmtCount(r.student.encoderParams) : '—')],
      ['FLOPs/token', (r) => (r.student ? fmtCount(r.student.flopsPerToken) : '—')],
      [
        'Metric (compressed)',
        (r) => (r.student?.metric ? `${METRIC_LABEL[r.metricName]} ${fmtMetric(r.metricName, r.student.metric.value)}` : '—'),
      ],
      ['Metric (teacher)', (r) => (r.teacher.metric ? fmtMetric(r.metricName, r.teacher.metric.value) : '—')],
      [
        'Test metric',
        (r) =>
          r.test ? `${fmtMetric(r.metricName, r.test.student.value)} (teacher ${fmtMetric(r.metricName, r.test.teacher.value)})` : '—',
      ],
      ['Latency b1', (r) => (r.student?.onnx?.latencyMs['1'] != null ? fmtMs(r.student.onnx.latencyMs['1']) : '—')],
      ['Latency b32', (r) => (r.student?.onnx?.latencyMs['32'] != null ? fmtMs(r.student.onnx.latencyMs['32']) : '—')],
      ['model.onnx', (r) => (r.student?.onnx ? fmtBytes(r.student.onnx.bytes) : '—')],
      ['Wall time', (r) => (r.wallSeconds != null ? fmtDuration(r.wallSeconds) : '—')],
    ];
    const head = h(
      'tr',
      {},
      h('th', { scope: 'col' }, ''),
      ...this.runs.map((r, i) => {
        const link = h('a', { href: '#', 'data-run': i }, r.title);
        link.addEventListener('click', (e) => {
          e.preventDefault();
          this.host.post({ type: 'openPanel', panel: 'report', runDir: r.runDir });
        });
        return h('th', { scope: 'col' }, link);
      }),
    );
    const body = rows.map(([label, f]) =>
      h('tr', {}, h('th', { scope: 'row' }, label), ...this.runs.map((r) => h('td', { class: 'vt-num' }, f(r.report)))),
    );
    body.push(h('tr', {}, h('th', { scope: 'row' }, 'Note'), ...this.runs.map((r) => h('td', {}, r.note || '—'))));
    return h(
      'div',
      { class: 'vt-table-wrap' },
      h(
        'table',
        { class: 'vt-table vt-compare-table' },
        h('caption', {}, 'The runs side by side'),
        h('thead', {}, head),
        h('tbody', {}, ...body),
      ),
    );
  }

  dispose(): void {
    this.root.remove();
  }
}

const cap = (x: string) => x.charAt(0).toUpperCase() + x.slice(1);
