/**
 * The run's shareable reports: `report.md` (Markdown) and `report.html` (one self-contained file: the
 * stylesheet, the bundled webview code and the report JSON inline; opens offline in any browser, without
 * VS Code, in light or dark following the OS). Pure string functions, browser-safe (the standalone page
 * uses `renderReportMarkdown` for its "Download Markdown" button).
 *
 * The caller writes the files into the run directory, e.g.
 *   const js = fs.readFileSync(path.join(extensionRoot, 'dist', 'webview.js'), 'utf8');
 *   const css = fs.readFileSync(path.join(extensionRoot, 'media', 'webview.css'), 'utf8');
 *   writeAtomic(path.join(runDir, 'report.html'), renderReportHtml(report, js, css));
 *   writeAtomic(path.join(runDir, 'report.md'), renderReportMarkdown(report));
 * (from dist/cli.js the bundle is `path.join(__dirname, 'webview.js')`).
 */
import {
  computeFindings,
  fmtBytes,
  fmtInt,
  fmtMetric,
  fmtMetricDelta,
  fmtMs,
  fmtPct,
  fmtProbe,
  headKept,
  METRIC_LABEL,
  PROBE_LABEL,
  summarizeLayers,
} from './findings';
import type { HowToLoad } from './contracts';
import { higherIsBetter, PROBE_NAMES, type ModelSummary, type RunReport, type TradeoffPoint } from './report';

const cap = (x: string) => x.charAt(0).toUpperCase() + x.slice(1);

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A Markdown table cell: pipes and newlines would break the row. */
function mdCell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function mdTable(head: string[], rows: string[][], align?: ('l' | 'r')[]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const sep = head.map((_, i) => (align?.[i] === 'r' ? '---:' : '---'));
  return [line(head.map(mdCell)), line(sep), ...rows.map((r) => line(r.map(mdCell)))].join('\n');
}

const tradeoffSource = (s: TradeoffPoint['source']) =>
  s === 'sweep'
    ? 'sweep'
    : s === 'finetuned'
      ? 'fine-tuned'
      : s === 'teacher'
        ? 'teacher'
        : s.startsWith('sweep:')
          ? `sweep, ${s.slice('sweep:'.length)} shape`
          : `baseline ${s.slice('baseline:'.length)}`;

/** What the run's output shape means for loading model/ (report panel, report.md, report.html). */
export function shapeSentence(load: HowToLoad): string {
  return load.shape === 'uniform'
    ? 'Uniform shape: every layer keeps the same number of heads and FFN neurons, written with only the standard config fields of the model family, so stock transformers (and pipelines, and other tools that read those configs) load model/ as they load the original, with no custom code.'
    : `Heterogeneous shape: the layers differ in size, which standard configs cannot say. model/ carries a small modeling file and an auto_map in config.json, so transformers loads it with trust_remote_code=True (${load.autoClass}, the pipelines, AutoTokenizer).`;
}

/** Rows of the teacher-vs-compressed summary (shared by the Markdown, the HTML fallback and the report panel). */
export function summaryRows(r: RunReport): { label: string; teacher: string; student: string; change: string }[] {
  const t = r.teacher;
  const s = r.student;
  const rows: { label: string; teacher: string; student: string; change: string }[] = [];
  const size = (label: string, f: (m: ModelSummary) => number) =>
    rows.push({ label, teacher: fmtInt(f(t)), student: s ? fmtInt(f(s)) : '—', change: s ? `${fmtPct(f(s) / f(t))} kept` : '' });
  size('Parameters', (m) => m.params);
  size('Encoder parameters', (m) => m.encoderParams);
  size('FLOPs per token', (m) => m.flopsPerToken);
  const name = r.metricName;
  rows.push({
    label: `${cap(METRIC_LABEL[name])} (${higherIsBetter(name) ? 'higher' : 'lower'} is better)`,
    teacher: fmtMetric(name, t.metric?.value),
    student: fmtMetric(name, s?.metric?.value),
    change: s?.metric && t.metric ? fmtMetricDelta(name, s.metric.value, t.metric.value) : '',
  });
  if (t.metric?.f1 != null || s?.metric?.f1 != null) {
    rows.push({
      label: 'Macro F1',
      teacher: t.metric?.f1 != null ? fmtPct(t.metric.f1, 2) : '—',
      student: s?.metric?.f1 != null ? fmtPct(s.metric.f1, 2) : '—',
      change: '',
    });
  }
  if (t.onnx || s?.onnx) {
    rows.push({
      label: 'ONNX file',
      teacher: t.onnx ? fmtBytes(t.onnx.bytes) : '—',
      student: s?.onnx ? fmtBytes(s.onnx.bytes) : '—',
      change: t.onnx && s?.onnx ? `${fmtPct(s.onnx.bytes / t.onnx.bytes)} of the size` : '',
    });
    const o = s?.onnx ?? t.onnx;
    for (const b of Object.keys(o?.latencyMs ?? {})) {
      const tv = t.onnx?.latencyMs[b];
      const sv = s?.onnx?.latencyMs[b];
      rows.push({
        label: `Latency, batch ${b} (seq ${o?.seqLen}, ${o?.threads} threads)`,
        teacher: tv != null ? fmtMs(tv) : '—',
        student: sv != null ? fmtMs(sv) : '—',
        change: tv != null && sv != null && sv > 0 ? `${(tv / sv).toFixed(2)}× faster` : '',
      });
    }
  }
  return rows;
}

export function renderReportMarkdown(r: RunReport): string {
  const m = r.model;
  const out: string[] = [];
  out.push(`# VTrans report — ${r.runId}`, '');
  out.push(
    `Model \`${m.dir}\` (${m.family}, ${m.task === 'lm' ? 'causal LM' : 'sequence classification'}; ${m.layers} layers × ${m.heads} heads, hidden ${m.hidden}, FFN ${m.ffn}). ` +
      `Method ${r.method}; budget: keep ${fmtPct(r.budget.keep)} of ${r.budget.kind} (achieved ${fmtPct(r.budget.achieved)}). Status: ${r.status}. Created ${r.createdAt}.`,
    '',
  );
  out.push('## Summary', '');
  out.push(
    mdTable(
      ['', 'Teacher', 'Compressed', 'Change'],
      summaryRows(r).map((x) => [x.label, x.teacher, x.student, x.change]),
      ['l', 'r', 'r', 'l'],
    ),
    '',
  );
  if (r.load) {
    out.push('## How to load', '', shapeSentence(r.load), '', '```python', r.load.python, '```', '');
    if (r.load.onnxPython) out.push('`model.onnx` in onnxruntime:', '', '```python', r.load.onnxPython, '```', '');
  }
  out.push('## Findings', '');
  for (const f of computeFindings(r)) out.push(`- ${f.text}`);
  out.push('');

  if (r.tradeoff.length) {
    const name = r.metricName;
    out.push('## Size/accuracy tradeoff', '');
    out.push(
      mdTable(
        ['Source', 'Budget', 'Parameters', 'Encoder params', 'FLOPs/token', cap(METRIC_LABEL[name]), 'Latency b1'],
        r.tradeoff.map((p) => [
          tradeoffSource(p.source),
          p.source === 'teacher' ? '100%' : `${fmtPct(p.keep)} ${p.kind}`,
          fmtInt(p.params),
          fmtInt(p.encoderParams),
          fmtInt(p.flopsPerToken),
          p.metric == null ? 'not evaluated' : fmtMetric(name, p.metric),
          p.latencyMs?.['1'] != null ? fmtMs(p.latencyMs['1']) : '—',
        ]),
        ['l', 'l', 'r', 'r', 'r', 'r', 'r'],
      ),
      '',
    );
  }

  if (r.layers.length) {
    out.push('## Layers', '');
    out.push(
      mdTable(
        ['Layer', 'Heads kept', 'Pruned heads', 'Special tokens (retained / pruned)', 'FFN neurons kept', 'Attention', 'FFN'],
        summarizeLayers(r).map((s) => [
          String(s.index),
          `${s.keptHeads.length} of ${s.headsTotal}`,
          s.prunedHeads.length ? s.prunedHeads.join(', ') : 'none',
          `${fmtProbe('special', s.probes.kept.special)} / ${fmtProbe('special', s.probes.pruned.special)}`,
          `${fmtInt(s.ffnKept)} of ${fmtInt(s.ffnTotal)} (${fmtPct(s.ffnTotal ? s.ffnKept / s.ffnTotal : 0)})`,
          s.attentionKept ? 'kept' : 'removed',
          s.ffnSublayerKept ? 'kept' : 'removed',
        ]),
        ['r', 'r', 'l', 'r', 'r', 'l', 'l'],
      ),
      '',
    );
    out.push(
      '## Heads',
      '',
      `A head is kept while its retention score log α is above ${r.threshold}. Attention probes: mean attention mass over ${r.probes ? `${fmtInt(r.probes.examples)} examples (sequence length ${r.probes.seqLen})` : 'the probe examples'}; entropy in nats.`,
      '',
    );
    const rows: string[][] = [];
    for (const l of r.layers) {
      for (const hd of l.heads) {
        rows.push([
          String(l.index),
          String(hd.index),
          headKept(l, hd) ? 'kept' : 'pruned',
          hd.logAlpha.toFixed(3),
          ...PROBE_NAMES.map((p) => fmtProbe(p, hd.probes?.[p])),
        ]);
      }
    }
    out.push(
      mdTable(['Layer', 'Head', 'Status', 'log α', ...PROBE_NAMES.map((p) => cap(PROBE_LABEL[p]))], rows, [
        'r',
        'r',
        'l',
        'r',
        'r',
        'r',
        'r',
        'r',
        'r',
      ]),
      '',
    );
    if (r.probes?.keywords.length)
      out.push(
        `Keywords (highest gradient saliency for the label): ${r.probes.keywords.map((k) => `\`${k.replace(/`/g, "'")}\``).join(', ')}.`,
        '',
      );
  }

  const env = r.environment;
  if (env || r.wallSeconds != null) {
    const parts: string[] = [];
    if (env)
      parts.push(`device ${env.device}${env.gpu ? ` (${env.gpu})` : ''}, torch ${env.torch}, Python ${env.python}, ${env.threads} threads`);
    if (r.wallSeconds != null) parts.push(`wall time ${fmtDuration(r.wallSeconds)}`);
    out.push('## Environment', '', `${cap(parts.join('; '))}.`, '');
  }
  return out.join('\n');
}

export function fmtDuration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  return h ? `${h} h ${m} min` : m ? `${m} min ${ss} s` : `${ss} s`;
}

/** JSON that can sit inside a <script> element: `<` is escaped so no `</script>` or `<!--` can appear. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** JavaScript that can sit inside an inline <script>: closing tags and comment openers are escaped (same meaning in JS strings, templates and regexes, unicode ones included). */
export function scriptSafeJs(js: string): string {
  return js
    .replace(/\/\/# sourceMappingURL=\S+\s*$/, '')
    .replace(/<\/(script)/gi, '<\\/$1')
    .replace(/<!--/g, '<\\x21--');
}

function randomNonce(): string {
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  const c = globalThis.crypto;
  if (c?.getRandomValues) {
    for (const b of c.getRandomValues(new Uint8Array(24))) s += chars[b % chars.length];
  } else {
    for (let i = 0; i < 24; i++) s += chars[Math.floor(Math.random() * chars.length)];
  }
  return s;
}

/**
 * report.html: the same views as the VS Code panels (report, tradeoff, heatmaps on one page), built from the
 * bundled webview code (`dist/webview.js`) and stylesheet (`media/webview.css`). Its CSP allows only the
 * inline blocks carrying the nonce and no network at all. Without JavaScript it still shows the summary and
 * the findings.
 */
export function renderReportHtml(report: RunReport, webviewBundleJs: string, css: string, options: { nonce?: string } = {}): string {
  const nonce = options.nonce ?? randomNonce();
  const csp = `default-src 'none'; img-src data: blob:; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'; font-src data:; connect-src 'none'; form-action 'none'; base-uri 'none'`;
  const findings = computeFindings(report)
    .map((f) => `<li>${escapeHtml(f.text)}</li>`)
    .join('');
  const summary = summaryRows(report)
    .map(
      (x) =>
        `<tr><th scope="row">${escapeHtml(x.label)}</th><td>${escapeHtml(x.teacher)}</td><td>${escapeHtml(x.student)}</td><td>${escapeHtml(x.change)}</td></tr>`,
    )
    .join('');
  const title = `VTrans report — ${report.runId}`;
  return `<!doctype html>
<html lang="en" class="vt-standalone">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="generator" content="VTrans for VS Code">
<title>${escapeHtml(title)}</title>
<style nonce="${nonce}">
${css.replace(/<\/(style)/gi, '<\\/$1')}
</style>
</head>
<body data-vtrans-panel="all">
<main id="vtrans-root">
<noscript>
<h1>${escapeHtml(title)}</h1>
<p>The charts need JavaScript; the summary and findings follow.</p>
<table class="vt-table"><thead><tr><th></th><th>Teacher</th><th>Compressed</th><th>Change</th></tr></thead><tbody>${summary}</tbody></table>
${report.load ? `<h2>How to load</h2><p>${escapeHtml(shapeSentence(report.load))}</p><pre>${escapeHtml(report.load.python)}</pre>` : ''}
<ul class="vt-findings">${findings}</ul>
</noscript>
</main>
<script type="application/json" id="vtrans-report">${scriptJson(report)}</script>
<script type="module" nonce="${nonce}">
${scriptSafeJs(webviewBundleJs)}
</script>
</body>
</html>
`;
}
