/**
 * Attention-probe heatmaps: a layers × heads grid coloured by the chosen metric (retention log α or a probe),
 * pruned heads crossed out (not colour only), per-layer bars of FFN neurons kept and removed sublayers, and
 * the hidden width kept. One SVG of plain rects plus a single path for all crosses, so GPT-2 XL (48 × 25)
 * and LLaMA-2-7B (32 × 32) draw in a few milliseconds. Cells are a keyboard grid (roving tabindex, arrows).
 */
import { fmtInt, fmtNum, fmtPct, headKept, PROBE_LABEL } from '../src/core/findings';
import type { HeadReport, LayerReport, ProbeName, RunReport } from '../src/core/report';
import { HEAT_METRICS, type BudgetState, type HeatMetric } from '../src/core/webviewProtocol';
import { h, s, Tooltip } from './dom';
import { runHeader, type View, type ViewContext } from './view';

export const METRIC_TITLE: Record<HeatMetric, string> = {
  logAlpha: 'Retention score log α',
  special: 'Attention on special tokens',
  current: 'Attention on the current token',
  previous: 'Attention on the previous token',
  keywords: 'Attention on task keywords',
  entropy: 'Attention entropy (nats)',
};

export function headValue(head: HeadReport, metric: HeatMetric): number | undefined {
  const v = metric === 'logAlpha' ? head.logAlpha : head.probes?.[metric as ProbeName];
  return v != null && Number.isFinite(v) ? v : undefined;
}

function exactProbe(name: ProbeName, v: number | undefined): string {
  if (v == null) return 'not measured';
  return name === 'entropy' ? `${v.toFixed(4)} nats` : fmtPct(v, 2);
}

/** The range of a metric over the heads that have it (the colour scale spans it). */
export function metricRange(report: RunReport, metric: HeatMetric): { min: number; max: number } | null {
  let min = Infinity;
  let max = -Infinity;
  for (const l of report.layers) {
    for (const hd of l.heads) {
      const v = headValue(hd, metric);
      if (v == null) continue;
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
  }
  return Number.isFinite(min) ? { min, max } : null;
}

/**
 * Colour class and opacity of a cell. Probes (attention shares, entropy) use the range of the values in this
 * report, so that heads whose shares lie between 2 % and 9 % still span the whole colour ramp (a fixed 0–100 %
 * scale leaves them all near white); log α is symmetric around the threshold.
 */
export function cellScale(report: RunReport, metric: HeatMetric): (v: number | undefined) => { cls: string; opacity: number } {
  const range = metricRange(report, metric);
  if (metric === 'logAlpha') {
    const max = range ? Math.max(Math.abs(range.min - report.threshold), Math.abs(range.max - report.threshold)) || 1 : 1;
    return (v) => {
      if (v == null) return { cls: 'na', opacity: 1 };
      const d = v - report.threshold;
      return { cls: d > 0 ? 'pos' : 'neg', opacity: round3(0.12 + 0.88 * Math.min(1, Math.abs(d) / max)) };
    };
  }
  const lo = range?.min ?? 0;
  const span = range && range.max > range.min ? range.max - range.min : 0;
  return (v) => {
    if (v == null) return { cls: 'na', opacity: 1 };
    const t = span > 0 ? (v - lo) / span : 1;
    return { cls: 'seq', opacity: round3(0.08 + 0.92 * Math.min(1, Math.max(0, t))) };
  };
}

/** A cell value as the grid prints it inside large cells and in the legend. */
export function cellText(metric: HeatMetric, v: number): string {
  if (metric === 'logAlpha') return v.toFixed(1);
  if (metric === 'entropy') return v.toFixed(2);
  return fmtPct(v, v < 0.1 ? 1 : 0);
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

export interface GridTiming {
  layers: number;
  heads: number;
  cells: number;
  ms: number;
}

declare global {
  interface Window {
    /** Render times of the heatmap grid, read by the tests' benchmark record. */
    __vtransTimings?: GridTiming[];
  }
}

export class HeatmapsView implements View {
  readonly root: HTMLElement;
  private readonly gridBox = h('div', { class: 'vt-grid-box' });
  private readonly legendBox = h('div', { class: 'vt-heat-legend', 'aria-label': 'Colour legend' });
  private readonly tooltip = new Tooltip('vt-heatmap-tooltip');
  private metric: HeatMetric;
  private focus: [number, number];
  private cells: SVGRectElement[][] = [];
  private readonly resize: ResizeObserver;
  private lastWidth = 0;
  private readonly hasProbes: boolean;

  constructor(
    private readonly ctx: ViewContext,
    private readonly report: RunReport,
  ) {
    this.hasProbes = report.layers.some((l) => l.heads.some((x) => x.probes && Object.keys(x.probes).length > 0));
    const wanted = ctx.state.metric;
    this.metric = wanted && (wanted === 'logAlpha' || this.hasProbes) ? wanted : this.hasProbes ? 'special' : 'logAlpha';
    this.focus = ctx.state.focus ?? [0, 0];

    const select = h('vscode-single-select', { class: 'vt-metric', 'aria-label': 'Colour cells by' });
    for (const m of HEAT_METRICS) {
      const disabled = m !== 'logAlpha' && !this.hasProbes;
      select.append(h('vscode-option', { value: m, selected: m === this.metric, disabled }, METRIC_TITLE[m]));
    }
    select.addEventListener('change', () => {
      const v = (select as unknown as { value: string }).value as HeatMetric;
      if (!HEAT_METRICS.includes(v) || v === this.metric) return;
      this.metric = v;
      this.ctx.update({ metric: v });
      this.draw();
    });

    const empty = report.layers.length === 0;
    this.root = h(
      'section',
      { class: 'vt-view vt-heatmaps', 'aria-label': 'Attention-probe heatmaps' },
      runHeader(report, 'Attention-probe heatmaps'),
      empty
        ? h(
            'div',
            { class: 'vt-state vt-state-empty', role: 'status' },
            h(
              'p',
              {},
              report.status === 'running'
                ? 'No masks yet: the heatmaps fill in when the pruning phase writes its masks to report.json.'
                : 'This report has no per-layer data. Re-run the compression to get it.',
            ),
          )
        : h(
            'div',
            {},
            this.summary(),
            h(
              'div',
              { class: 'vt-controls' },
              h('label', { class: 'vt-control-label' }, 'Colour by'),
              select,
              this.hasProbes
                ? null
                : h(
                    'span',
                    { class: 'vt-hint' },
                    'No attention probes in this report (they are computed when a run finishes): only log α is available.',
                  ),
            ),
            this.legendBox,
            this.gridBox,
          ),
    );
    this.resize = new ResizeObserver(() => {
      if (Math.abs(this.gridBox.clientWidth - this.lastWidth) > 24 && this.cells.length) this.draw();
    });
  }

  mount(): void {
    if (!this.report.layers.length) return;
    this.draw();
    this.resize.observe(this.gridBox);
  }

  private summary(): HTMLElement {
    const r = this.report;
    const items: HTMLElement[] = [];
    const meter = (label: string, kept: number, total: number, cls: string) => {
      const frac = total > 0 ? kept / total : 0;
      const bar = s(
        'svg',
        { width: 120, height: 10, class: 'vt-meter', 'aria-hidden': 'true' },
        s('rect', { class: 'vt-bar-track', x: 0, y: 0, width: 120, height: 10 }),
        s('rect', { class: 'vt-bar-fill', x: 0, y: 0, width: Math.round(120 * frac), height: 10 }),
      );
      items.push(
        h(
          'li',
          { class: `vt-summary-item ${cls}` },
          h('span', { class: 'vt-summary-label' }, label),
          bar,
          h('span', { class: 'vt-summary-value' }, `${fmtInt(kept)} of ${fmtInt(total)} (${fmtPct(frac)})`),
        ),
      );
    };
    if (r.hiddenKept) meter('Hidden dimensions kept', r.hiddenKept.kept, r.hiddenKept.total, 'vt-hidden-kept');
    let heads = 0;
    let headsTotal = 0;
    let ffn = 0;
    let ffnTotal = 0;
    for (const l of r.layers) {
      headsTotal += l.heads.length;
      heads += l.heads.filter((x) => headKept(l, x)).length;
      ffnTotal += l.ffn.total;
      ffn += l.ffnKept ? l.ffn.kept : 0;
    }
    meter('Attention heads kept', heads, headsTotal, 'vt-heads-kept');
    meter('FFN neurons kept', ffn, ffnTotal, 'vt-ffn-kept');
    const attnRemoved = r.layers.filter((l) => !l.attentionKept).length;
    const ffnRemoved = r.layers.filter((l) => !l.ffnKept).length;
    items.push(
      h(
        'li',
        { class: 'vt-summary-item' },
        h('span', { class: 'vt-summary-label' }, 'Sublayers removed'),
        h('span', { class: 'vt-summary-value' }, `${attnRemoved} attention, ${ffnRemoved} FFN`),
      ),
    );
    return h('ul', { class: 'vt-summary' }, ...items);
  }

  private drawLegend(): void {
    const m = this.metric;
    const sw = (cls: string, opacity: number, x: number) =>
      s('rect', { class: `vt-cell ${cls}`, x, y: 2, width: 14, height: 14, 'fill-opacity': opacity });
    const svg = s('svg', { width: 460, height: 22, 'aria-hidden': 'true' });
    const label = (x: number, t: string, anchor = 'start') => s('text', { x, y: 13, class: 'vt-legend-text', 'text-anchor': anchor }, t);
    const range = metricRange(this.report, m);
    let px: number;
    if (m === 'logAlpha') {
      const steps = [1, 0.75, 0.5, 0.25];
      svg.append(label(0, 'pruned side'));
      steps.forEach((t, i) => svg.append(sw('neg', round3(0.12 + 0.88 * t), 70 + i * 16)));
      svg.append(label(138, `${this.report.threshold}`, 'middle'));
      [...steps].reverse().forEach((t, i) => svg.append(sw('pos', round3(0.12 + 0.88 * t), 150 + i * 16)));
      svg.append(label(218, 'kept side'));
      px = 290;
    } else {
      // The scale spans the values of this report (lowest to highest), not 0–100 %.
      const lo = range ? cellText(m, range.min) : '—';
      const hi = range ? cellText(m, range.max) : '—';
      svg.append(label(44, lo, 'end'));
      [0, 0.25, 0.5, 0.75, 1].forEach((t, i) => svg.append(sw('seq', round3(0.08 + 0.92 * t), 50 + i * 16)));
      svg.append(label(136, hi));
      px = 190;
    }
    svg.append(
      s('rect', { class: 'vt-cell seq', x: px, y: 2, width: 14, height: 14, 'fill-opacity': 0.3 }),
      s('path', { class: 'vt-cross', d: `M${px + 3},5L${px + 11},13M${px + 11},5L${px + 3},13` }),
      label(px + 20, 'pruned head'),
    );
    const scaleNote =
      m === 'logAlpha' || !range
        ? null
        : `colour from the lowest head (${cellText(m, range.min)}) to the highest (${cellText(m, range.max)})`;
    this.legendBox.dataset.min = range ? String(range.min) : '';
    this.legendBox.dataset.max = range ? String(range.max) : '';
    this.legendBox.replaceChildren(
      h('span', { class: 'vt-legend-title' }, METRIC_TITLE[m]),
      svg,
      ...(scaleNote ? [h('span', { class: 'vt-legend-range' }, scaleNote)] : []),
    );
  }

  private draw(): void {
    const t0 = performance.now();
    const r = this.report;
    const scale = cellScale(r, this.metric);
    this.drawLegend();
    const heads = Math.max(0, ...r.layers.map((l) => l.heads.length));
    const L = r.layers.length;
    const avail = Math.max(480, this.gridBox.clientWidth || 800);
    this.lastWidth = this.gridBox.clientWidth;
    const labelW = 40;
    const headerH = 34;
    const barsW = 250;
    // Cells grow with the panel (up to 96 px), so a small model's grid is not a stamp in a corner; large
    // cells print their value.
    const cs = Math.max(12, Math.min(96, Math.floor((avail - labelW - barsW - 16) / Math.max(1, heads))));
    const showValues = cs >= 40;
    const gridW = heads * cs;
    const width = labelW + gridW + barsW;
    const height = headerH + L * cs + 4;

    const svg = s('svg', {
      class: 'vt-grid',
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: 'grid',
      'aria-label': `${METRIC_TITLE[this.metric]}: ${L} layers × ${heads} heads; arrow keys move between heads`,
      'aria-rowcount': L,
      'aria-colcount': heads,
      'data-layers': L,
      'data-heads': heads,
    });
    // Column header: head indices (thinned out when cells are small).
    const every = cs >= 18 ? 1 : cs >= 14 ? 2 : 4;
    const header = s('g', { class: 'vt-grid-header', 'aria-hidden': 'true' });
    header.append(s('text', { x: labelW + gridW / 2, y: 10, class: 'vt-axis-title', 'text-anchor': 'middle' }, 'head'));
    for (let j = 0; j < heads; j += every)
      header.append(s('text', { x: labelW + j * cs + cs / 2, y: headerH - 6, 'text-anchor': 'middle' }, String(j)));
    const bx = labelW + gridW + 14;
    header.append(
      s('text', { x: bx, y: headerH - 6 }, 'FFN neurons kept'),
      s('text', { x: bx + 196, y: headerH - 6, 'text-anchor': 'middle' }, 'attn'),
      s('text', { x: bx + 224, y: headerH - 6, 'text-anchor': 'middle' }, 'FFN'),
    );
    svg.append(header);

    let cross = '';
    const crosses: string[] = [];
    this.cells = [];
    const body = s('g', { class: 'vt-grid-body' });
    const texts: SVGTextElement[] = [];
    const extras = s('g', { class: 'vt-layer-extras' });
    const fl = Math.min(Math.max(0, this.focus[0]), L - 1);
    const fh = Math.min(Math.max(0, this.focus[1]), Math.max(0, (r.layers[fl]?.heads.length ?? 1) - 1));
    this.focus = [fl, fh];
    r.layers.forEach((layer, i) => {
      const y = headerH + i * cs;
      const row = s('g', { role: 'row', 'aria-rowindex': i + 1, 'data-layer': layer.index });
      row.append(
        s('text', { x: labelW - 6, y: y + cs / 2 + 4, 'text-anchor': 'end', class: 'vt-row-label', role: 'rowheader' }, `L${layer.index}`),
      );
      const rowCells: SVGRectElement[] = [];
      layer.heads.forEach((head, j) => {
        const x = labelW + j * cs;
        const v = headValue(head, this.metric);
        const { cls, opacity } = scale(v);
        const kept = headKept(layer, head);
        const rect = s('rect', {
          class: `vt-cell ${cls}${kept ? '' : ' pruned'}`,
          x: x + 1,
          y: y + 1,
          width: cs - 2,
          height: cs - 2,
          'fill-opacity': opacity,
          role: 'gridcell',
          'aria-colindex': j + 1,
          tabindex: i === fl && j === fh ? 0 : -1,
          'data-layer': i,
          'data-head': j,
          'data-kept': kept ? 1 : 0,
          'aria-label': this.cellLabel(layer, head, v),
        });
        rowCells.push(rect);
        if (showValues && v != null) {
          texts.push(
            s(
              'text',
              {
                x: x + cs / 2,
                y: y + cs / 2 + 4,
                'text-anchor': 'middle',
                class: `vt-cell-value${opacity > 0.55 ? ' vt-on-dark' : ''}`,
                'aria-hidden': 'true',
              },
              cellText(this.metric, v),
            ),
          );
        }
        if (!kept) {
          // Large cells print their value: the cross goes to the top-right corner, clear of the text.
          const [a, b, t, u] = showValues ? [x + cs - 15, x + cs - 5, y + 5, y + 15] : [x + 4, x + cs - 4, y + 4, y + cs - 4];
          cross += `M${a},${t}L${b},${u}M${b},${t}L${a},${u}`;
          if (cross.length > 4000) {
            crosses.push(cross);
            cross = '';
          }
        }
      });
      this.cells.push(rowCells);
      row.append(...rowCells);
      body.append(row);
      extras.append(this.layerExtras(layer, i, bx, y, cs));
    });
    crosses.push(cross);
    const crossPath = s('path', {
      class: 'vt-cross vt-pruned-marks',
      d: crosses.join(''),
      'aria-hidden': 'true',
      'data-count': r.layers.reduce((n, l) => n + l.heads.filter((x) => !headKept(l, x)).length, 0),
    });
    if (r.layers.some((l) => l.groupSize > 1)) {
      const g = Math.max(...r.layers.map((l) => l.groupSize));
      let d = '';
      for (let j = g; j < heads; j += g) d += `M${labelW + j * cs},${headerH}V${headerH + L * cs}`;
      svg.append(s('path', { class: 'vt-group-lines', d, 'aria-hidden': 'true' }));
    }
    svg.append(body, s('g', { class: 'vt-cell-values' }, ...texts), crossPath, extras);

    svg.addEventListener('pointerover', (e) => this.hover(e.target as Element));
    svg.addEventListener('pointerleave', () => this.tooltip.hide());
    svg.addEventListener('focusin', (e) => this.onFocus(e.target as Element));
    svg.addEventListener('focusout', () => this.tooltip.hide());
    svg.addEventListener('keydown', (e) => this.onKey(e));
    svg.addEventListener('click', (e) => {
      const el = e.target as Element;
      const hd = el.getAttribute('data-head');
      if (hd != null) this.moveFocus(Number(el.getAttribute('data-layer')), Number(hd));
    });
    this.gridBox.replaceChildren(svg);
    // Force layout so the figure covers the whole render, not only building the nodes.
    void svg.getBoundingClientRect().width;
    const ms = performance.now() - t0;
    const timing: GridTiming = {
      layers: L,
      heads,
      cells: this.cells.reduce((n, row) => n + row.length, 0),
      ms: Math.round(ms * 100) / 100,
    };
    const timings = (window.__vtransTimings ??= []);
    timings.push(timing);
    if (timings.length > 50) timings.shift();
    this.gridBox.dataset.renderMs = String(timing.ms);
  }

  private layerExtras(layer: LayerReport, i: number, bx: number, y: number, cs: number): SVGGElement {
    const barH = Math.max(6, Math.min(12, cs - 6));
    const by = y + (cs - barH) / 2;
    const ffnKept = layer.ffnKept ? layer.ffn.kept : 0;
    const frac = layer.ffn.total ? ffnKept / layer.ffn.total : 0;
    const g = s('g', { class: 'vt-layer-bars', 'data-layer': i });
    g.append(
      s('rect', { class: 'vt-bar-track', x: bx, y: by, width: 100, height: barH, 'data-layer': i, 'data-part': 'ffn' }),
      s('rect', {
        class: 'vt-bar-fill vt-ffn-bar',
        x: bx,
        y: by,
        width: Math.round(100 * frac * 10) / 10,
        height: barH,
        'data-layer': i,
        'data-part': 'ffn',
        'data-kept': ffnKept,
        'data-total': layer.ffn.total,
      }),
      s('text', { x: bx + 106, y: y + cs / 2 + 4, class: 'vt-bar-text' }, `${fmtInt(ffnKept)}/${fmtInt(layer.ffn.total)}`),
    );
    const box = (cx: number, kept: boolean, part: 'attention' | 'ffn') => {
      const sz = Math.max(8, Math.min(14, cs - 4));
      const x0 = cx - sz / 2;
      const y0 = y + (cs - sz) / 2;
      g.append(
        s('rect', {
          class: `vt-sublayer ${kept ? 'kept' : 'removed'}`,
          x: x0,
          y: y0,
          width: sz,
          height: sz,
          'data-layer': i,
          'data-part': part,
          'data-removed': kept ? 0 : 1,
        }),
      );
      if (!kept)
        g.append(
          s('path', {
            class: 'vt-cross',
            d: `M${x0 + 2},${y0 + 2}L${x0 + sz - 2},${y0 + sz - 2}M${x0 + sz - 2},${y0 + 2}L${x0 + 2},${y0 + sz - 2}`,
          }),
        );
    };
    box(bx + 196, layer.attentionKept, 'attention');
    box(bx + 224, layer.ffnKept, 'ffn');
    return g;
  }

  private cellLabel(layer: LayerReport, head: HeadReport, v: number | undefined): string {
    const kept = headKept(layer, head);
    const val =
      v == null ? 'not measured' : this.metric === 'logAlpha' ? fmtNum(v) : this.metric === 'entropy' ? `${fmtNum(v)} nats` : fmtPct(v);
    return `Layer ${layer.index}, head ${head.index}, ${kept ? 'kept' : 'pruned'}, ${METRIC_TITLE[this.metric]} ${val}`;
  }

  cellLines(layer: LayerReport, head: HeadReport): (string | [string, string])[] {
    const kept = headKept(layer, head);
    const lines: (string | [string, string])[] = [
      `Layer ${layer.index} · head ${head.index} — ${kept ? 'kept' : 'pruned'}${!layer.attentionKept ? ' (attention sublayer removed)' : ''}`,
    ];
    if (layer.groupSize > 1) lines.push(['KV group', String(Math.floor(head.index / layer.groupSize))]);
    lines.push(['log α', `${head.logAlpha.toFixed(4)} (threshold ${this.report.threshold})`]);
    for (const p of ['special', 'current', 'previous', 'keywords', 'entropy'] as const) {
      lines.push([cap(PROBE_LABEL[p]), exactProbe(p, head.probes?.[p])]);
    }
    return lines;
  }

  private layerLines(layer: LayerReport, part: string): (string | [string, string])[] {
    const kept = layer.ffnKept ? layer.ffn.kept : 0;
    return [
      `Layer ${layer.index}${part === 'attention' ? ' — attention sublayer' : part === 'ffn' && !layer.ffnKept ? ' — FFN sublayer removed' : ' — FFN'}`,
      ['FFN neurons kept', `${fmtInt(kept)} of ${fmtInt(layer.ffn.total)} (${fmtPct(layer.ffn.total ? kept / layer.ffn.total : 0)})`],
      ['Attention sublayer', layer.attentionKept ? 'kept' : 'removed'],
      ['FFN sublayer', layer.ffnKept ? 'kept' : 'removed'],
      ['Heads kept', `${layer.heads.filter((x) => headKept(layer, x)).length} of ${layer.heads.length}`],
    ];
  }

  private hover(el: Element): void {
    const l = el.getAttribute('data-layer');
    if (l == null) return this.tooltip.hide();
    const layer = this.report.layers[Number(l)];
    if (!layer) return;
    const hd = el.getAttribute('data-head');
    if (hd != null) this.tooltip.show(this.cellLines(layer, layer.heads[Number(hd)]), el.getBoundingClientRect());
    else if (el.getAttribute('data-part'))
      this.tooltip.show(this.layerLines(layer, el.getAttribute('data-part') ?? ''), el.getBoundingClientRect());
  }

  private onFocus(el: Element): void {
    const l = el.getAttribute('data-layer');
    const hd = el.getAttribute('data-head');
    if (l == null || hd == null) return;
    const layer = this.report.layers[Number(l)];
    this.tooltip.show(this.cellLines(layer, layer.heads[Number(hd)]), el.getBoundingClientRect());
  }

  private onKey(e: KeyboardEvent): void {
    const el = e.target as Element;
    if (el.getAttribute('data-head') == null) return;
    let i = Number(el.getAttribute('data-layer'));
    let j = Number(el.getAttribute('data-head'));
    const L = this.cells.length;
    switch (e.key) {
      case 'ArrowRight':
        j++;
        break;
      case 'ArrowLeft':
        j--;
        break;
      case 'ArrowDown':
        i++;
        break;
      case 'ArrowUp':
        i--;
        break;
      case 'PageDown':
        i += 8;
        break;
      case 'PageUp':
        i -= 8;
        break;
      case 'Home':
        if (e.ctrlKey) i = 0;
        j = 0;
        break;
      case 'End':
        if (e.ctrlKey) i = L - 1;
        j = Number.MAX_SAFE_INTEGER;
        break;
      default:
        return;
    }
    e.preventDefault();
    i = Math.max(0, Math.min(L - 1, i));
    j = Math.max(0, Math.min(this.cells[i].length - 1, j));
    this.moveFocus(i, j);
  }

  private moveFocus(i: number, j: number): void {
    const [pi, pj] = this.focus;
    this.cells[pi]?.[pj]?.setAttribute('tabindex', '-1');
    const next = this.cells[i]?.[j];
    if (!next) return;
    next.setAttribute('tabindex', '0');
    next.focus();
    this.focus = [i, j];
    this.ctx.update({ focus: [i, j] });
  }

  setBudget(_budget: BudgetState | null): void {
    // The grid shows this run's masks; the budget setting does not change them.
  }

  dispose(): void {
    this.resize.disconnect();
    this.tooltip.dispose();
    this.root.remove();
  }
}

const cap = (x: string) => x.charAt(0).toUpperCase() + x.slice(1);
