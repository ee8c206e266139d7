/** What every panel view shares: the host, the persisted state, and a small status line for notices. */
import type { RunReport } from '../src/core/report';
import type { BudgetState, WebviewState } from '../src/core/webviewProtocol';
import { fmtPct } from '../src/core/findings';
import { BUDGET_KIND_LABEL, METHOD_LABEL } from '../src/core/labels';
import { h } from './dom';
import type { Host } from './host';

export interface ViewContext {
  host: Host;
  runDir: string;
  state: WebviewState;
  /** Merges into the persisted state (VS Code `setState`, so the serializer can restore the panel). */
  update(patch: Partial<WebviewState>): void;
  notify(level: 'info' | 'error', message: string): void;
}

export interface View {
  readonly root: HTMLElement;
  setBudget(budget: BudgetState | null): void;
  dispose(): void;
}

const STATUS_NOTE: Record<Exclude<RunReport['status'], 'done'>, string> = {
  running: 'This run is still running: the figures below are partial and refresh when report.json is rewritten.',
  failed:
    'This run failed: the figures below are what it wrote before failing. See the VTrans output channel for the error; resume the run from the VTrans Runs view.',
  cancelled: 'This run was cancelled: the figures below are partial. Resume it from the VTrans Runs view to finish it.',
};

/** The title block of a panel: run id, model, method and budget, plus a note when the run is not done. */
export function runHeader(report: RunReport, title: string): HTMLElement {
  const m = report.model;
  // "Run target" is what this run was compressed to; "budget setting" (the tradeoff marker) is vtrans.budget.keep now.
  const sub = `${m.family} · ${m.layers} layers × ${m.heads} heads · hidden ${m.hidden} · ${METHOD_LABEL[report.method]} · run target: keep ${fmtPct(report.budget.keep)} of ${BUDGET_KIND_LABEL[report.budget.kind]} (achieved ${fmtPct(report.budget.achieved)}) · ${report.status}`;
  return h(
    'header',
    { class: 'vt-header' },
    h('h1', { class: 'vt-title' }, title),
    h('p', { class: 'vt-subtitle' }, h('span', { class: 'vt-runid' }, report.runId), ` — ${sub}`),
    report.status !== 'done' ? h('p', { class: `vt-banner vt-banner-${report.status}`, role: 'status' }, STATUS_NOTE[report.status]) : null,
  );
}

/** A labelled group of buttons (the toolbar of a panel). */
export function toolbar(label: string, ...items: (HTMLElement | null)[]): HTMLElement {
  return h('div', { class: 'vt-toolbar', role: 'toolbar', 'aria-label': label }, ...items);
}

export function button(label: string, onClick: () => void, attrs: Record<string, string | boolean> = {}): HTMLElement {
  const b = h('vscode-button', { ...attrs }, label);
  b.addEventListener('click', onClick);
  return b;
}
