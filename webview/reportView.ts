/**
 * Head-retention report panel: teacher vs compressed summary, the findings in plain sentences, per layer the
 * heads kept and pruned with their probe figures, and export to Markdown / HTML.
 */
import { computeFindings, fmtInt, fmtPct, fmtProbe, headKept, PROBE_LABEL, summarizeLayers } from '../src/core/findings';
import { PROBE_NAMES, type RunReport } from '../src/core/report';
import { renderReportMarkdown, shapeSentence, summaryRows } from '../src/core/reportHtml';
import { exportFileName, type BudgetState } from '../src/core/webviewProtocol';
import { h } from './dom';
import { button, runHeader, toolbar, type View, type ViewContext } from './view';

const cap = (x: string) => x.charAt(0).toUpperCase() + x.slice(1);

/** The clipboard where the page may write it (VS Code webviews, report.html); else the text selected for Ctrl+C. */
function copyText(text: string, pre: HTMLElement): void {
  const select = () => {
    const range = document.createRange();
    range.selectNodeContents(pre);
    const sel = window.getSelection();
    sel?.removeAllRanges();
    sel?.addRange(range);
  };
  if (navigator.clipboard?.writeText) navigator.clipboard.writeText(text).catch(select);
  else select();
}

export class ReportView implements View {
  readonly root: HTMLElement;

  constructor(
    private readonly ctx: ViewContext,
    private readonly report: RunReport,
  ) {
    const r = report;
    const actions = ctx.host.standalone
      ? toolbar(
          'Export',
          button('Download Markdown', () => ctx.host.save('md', exportFileName(r.runId, 'report', 'md'), renderReportMarkdown(r), 'utf8'), {
            secondary: true,
            'data-action': 'download-md',
          }),
        )
      : toolbar(
          'Export',
          button('Export Markdown', () => ctx.host.post({ type: 'exportReport', format: 'md' }), {
            secondary: true,
            'data-action': 'export-md',
          }),
          button('Export HTML', () => ctx.host.post({ type: 'exportReport', format: 'html' }), {
            secondary: true,
            'data-action': 'export-html',
          }),
        );
    this.root = h(
      'section',
      { class: 'vt-view vt-report', 'aria-label': 'Head-retention report' },
      runHeader(r, 'Head-retention report'),
      actions,
      h('h2', {}, 'Summary'),
      this.summary(),
      ...this.howToLoad(),
      h('h2', {}, 'Findings'),
      h('ul', { class: 'vt-findings' }, ...computeFindings(r).map((f) => h('li', { class: 'vt-finding', 'data-finding': f.id }, f.text))),
      ...(r.layers.length
        ? [
            h('h2', {}, 'Layers'),
            this.layerTable(),
            h('h2', {}, 'Heads by layer'),
            h(
              'p',
              { class: 'vt-hint' },
              `A head is kept while its retention score log α is above ${r.threshold}. Probe figures are mean attention masses${r.probes ? ` over ${fmtInt(r.probes.examples)} examples` : ''}; entropy in nats.`,
            ),
            ...this.headTables(),
          ]
        : [
            h(
              'p',
              { class: 'vt-state vt-state-empty', role: 'status' },
              r.status === 'running'
                ? 'No per-layer data yet: it is written when the pruning phase ends.'
                : 'This report has no per-layer data.',
            ),
          ]),
      r.probes?.keywords.length
        ? h('p', { class: 'vt-hint' }, `Keywords (highest gradient saliency for the label): ${r.probes.keywords.join(', ')}.`)
        : null,
    );
  }

  mount(): void {}

  /** The output shape of model/ and the Python lines that load it without VTrans, each with a Copy button. */
  private howToLoad(): HTMLElement[] {
    const load = this.report.load;
    if (!load) return [];
    const block = (what: string, code: string) => {
      const pre = h('pre', { class: 'vt-code', 'data-code': what }, code);
      const copy = button('Copy', () => copyText(code, pre), { secondary: true, 'data-action': `copy-${what}` });
      return h('div', { class: 'vt-code-block' }, copy, pre);
    };
    return [
      h('h2', {}, 'How to load'),
      h('p', { 'data-shape': load.shape }, shapeSentence(load)),
      block('transformers', load.python),
      ...(load.onnxPython ? [h('p', {}, 'model.onnx in onnxruntime:'), block('onnx', load.onnxPython)] : []),
    ];
  }

  private summary(): HTMLElement {
    const rows = summaryRows(this.report).map((x) =>
      h(
        'tr',
        {},
        h('th', { scope: 'row' }, x.label),
        h('td', { class: 'vt-num', 'data-col': 'teacher' }, x.teacher),
        h('td', { class: 'vt-num', 'data-col': 'student' }, x.student),
        h('td', {}, x.change),
      ),
    );
    return h(
      'div',
      { class: 'vt-table-wrap' },
      h(
        'table',
        { class: 'vt-table vt-summary-table' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('td', {}),
            h('th', { scope: 'col' }, 'Teacher'),
            h('th', { scope: 'col' }, 'Compressed'),
            h('th', { scope: 'col' }, 'Change'),
          ),
        ),
        h('tbody', {}, ...rows),
      ),
    );
  }

  private layerTable(): HTMLElement {
    const rows = summarizeLayers(this.report).map((s) =>
      h(
        'tr',
        { 'data-layer': s.index },
        h('th', { scope: 'row' }, String(s.index)),
        h('td', { class: 'vt-num' }, `${s.keptHeads.length} of ${s.headsTotal}`),
        h('td', {}, s.prunedHeads.length ? s.prunedHeads.join(', ') : 'none'),
        h('td', { class: 'vt-num' }, `${fmtProbe('special', s.probes.kept.special)} / ${fmtProbe('special', s.probes.pruned.special)}`),
        h('td', { class: 'vt-num' }, `${fmtInt(s.ffnKept)} of ${fmtInt(s.ffnTotal)} (${fmtPct(s.ffnTotal ? s.ffnKept / s.ffnTotal : 0)})`),
        h('td', { class: s.attentionKept ? '' : 'vt-removed' }, s.attentionKept ? 'kept' : '✕ removed'),
        h('td', { class: s.ffnSublayerKept ? '' : 'vt-removed' }, s.ffnSublayerKept ? 'kept' : '✕ removed'),
        h('td', { class: 'vt-num' }, fmtPct(s.removedShare)),
      ),
    );
    const head = [
      'Layer',
      'Heads kept',
      'Pruned heads',
      'Special tokens (retained / pruned)',
      'FFN neurons kept',
      'Attention',
      'FFN',
      'Weights removed',
    ];
    return h(
      'div',
      { class: 'vt-table-wrap' },
      h(
        'table',
        { class: 'vt-table vt-layer-table' },
        h('thead', {}, h('tr', {}, ...head.map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, ...rows),
      ),
    );
  }

  private headTables(): HTMLElement[] {
    const open = new Set(this.ctx.state.openLayers ?? []);
    return this.report.layers.map((l) => {
      const kept = l.heads.filter((x) => headKept(l, x)).length;
      const rows = l.heads.map((hd) => {
        const k = headKept(l, hd);
        return h(
          'tr',
          { 'data-head': hd.index, class: k ? 'vt-kept' : 'vt-pruned' },
          h('th', { scope: 'row' }, String(hd.index)),
          h('td', {}, k ? 'kept' : '✕ pruned'),
          h('td', { class: 'vt-num' }, hd.logAlpha.toFixed(3)),
          ...PROBE_NAMES.map((p) => h('td', { class: 'vt-num' }, fmtProbe(p, hd.probes?.[p]))),
        );
      });
      const details = h(
        'details',
        { class: 'vt-layer-details', 'data-layer': l.index, open: open.has(l.index) },
        h(
          'summary',
          {},
          `Layer ${l.index}: ${kept} of ${l.heads.length} heads kept, FFN ${fmtInt(l.ffnKept ? l.ffn.kept : 0)} of ${fmtInt(l.ffn.total)}${l.attentionKept ? '' : ', attention removed'}${l.ffnKept ? '' : ', FFN removed'}`,
        ),
        h(
          'table',
          { class: 'vt-table vt-head-table' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['Head', 'Status', 'log α', ...PROBE_NAMES.map((p) => cap(PROBE_LABEL[p]))].map((c) => h('th', { scope: 'col' }, c)),
            ),
          ),
          h('tbody', {}, ...rows),
        ),
      );
      details.addEventListener('toggle', () => {
        if (details.open) open.add(l.index);
        else open.delete(l.index);
        this.ctx.update({ openLayers: [...open].sort((a, b) => a - b) });
      });
      return details;
    });
  }

  setBudget(_budget: BudgetState | null): void {}

  dispose(): void {
    this.root.remove();
  }
}
