/**
 * Size/accuracy tradeoff panel: metric against size (parameters, encoder parameters, FLOPs, measured
 * latency), the sweep and fine-tuned points, the teacher, baselines, the Pareto front, a budget marker that
 * follows `vtrans.budget.*` live, tooltips with the exact figures, a table, and PNG/SVG/CSV export.
 * Drawn with Observable Plot (SVG, no eval, so the strict CSP holds).
 */
// Plot ships only as an ES module; this file type-checks as CommonJS (package.json has no "type"), so the
// types come through an import-mode type import and the code through import(), which esbuild bundles inline.
import type * as PlotNs from '@observablehq/plot' with { 'resolution-mode': 'import' };
import { BUDGET_KIND_LABEL, BUDGET_KIND_SHORT } from '../src/core/labels';
import { fmtCount, fmtInt, fmtMetric, fmtMetricExact, fmtMs, fmtPct, METRIC_LABEL } from '../src/core/findings';
import { higherIsBetter, type RunReport, type TradeoffPoint } from '../src/core/report';
import { exportFileName, type BudgetState, type PredictedPoint, type TradeoffAxis } from '../src/core/webviewProtocol';
import { h, s, themeColor, Tooltip } from './dom';
import { serializeSvg, svgToPngBase64 } from './svgExport';
import {
  allPoints,
  availableAxes,
  AXES,
  budgetLabel,
  budgetTarget,
  budgetX,
  exportShape,
  groupOf,
  KIND_KEY,
  metricAxisLabel,
  plotted,
  predictionAt,
  sourceLabel,
  sourceShort,
  tradeoffCsv,
  type PlottedPoint,
} from './tradeoffData';
import { button, runHeader, toolbar, type View, type ViewContext } from './view';

let Plot: typeof PlotNs | null = null;
/** Resolves once Observable Plot is loaded (immediately in the bundle: the import is inlined). */
export const plotReady: Promise<typeof PlotNs> = import('@observablehq/plot').then((m) => (Plot = m));

type PlotSymbol = 'circle' | 'square' | 'star' | 'triangle' | 'diamond' | 'cross' | 'times' | 'hexagon';

interface SeriesStyle {
  source: TradeoffPoint['source'];
  label: string;
  symbol: PlotSymbol;
  color: string;
  filled: boolean;
  r: number;
}

const BASELINE_SYMBOLS: PlotSymbol[] = ['triangle', 'diamond', 'cross', 'times', 'hexagon'];
const BASELINE_COLORS: [string, string][] = [
  ['--vscode-charts-purple', '#b180d7'],
  ['--vscode-charts-orange', '#d18616'],
  ['--vscode-charts-yellow', '#cca700'],
  ['--vscode-charts-red', '#f14c4c'],
];

/** One style per source, stable across renders: shape and fill differ, not only the colour. */
function seriesStyles(points: readonly TradeoffPoint[]): SeriesStyle[] {
  const sources = [...new Set(points.map((p) => p.source))];
  const order = (src: string) =>
    src === 'sweep' ? 0 : src.startsWith('sweep:') ? 0.5 : src === 'finetuned' ? 1 : src === 'teacher' ? 2 : 3;
  sources.sort((a, b) => order(a) - order(b) || a.localeCompare(b));
  let b = 0;
  return sources.map((source) => {
    const label = sourceLabel(source);
    switch (groupOf(source)) {
      case 'sweep':
        return { source, label, symbol: 'circle', color: themeColor('--vscode-charts-blue', '#3794ff'), filled: false, r: 4.5 };
      case 'shape': // the same masks under the other output shape's constraint: filled, beside the sweep's open circles
        return { source, label, symbol: 'diamond', color: themeColor('--vscode-charts-blue', '#3794ff'), filled: true, r: 4.5 };
      case 'finetuned':
        return { source, label, symbol: 'square', color: themeColor('--vscode-charts-green', '#388a34'), filled: true, r: 6 };
      case 'teacher':
        return { source, label, symbol: 'star', color: themeColor('--vscode-foreground', '#333333'), filled: true, r: 8 };
      default: {
        const [v, fb] = BASELINE_COLORS[b % BASELINE_COLORS.length];
        const style: SeriesStyle = {
          source,
          label,
          symbol: BASELINE_SYMBOLS[b % BASELINE_SYMBOLS.length],
          color: themeColor(v, fb),
          filled: false,
          r: 5.5,
        };
        b++;
        return style;
      }
    }
  });
}

/** Legend icons drawn by hand (12 × 12), matching Plot's symbols closely enough to tell them apart. */
function legendIcon(st: SeriesStyle): SVGSVGElement {
  const common = { fill: st.filled ? st.color : 'none', stroke: st.color, 'stroke-width': 1.5 };
  let shape: SVGElement;
  switch (st.symbol) {
    case 'circle':
      shape = s('circle', { cx: 7, cy: 7, r: 4.5, ...common });
      break;
    case 'square':
      shape = s('rect', { x: 2.5, y: 2.5, width: 9, height: 9, ...common });
      break;
    case 'star':
      shape = s('path', { d: 'M7,1L8.8,5.2L13.3,5.6L9.9,8.6L10.9,13L7,10.7L3.1,13L4.1,8.6L0.7,5.6L5.2,5.2Z', ...common });
      break;
    case 'triangle':
      shape = s('path', { d: 'M7,1.5L12.5,11.5H1.5Z', ...common });
      break;
    case 'diamond':
      shape = s('path', { d: 'M7,1L12,7L7,13L2,7Z', ...common });
      break;
    case 'cross':
      shape = s('path', { d: 'M7,1.5V12.5M1.5,7H12.5', ...common, 'stroke-width': 2.5 });
      break;
    case 'times':
      shape = s('path', { d: 'M2.5,2.5L11.5,11.5M11.5,2.5L2.5,11.5', ...common, 'stroke-width': 2.5 });
      break;
    case 'hexagon':
      shape = s('path', { d: 'M7,1.5L12,4.3V9.7L7,12.5L2,9.7V4.3Z', ...common });
      break;
  }
  return s('svg', { width: 14, height: 14, viewBox: '0 0 14 14', 'aria-hidden': 'true', class: 'vt-legend-icon' }, shape);
}

export class TradeoffView implements View {
  readonly root: HTMLElement;
  private readonly chartBox: HTMLElement;
  private readonly caption: HTMLElement;
  private readonly tooltip = new Tooltip('vt-tradeoff-tooltip');
  private readonly popover: HTMLElement;
  private popoverAnchor: HTMLElement | SVGElement | null = null;
  private readonly tableBox = h('div', { class: 'vt-table-box' });
  private readonly all: TradeoffPoint[];
  private axis: TradeoffAxis;
  private budget: BudgetState | null;
  private chart: (SVGSVGElement & PlotNs.Plot) | null = null;
  private marker: SVGGElement | null = null;
  private xDomain: [number, number] = [0, 1];
  private points: PlottedPoint[] = [];
  private styles: SeriesStyle[] = [];
  private readonly resize: ResizeObserver;
  private lastWidth = 0;

  constructor(
    private readonly ctx: ViewContext,
    private readonly report: RunReport,
    budget: BudgetState | null,
  ) {
    this.budget = budget;
    const all = allPoints(report);
    this.all = all;
    const axes = availableAxes(all);
    this.axis =
      ctx.state.axis && axes.includes(ctx.state.axis)
        ? ctx.state.axis
        : axes.includes(KIND_KEY[report.budget.kind])
          ? KIND_KEY[report.budget.kind]
          : 'params';
    this.styles = seriesStyles(all);

    this.caption = h('p', { class: 'vt-budget-caption', role: 'status', 'aria-live': 'polite' });
    this.chartBox = h('div', { class: 'vt-chart', 'data-testid': 'tradeoff-chart' });
    this.popover = h('div', { class: 'vt-popover', role: 'dialog', 'aria-modal': 'false', hidden: true });
    this.popover.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') this.closePopover(true);
    });

    const axisGroup = h('vscode-radio-group', { class: 'vt-axis', 'aria-label': 'x axis' });
    for (const a of axes) {
      axisGroup.append(h('vscode-radio', { name: 'vt-axis', value: a, checked: a === this.axis }, AXES[a].label));
    }
    axisGroup.addEventListener('change', (e) => {
      const v = (e.target as HTMLInputElement).value as TradeoffAxis;
      if (!axes.includes(v) || v === this.axis) return;
      this.axis = v;
      this.ctx.update({ axis: v });
      this.draw();
    });
    const noLatency = axes.some((a) => a.startsWith('latency'))
      ? null
      : h('span', { class: 'vt-hint' }, 'Latency: no ONNX measurements in this run.');

    const exportBar = toolbar(
      'Export',
      button('Export PNG', () => void this.exportPng(), { secondary: true }),
      button('Export SVG', () => this.exportSvg(), { secondary: true }),
      button('Export CSV', () => this.ctx.host.save('csv', exportFileName(report.runId, 'tradeoff', 'csv'), tradeoffCsv(report), 'utf8'), {
        secondary: true,
      }),
    );

    const hasPoints = all.some((p) => p.metric != null);
    this.root = h(
      'section',
      { class: 'vt-view vt-tradeoff', 'aria-label': 'Size/accuracy tradeoff' },
      runHeader(report, 'Size/accuracy tradeoff'),
      hasPoints
        ? h(
            'div',
            { class: 'vt-controls' },
            h('span', { class: 'vt-control-label', id: 'vt-axis-label' }, 'x axis'),
            axisGroup,
            noLatency,
            exportBar,
          )
        : null,
      this.caption,
      hasPoints
        ? this.chartBox
        : h(
            'div',
            { class: 'vt-state vt-state-empty', role: 'status' },
            h(
              'p',
              {},
              report.status === 'running'
                ? 'No tradeoff points yet: the sweep (masks re-thresholded at several budgets) is written when the pruning phase ends.'
                : 'This run has no tradeoff points with a measured metric. Re-run the compression to get the sweep.',
            ),
          ),
      hasPoints ? this.legend() : null,
      this.tableBox,
      this.popover,
    );
    this.resize = new ResizeObserver(() => {
      const w = this.chartBox.clientWidth;
      if (this.chart && Math.abs(w - this.lastWidth) > 16) this.draw();
    });
  }

  /** Called once the root is in the document (Plot needs the width). */
  mount(): void {
    if (this.all.some((p) => p.metric != null)) {
      if (Plot) this.draw();
      else void plotReady.then(() => this.draw());
    } else this.tableBox.replaceChildren(this.table(this.all));
    this.resize.observe(this.chartBox);
    this.updateCaption();
  }

  private legend(): HTMLElement {
    const items = this.styles.map((st) => h('li', { class: 'vt-legend-item', 'data-source': st.source }, legendIcon(st), st.label));
    const front = h(
      'li',
      { class: 'vt-legend-item' },
      s('svg', { width: 22, height: 14, 'aria-hidden': 'true' }, s('path', { d: 'M1,12H8V7H15V2H21', class: 'vt-front-line' })),
      'Pareto front (this run)',
    );
    const marker = h(
      'li',
      { class: 'vt-legend-item' },
      s('svg', { width: 14, height: 14, 'aria-hidden': 'true' }, s('path', { d: 'M7,0V14', class: 'vt-budget-line' })),
      'Budget setting (vtrans.budget.keep)',
    );
    return h('ul', { class: 'vt-legend', 'aria-label': 'Legend' }, ...items, front, marker);
  }

  private currentPrediction(): PredictedPoint | null {
    return this.budget ? predictionAt(this.report, this.budget) : null;
  }

  private draw(): void {
    const P = Plot;
    if (!P) return;
    this.tooltip.hide();
    this.closePopover(false);
    const report = this.report;
    const axis = AXES[this.axis];
    this.points = plotted(report, this.axis);
    this.tableBox.replaceChildren(this.table(this.all));
    if (!this.points.length) {
      this.chartBox.replaceChildren(h('p', { class: 'vt-hint' }, `No point has both ${axis.label.toLowerCase()} and a metric.`));
      this.chart = null;
      return;
    }
    const width = Math.max(360, this.chartBox.clientWidth || 640);
    this.lastWidth = width;
    const xs = this.points.map((p) => p.x);
    const bx = this.budget ? budgetX(report, this.budget, this.axis) : null;
    if (bx != null) xs.push(bx);
    const [lo, hi] = [Math.min(...xs), Math.max(...xs)];
    const pad = (hi - lo || hi || 1) * 0.05;
    this.xDomain = [Math.max(0, lo - pad), hi + pad];
    const ys = this.points.map((p) => p.y);
    const pred = this.currentPrediction();
    if (pred?.metric != null) ys.push(pred.metric);
    const logY = report.metricName === 'perplexity' && Math.min(...ys) > 0;
    const front = this.points.filter((p) => p.pareto).sort((a, b) => a.x - b.x);
    const fg = themeColor('--vscode-foreground', '#333333');

    const marks: PlotNs.Markish[] = [P.frame({ stroke: fg, strokeOpacity: 0.25 })];
    if (front.length > 1) {
      marks.push(
        // A step line: between two front points no model is better than the smaller one, so the line stays
        // at its metric until the next point (a straight segment would suggest models no one has).
        P.line(front, {
          x: 'x',
          y: 'y',
          curve: 'step-after',
          stroke: themeColor('--vscode-charts-blue', '#3794ff'),
          strokeWidth: 1.5,
          className: 'vt-front',
        }),
      );
    }
    // Baselines first, then the sweep, the fine-tuned runs and the teacher: this run's points stay on top where they overlap.
    const drawOrder = this.styles
      .map((st, i) => ({ st, i }))
      .sort((a, b) => Number(groupOf(b.st.source) === 'baseline') - Number(groupOf(a.st.source) === 'baseline') || a.i - b.i);
    drawOrder.forEach(({ st, i }) => {
      const data = this.points.filter((p) => p.point.source === st.source);
      if (!data.length) return;
      marks.push(
        P.dot(data, {
          x: 'x',
          y: 'y',
          symbol: st.symbol,
          r: st.r,
          stroke: st.color,
          strokeWidth: 1.6,
          fill: st.filled ? st.color : themeColor('--vscode-editor-background', '#ffffff'),
          className: `vt-series vt-series-${i}`,
        }),
      );
    });

    const chart = P.plot({
      width,
      height: 380,
      marginLeft: 64,
      marginBottom: 44,
      marginTop: 28,
      marginRight: 24,
      style: { background: 'transparent', color: fg, fontSize: '11px', fontFamily: 'var(--vscode-font-family, system-ui, sans-serif)' },
      x: {
        domain: this.xDomain,
        label: `${axis.label} →`,
        labelArrow: 'none',
        tickFormat: axis.tick,
        grid: true,
        ticks: Math.max(3, Math.floor(width / 90)),
      },
      y: {
        type: logY ? 'log' : 'linear',
        label: metricAxisLabel(report.metricName),
        labelArrow: 'none',
        grid: true,
        nice: true,
        tickFormat: (v: number) => (report.metricName === 'accuracy' ? fmtPct(v, 0) : String(Number(v.toPrecision(3)))),
      },
      marks,
    }) as SVGSVGElement & PlotNs.Plot;
    // Plot adds a <style> element; the CSP only runs styles with the page's nonce, and media/webview.css has the same rules.
    for (const st of chart.querySelectorAll('style')) st.remove();
    chart.classList.add('vt-plot');
    chart.setAttribute('role', 'img');
    chart.setAttribute(
      'aria-label',
      `${METRIC_LABEL[report.metricName]} against ${axis.label.toLowerCase()}, ${this.points.length} points`,
    );
    this.decoratePoints(chart);
    this.chart = chart;
    this.marker = null;
    this.chartBox.replaceChildren(chart);
    this.placeMarker();
  }

  /** Gives every drawn point its figures, a tooltip, keyboard focus and the click action. */
  private decoratePoints(chart: SVGSVGElement): void {
    this.styles.forEach((st, i) => {
      const g = chart.querySelector(`g.vt-series-${i}`);
      if (!g) return;
      const data = this.points.filter((p) => p.point.source === st.source);
      for (const el of g.children) {
        const idx = (el as unknown as { __data__?: number }).__data__;
        const p = typeof idx === 'number' ? data[idx] : undefined;
        if (!p) continue;
        el.classList.add('vt-point');
        if (p.pareto) el.classList.add('vt-pareto');
        el.setAttribute('data-point-id', String(p.id));
        el.setAttribute('data-source', p.point.source);
        el.setAttribute('tabindex', '0');
        el.setAttribute('role', 'button');
        el.setAttribute(
          'aria-label',
          this.tooltipLines(p.point, p.pareto)
            .map((l) => (typeof l === 'string' ? l : `${l[0]} ${l[1]}`))
            .join('; '),
        );
        el.addEventListener('pointerenter', () => this.showTip(el, p));
        el.addEventListener('pointerleave', () => this.tooltip.hide());
        el.addEventListener('focus', () => this.showTip(el, p));
        el.addEventListener('blur', () => this.tooltip.hide());
        el.addEventListener('click', () => this.openPopover(el, p));
        el.addEventListener('keydown', (e) => {
          const k = (e as KeyboardEvent).key;
          if (k === 'Enter' || k === ' ') {
            e.preventDefault();
            this.openPopover(el, p);
          }
        });
      }
    });
  }

  private showTip(el: Element, p: PlottedPoint): void {
    this.tooltip.show(this.tooltipLines(p.point, p.pareto), el.getBoundingClientRect());
  }

  tooltipLines(p: TradeoffPoint, pareto: boolean): (string | [string, string])[] {
    const t = this.report.teacher;
    const lines: (string | [string, string])[] = [
      p.source === 'teacher' ? sourceLabel(p.source) : `${sourceLabel(p.source)} · ${budgetLabel(p)}`,
    ];
    lines.push(['Parameters', `${fmtInt(p.params)} (${fmtPct(p.params / t.params)})`]);
    lines.push(['Encoder params', `${fmtInt(p.encoderParams)} (${fmtPct(p.encoderParams / t.encoderParams)})`]);
    lines.push(['FLOPs/token', `${fmtInt(p.flopsPerToken)} (${fmtPct(p.flopsPerToken / t.flopsPerToken)})`]);
    lines.push([cap(METRIC_LABEL[this.report.metricName]), fmtMetricExact(this.report.metricName, p.metric)]);
    if (p.shape) lines.push(['Output shape', p.shape]);
    for (const [b, v] of Object.entries(p.latencyMs ?? {})) lines.push([`Latency b${b}`, fmtMs(v)]);
    if (pareto) lines.push(['Pareto front', 'yes']);
    return lines;
  }

  private openPopover(el: Element, p: PlottedPoint): void {
    this.tooltip.hide();
    const exportable = exportShape(p.point) !== false;
    const lines = this.tooltipLines(p.point, p.pareto);
    const close = button('Close', () => this.closePopover(true), { secondary: true });
    let action: HTMLElement | null = null;
    if (exportable && !this.ctx.host.standalone) {
      action = button('Export at this budget', () => {
        this.ctx.host.post({
          type: 'exportAtBudget',
          kind: p.point.kind,
          keep: p.point.keep,
          ...(p.point.shape ? { shape: p.point.shape } : {}),
        });
        this.closePopover(true);
      });
      action.setAttribute('data-action', 'export-at-budget');
    }
    const note =
      exportable && this.ctx.host.standalone
        ? h(
            'p',
            { class: 'vt-hint' },
            'To write the pruned model at this budget, open the run in VS Code and run "VTrans: Export at Current Budget".',
          )
        : null;
    this.popover.replaceChildren(
      ...([
        h('div', { class: 'vt-popover-title', id: 'vt-popover-title' }, typeof lines[0] === 'string' ? lines[0] : ''),
        h(
          'dl',
          { class: 'vt-popover-figures' },
          ...lines.slice(1).flatMap((l) => (typeof l === 'string' ? [] : [h('dt', {}, l[0]), h('dd', {}, l[1])])),
        ),
        note,
        h('div', { class: 'vt-popover-actions' }, action, close),
      ].filter((x) => x !== null) as HTMLElement[]),
    );
    this.popover.setAttribute('aria-labelledby', 'vt-popover-title');
    this.popover.dataset.pointId = String(p.id);
    this.popover.hidden = false;
    this.popoverAnchor = el as HTMLElement | SVGElement;
    const r = el.getBoundingClientRect();
    this.popover.style.left = `${Math.round(r.right + 8 + window.scrollX)}px`;
    this.popover.style.top = `${Math.round(r.top + window.scrollY)}px`;
    (action ?? close).focus();
  }

  private closePopover(restoreFocus: boolean): void {
    if (this.popover.hidden) return;
    this.popover.hidden = true;
    if (restoreFocus) this.popoverAnchor?.focus();
    this.popoverAnchor = null;
  }

  /** Moves the budget marker (and the predicted point) without redrawing the chart, unless it leaves the x domain. */
  private placeMarker(): void {
    const chart = this.chart;
    if (!chart) return;
    this.marker?.remove();
    this.marker = null;
    if (!this.budget) return;
    const bx = budgetX(this.report, this.budget, this.axis);
    if (bx == null) return;
    const sx = chart.scale('x');
    const sy = chart.scale('y');
    if (!sx || !sy || !sy.range) return;
    const x = sx.apply(bx) as number;
    const [y0, y1] = sy.range as [number, number];
    const g = s('g', { class: 'vt-budget', 'data-budget-x': bx, 'aria-label': `Budget setting: ${budgetLabel(this.budget)}` });
    g.append(s('line', { class: 'vt-budget-line', x1: x, x2: x, y1: y0, y2: y1 }));
    const right = x > ([...(sx.range ?? [0, 0])][1] as number) - 160;
    g.append(
      s(
        'text',
        { class: 'vt-budget-label', x: right ? x - 4 : x + 4, y: Math.min(y0, y1) - 6, 'text-anchor': right ? 'end' : 'start' },
        `setting: ${budgetLabel(this.budget)}`,
      ),
    );
    const pred = this.currentPrediction();
    if (pred?.metric != null) {
      const y = sy.apply(pred.metric) as number;
      if (Number.isFinite(y)) {
        const d = `M${x},${y - 7}L${x + 7},${y}L${x},${y + 7}L${x - 7},${y}Z`;
        const diamond = s('path', {
          class: 'vt-predicted',
          d,
          tabindex: 0,
          role: 'img',
          'aria-label': `Predicted at the budget setting: ${fmtMetric(this.report.metricName, pred.metric)}`,
        });
        diamond.addEventListener('pointerenter', () => this.tooltip.show(this.predictionLines(pred), diamond.getBoundingClientRect()));
        diamond.addEventListener('focus', () => this.tooltip.show(this.predictionLines(pred), diamond.getBoundingClientRect()));
        diamond.addEventListener('pointerleave', () => this.tooltip.hide());
        diamond.addEventListener('blur', () => this.tooltip.hide());
        g.append(diamond);
      }
    }
    chart.append(g);
    this.marker = g;
  }

  private predictionLines(p: PredictedPoint): (string | [string, string])[] {
    return [
      `At the budget setting (${p.basis === 'rethreshold' ? 'masks re-thresholded' : "the run's prediction table"})`,
      ['Parameters', fmtInt(p.params)],
      ['Encoder params', fmtInt(p.encoderParams)],
      ['FLOPs/token', fmtInt(p.flopsPerToken)],
      [cap(METRIC_LABEL[this.report.metricName]), fmtMetricExact(this.report.metricName, p.metric)],
    ];
  }

  private updateCaption(): void {
    const b = this.budget;
    if (!b) {
      this.caption.textContent = 'Budget setting: not set (vtrans.budget.keep).';
      return;
    }
    const target = budgetTarget(this.report, b);
    let text = `Budget setting (vtrans.budget.keep): ${budgetLabel(b)} = ${fmtCount(target)} ${BUDGET_KIND_LABEL[b.kind]}.`;
    const p = this.currentPrediction();
    if (p) {
      text += ` At this budget: ${fmtCount(p.params)} parameters, ${METRIC_LABEL[this.report.metricName]} ${p.metric == null ? 'unknown' : fmtMetric(this.report.metricName, p.metric)}`;
      text +=
        p.basis === 'rethreshold'
          ? ' (masks re-thresholded, no retraining).'
          : ` (the run's prediction at ${fmtPct(p.keep)}; masks re-thresholded, no retraining).`;
    }
    this.caption.textContent = text;
  }

  setBudget(budget: BudgetState | null): void {
    this.budget = budget;
    this.updateCaption();
    if (!this.chart) return;
    const bx = budget ? budgetX(this.report, budget, this.axis) : null;
    if (bx != null && (bx < this.xDomain[0] || bx > this.xDomain[1])) this.draw();
    else this.placeMarker();
  }

  private table(all: TradeoffPoint[]): HTMLElement {
    const name = this.report.metricName;
    const canExport = !this.ctx.host.standalone;
    const front = new Set(
      plotted(this.report, this.axis)
        .filter((p) => p.pareto)
        .map((p) => p.id),
    );
    const hb = higherIsBetter(name);
    const head = h(
      'tr',
      {},
      ...[
        'Source',
        'Keep',
        'Parameters',
        'Encoder params',
        'FLOPs/token',
        `${cap(METRIC_LABEL[name])} (${hb ? 'higher' : 'lower'} is better)`,
        'Latency b1',
        'Latency b32',
        `Pareto (${AXES[this.axis].short})`,
      ].map((c) => h('th', { scope: 'col' }, c)),
      canExport ? h('th', { scope: 'col' }, h('span', { class: 'vt-sr' }, 'Action')) : null,
    );
    const rows = all.map((p, id) =>
      h(
        'tr',
        { 'data-point-id': id, 'data-source': p.source },
        h('th', { scope: 'row' }, sourceShort(p.source)),
        h('td', { class: 'vt-num' }, p.source === 'teacher' ? '100%' : `${fmtPct(p.keep)} ${BUDGET_KIND_SHORT[p.kind]}`),
        h('td', { class: 'vt-num' }, fmtInt(p.params)),
        h('td', { class: 'vt-num' }, fmtInt(p.encoderParams)),
        h('td', { class: 'vt-num' }, fmtInt(p.flopsPerToken)),
        h('td', { class: 'vt-num' }, p.metric == null ? 'not evaluated' : fmtMetricExact(name, p.metric)),
        h('td', { class: 'vt-num' }, p.latencyMs?.['1'] != null ? fmtMs(p.latencyMs['1']) : '—'),
        h('td', { class: 'vt-num' }, p.latencyMs?.['32'] != null ? fmtMs(p.latencyMs['32']) : '—'),
        h('td', {}, front.has(id) ? 'yes' : ''),
        canExport
          ? h(
              'td',
              {},
              exportShape(p) !== false
                ? button(
                    'Export at this budget',
                    () =>
                      this.ctx.host.post({ type: 'exportAtBudget', kind: p.kind, keep: p.keep, ...(p.shape ? { shape: p.shape } : {}) }),
                    {
                      secondary: true,
                      'data-action': 'export-at-budget',
                    },
                  )
                : null,
            )
          : null,
      ),
    );
    if (!all.length) return h('p', { class: 'vt-hint' }, 'The table fills in when the run writes its tradeoff points.');
    return h(
      'div',
      { class: 'vt-table-wrap' },
      h(
        'table',
        { class: 'vt-table vt-tradeoff-table' },
        h('caption', {}, 'All tradeoff points (exact figures)'),
        h('thead', {}, head),
        h('tbody', {}, ...rows),
      ),
    );
  }

  private exportSvg(): void {
    if (!this.chart) return;
    this.ctx.host.save(
      'svg',
      exportFileName(this.report.runId, 'tradeoff', 'svg'),
      serializeSvg(this.chart, themeColor('--vscode-editor-background', '#ffffff')),
      'utf8',
    );
  }

  private async exportPng(): Promise<void> {
    if (!this.chart) return;
    try {
      const text = serializeSvg(this.chart, themeColor('--vscode-editor-background', '#ffffff'));
      const { width, height } = this.chart.getBoundingClientRect();
      const png = await svgToPngBase64(text, width, height);
      this.ctx.host.save('png', exportFileName(this.report.runId, 'tradeoff', 'png'), png, 'base64');
    } catch (e) {
      this.ctx.notify('error', `PNG export failed: ${(e as Error).message}. Export SVG instead.`);
    }
  }

  dispose(): void {
    this.resize.disconnect();
    this.tooltip.dispose();
    this.root.remove();
  }
}

const cap = (x: string) => x.charAt(0).toUpperCase() + x.slice(1);
