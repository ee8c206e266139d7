/**
 * Webview entry (bundled to dist/webview.js). One bundle serves the three VS Code panels — the panel kind
 * comes from `<body data-vtrans-panel>` — and the standalone report.html (`data-vtrans-panel="all"`, the
 * report embedded as JSON, no extension behind it).
 */
import './elements';
import type { RunReport } from '../src/core/report';
import {
  isToWebview,
  PANEL_KINDS,
  reportProblem,
  type BudgetState,
  type PanelKind,
  type ReportPanelKind,
  type StateAction,
  type ToWebview,
  type WebviewState,
} from '../src/core/webviewProtocol';
import { CompareView } from './compare';
import { h, onThemeChange } from './dom';
import { HeatmapsView } from './heatmaps';
import { TrainingView } from './training';
import { createHost, type Host } from './host';
import { ReportView } from './reportView';
import { TradeoffView } from './tradeoff';
import { button, type View, type ViewContext } from './view';

type MountableView = View & { mount(): void };

function createView(panel: ReportPanelKind, ctx: ViewContext, report: RunReport, budget: BudgetState | null): MountableView {
  switch (panel) {
    case 'tradeoff':
      return new TradeoffView(ctx, report, budget);
    case 'heatmaps':
      return new HeatmapsView(ctx, report);
    case 'report':
      return new ReportView(ctx, report);
  }
}

const PANEL_TITLE: Record<PanelKind, string> = {
  tradeoff: 'Size/accuracy tradeoff',
  heatmaps: 'Attention-probe heatmaps',
  report: 'Head-retention report',
  training: 'Training',
  compare: 'Compare runs',
};

/** The panel inside VS Code: waits for the extension's messages and renders the matching state. */
class PanelApp {
  private view: MountableView | null = null;
  private state: WebviewState;
  private readonly content = h('div', { class: 'vt-content' });
  private readonly notice = h('div', { class: 'vt-notice', role: 'status', 'aria-live': 'polite', hidden: true });
  private last: Extract<ToWebview, { type: 'show' }> | null = null;
  private training: TrainingView | null = null;
  private lastCompare: Extract<ToWebview, { type: 'compare' }> | null = null;
  private noticeTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly panel: PanelKind,
    private readonly host: Host,
    root: HTMLElement,
  ) {
    const restored = host.getState();
    this.state = restored && restored.panel === panel ? restored : { panel };
    root.replaceChildren(this.notice, this.content);
    this.loading(this.state.runDir);
    onThemeChange(() => {
      // Chart colours come from the theme at draw time: redraw the charts; the others use CSS classes.
      if (this.last && this.panel === 'tradeoff') this.show(this.last);
      if (this.lastCompare) this.handle(this.lastCompare);
      if (this.training) {
        const t = this.training;
        this.training = null;
        const view = new TrainingView();
        t.dispose();
        this.setView(null);
        this.training = view;
        this.content.replaceChildren(view.root);
        view.mount();
        this.host.post({ type: 'requestMetrics', since: 0 });
      }
    });
  }

  private ctx(runDir: string): ViewContext {
    return {
      host: this.host,
      runDir,
      state: this.state,
      update: (patch) => {
        this.state = { ...this.state, ...patch };
        this.host.setState(this.state);
      },
      notify: (level, message) => this.showNotice(level, message),
    };
  }

  handle(msg: ToWebview): void {
    switch (msg.type) {
      case 'show':
        this.last = msg;
        this.show(msg);
        break;
      case 'budget':
        if (this.last) this.last = { ...this.last, budget: msg.budget };
        this.view?.setBudget(msg.budget);
        break;
      case 'loading':
        this.loading(msg.runDir);
        break;
      case 'empty':
        this.last = null;
        this.setView(null);
        this.content.replaceChildren(stateBox('empty', PANEL_TITLE[this.panel], msg.message, undefined, this.actionButtons(msg.actions)));
        break;
      case 'error':
        this.last = null;
        this.setView(null);
        this.content.replaceChildren(
          stateBox('error', PANEL_TITLE[this.panel], msg.message, msg.detail, [
            button('Reload', () => this.host.post({ type: 'requestState' })),
            button('Open Run…', () => this.host.post({ type: 'openRun' }), { secondary: true }),
            ...this.actionButtons(msg.actions),
          ]),
        );
        break;
      case 'notice':
        this.showNotice(msg.level, msg.message);
        break;
      case 'metrics': {
        if (!this.training) {
          this.setView(null);
          this.training = new TrainingView();
          this.content.replaceChildren(this.training.root);
          this.training.mount();
        }
        if (this.state.runDir !== msg.state.runDir) {
          this.state = { panel: this.panel, runDir: msg.state.runDir };
          this.host.setState(this.state);
        }
        // A gap (records the page never got): ask for everything from what it has.
        if (!this.training.update(msg.state, msg.from, msg.records)) this.host.post({ type: 'requestMetrics', since: this.training.count });
        document.title = `Training — ${msg.state.title}`;
        break;
      }
      case 'compare': {
        this.lastCompare = msg;
        this.setView(null);
        const view = new CompareView(this.host, msg.runs);
        this.content.replaceChildren(view.root);
        view.mount();
        this.compareView = view;
        this.state = { panel: this.panel, runDirs: msg.runs.map((r) => r.runDir) };
        this.host.setState(this.state);
        break;
      }
    }
  }

  private compareView: CompareView | null = null;

  private actionButtons(actions: StateAction[] | undefined): HTMLElement[] {
    return (actions ?? []).map((a) =>
      button(a.label, () => this.host.post({ type: 'runCommand', command: a.command }), { 'data-command': a.command }),
    );
  }

  private loading(runDir: string | undefined): void {
    this.setView(null);
    this.content.replaceChildren(
      h(
        'div',
        { class: 'vt-state vt-state-loading', role: 'status' },
        h('vscode-progress-ring', { 'aria-label': 'Loading' }),
        h('p', {}, runDir ? `Loading report.json from ${runDir}…` : 'Loading…'),
      ),
    );
  }

  private show(msg: Extract<ToWebview, { type: 'show' }>): void {
    const problem = reportProblem(msg.report);
    if (problem) {
      this.handle({ type: 'error', message: `report.json could not be read: ${problem}.`, runDir: msg.runDir });
      return;
    }
    if (this.state.runDir !== msg.runDir) {
      // Another run: per-run view state (focus, open layers) no longer applies.
      this.state = { panel: this.panel, runDir: msg.runDir, axis: this.state.axis, metric: this.state.metric };
      this.host.setState(this.state);
    }
    try {
      const view = createView(msg.panel, this.ctx(msg.runDir), msg.report, msg.budget);
      this.setView(view);
      this.content.replaceChildren(view.root);
      view.mount();
      document.title = `${PANEL_TITLE[this.panel]} — ${msg.report.runId}`;
    } catch (e) {
      this.setView(null);
      this.content.replaceChildren(
        stateBox('error', PANEL_TITLE[this.panel], `The view could not be drawn: ${(e as Error).message}.`, (e as Error).stack, [
          button('Reload', () => this.host.post({ type: 'requestState' })),
        ]),
      );
    }
  }

  private setView(view: MountableView | null): void {
    this.view?.dispose();
    this.view = view;
    this.training?.dispose();
    this.training = null;
    this.compareView?.dispose();
    this.compareView = null;
  }

  private showNotice(level: 'info' | 'error', message: string): void {
    this.notice.textContent = message;
    this.notice.className = `vt-notice vt-notice-${level}`;
    this.notice.hidden = false;
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => (this.notice.hidden = true), level === 'error' ? 12_000 : 5_000);
  }
}

function stateBox(
  kind: 'empty' | 'error',
  title: string,
  message: string,
  detail: string | undefined,
  actions: HTMLElement[],
): HTMLElement {
  return h(
    'div',
    { class: `vt-state vt-state-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('h1', { class: 'vt-title' }, title),
    h('p', { class: 'vt-state-message' }, message),
    detail ? h('pre', { class: 'vt-state-detail' }, detail) : null,
    actions.length ? h('div', { class: 'vt-toolbar' }, ...actions) : null,
  );
}

/** report.html: all three views on one page from the embedded report. */
function standalone(host: Host, root: HTMLElement): void {
  const data = document.getElementById('vtrans-report')?.textContent ?? '';
  let report: unknown;
  try {
    report = JSON.parse(data);
  } catch (e) {
    root.replaceChildren(
      stateBox('error', 'VTrans report', `The report data in this page could not be read: ${(e as Error).message}.`, undefined, []),
    );
    return;
  }
  const problem = reportProblem(report);
  if (problem) {
    root.replaceChildren(stateBox('error', 'VTrans report', `report.json could not be read: ${problem}.`, undefined, []));
    return;
  }
  const r = report as RunReport;
  let state: WebviewState = { panel: 'report' };
  const ctx: ViewContext = {
    host,
    runDir: r.runId,
    state,
    update: (patch) => {
      state = { ...state, ...patch };
      ctx.state = state;
      host.setState(state);
    },
    notify: () => {},
  };
  const budget: BudgetState = { kind: r.budget.kind, keep: r.budget.keep };
  const order: ReportPanelKind[] = ['report', 'tradeoff', 'heatmaps'];
  const nav = h('nav', { class: 'vt-nav', 'aria-label': 'Sections' }, ...order.map((p) => h('a', { href: `#vt-${p}` }, PANEL_TITLE[p])));
  const views = order.map((p) => createView(p, ctx, r, budget));
  root.replaceChildren(nav, ...views.map((v, i) => h('div', { id: `vt-${order[i]}`, class: 'vt-page-section' }, v.root)));
  document.title = `VTrans report — ${r.runId}`;
  for (const v of views) v.mount();
  let tradeoff = views[1];
  onThemeChange(() => {
    const next = createView('tradeoff', ctx, r, budget);
    tradeoff.root.replaceWith(next.root);
    tradeoff.dispose();
    next.mount();
    tradeoff = next;
  });
}

function main(): void {
  const host = createHost();
  const root = document.getElementById('vtrans-root') ?? document.body;
  const panel = document.body.dataset.vtransPanel;
  if (panel === 'all' || host.standalone) {
    standalone(host, root);
    return;
  }
  const kind = PANEL_KINDS.includes(panel as PanelKind) ? (panel as PanelKind) : 'report';
  const app = new PanelApp(kind, host, root);
  window.addEventListener('message', (e: MessageEvent) => {
    if (isToWebview(e.data)) app.handle(e.data);
  });
  host.post({ type: 'ready', panel: kind, state: host.getState() });
}

main();
