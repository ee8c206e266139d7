/**
 * src/extension/panels.ts against a stand-in for the `vscode` module (the editor boundary: panels, dialogs,
 * file system), checking the extension side of the protocol: panel options and CSP, the ready → show
 * handshake, budget messages and predictions, error and empty states, saving and exporting files, the
 * serializer, and that messages outside the protocol are ignored. The real editor runs these panels in the
 * extension-host tests; the browser side is in webview-*.test.ts.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import Module from 'node:module';
import * as path from 'node:path';
import { beforeEach, describe, it } from 'node:test';
import type { MetricsRecord } from '../../src/core/contracts';
import type { RunReport } from '../../src/core/report';
import { renderReportMarkdown } from '../../src/core/reportHtml';
import type { ToWebview } from '../../src/core/webviewProtocol';
import type * as PanelsModule from '../../src/extension/panels';
import { bertReport } from '../fixtures/reports/generate';

const ROOT = path.resolve(__dirname, '../..');

// ------------------------------------------------------------------ the stand-in `vscode` module

interface FakeUri {
  fsPath: string;
  path: string;
  toString(): string;
}
const uri = (p: string): FakeUri => ({ fsPath: p, path: p, toString: () => `file://${p}` });

class FakeWebview {
  options: Record<string, unknown> = {};
  html = '';
  readonly cspSource = 'https://fake.vscode-cdn.net';
  readonly posted: ToWebview[] = [];
  private handler: ((m: unknown) => void) | undefined;
  asWebviewUri(u: FakeUri) {
    return { toString: () => `https://fake.vscode-cdn.net${u.path}` };
  }
  postMessage(m: ToWebview) {
    this.posted.push(JSON.parse(JSON.stringify(m)) as ToWebview);
    return Promise.resolve(true);
  }
  onDidReceiveMessage(h: (m: unknown) => void) {
    this.handler = h;
    return { dispose: () => (this.handler = undefined) };
  }
  /** A message from the page. */
  receive(m: unknown) {
    this.handler?.(m);
  }
}

class FakePanel {
  readonly webview = new FakeWebview();
  iconPath: unknown;
  revealed = 0;
  private disposeHandlers: (() => void)[] = [];
  constructor(
    readonly viewType: string,
    public title: string,
    readonly createOptions: Record<string, unknown> = {},
  ) {}
  reveal() {
    this.revealed++;
  }
  onDidDispose(h: () => void) {
    this.disposeHandlers.push(h);
    return { dispose: () => {} };
  }
  dispose() {
    for (const h of this.disposeHandlers) h();
  }
}

const vs = {
  panels: [] as FakePanel[],
  serializers: new Map<string, { deserializeWebviewPanel(p: FakePanel, state: unknown): Promise<void> }>(),
  written: [] as { path: string; bytes: Buffer }[],
  commands: [] as string[],
  saveTo: '/tmp/out/file' as string | undefined,
  lastSaveDefault: undefined as string | undefined,
};

const fakeVscode = {
  Uri: { file: uri, joinPath: (base: FakeUri, ...parts: string[]) => uri(path.join(base.fsPath, ...parts)) },
  ViewColumn: { Active: -1, Beside: -2, One: 1 },
  window: {
    createWebviewPanel: (viewType: string, title: string, _column: number, options: Record<string, unknown>) => {
      const p = new FakePanel(viewType, title, options);
      vs.panels.push(p);
      return p;
    },
    registerWebviewPanelSerializer: (viewType: string, s: { deserializeWebviewPanel(p: FakePanel, state: unknown): Promise<void> }) => {
      vs.serializers.set(viewType, s);
      return { dispose: () => vs.serializers.delete(viewType) };
    },
    showSaveDialog: async (o: { defaultUri?: FakeUri }) => {
      vs.lastSaveDefault = o.defaultUri?.fsPath;
      return vs.saveTo ? uri(vs.saveTo) : undefined;
    },
    showInformationMessage: async () => undefined,
  },
  workspace: {
    workspaceFolders: undefined,
    fs: {
      readFile: async (u: FakeUri) => new Uint8Array(fs.readFileSync(u.fsPath)),
      writeFile: async (u: FakeUri, bytes: Uint8Array) => {
        vs.written.push({ path: u.fsPath, bytes: Buffer.from(bytes) });
      },
    },
  },
  commands: {
    executeCommand: async (c: string) => {
      vs.commands.push(c);
    },
  },
};

// `vscode` resolves to the stand-in for modules loaded from here on.
const FAKE_ID = path.join(ROOT, 'test', 'unit', '__fake_vscode__.js');
const M = Module as unknown as { _resolveFilename: (req: string, ...rest: unknown[]) => string };
const resolve = M._resolveFilename;
M._resolveFilename = function (req: string, ...rest: unknown[]) {
  return req === 'vscode' ? FAKE_ID : resolve.call(this, req, ...rest);
};
require.cache[FAKE_ID] = { id: FAKE_ID, filename: FAKE_ID, loaded: true, exports: fakeVscode } as unknown as NodeJS.Module;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ReportPanels } = require('../../src/extension/panels') as typeof PanelsModule;

// ------------------------------------------------------------------ the tests

const RUN = '/work/.vtrans/runs/r1';
const tick = () => new Promise((r) => setImmediate(r));

function setup(over: Partial<PanelsModule.ReportPanelCallbacks> = {}) {
  const calls = { load: [] as string[], predict: [] as unknown[], exportAt: [] as unknown[], openRun: 0 };
  const report = bertReport();
  const cb: PanelsModule.ReportPanelCallbacks = {
    loadReport: async (dir) => {
      calls.load.push(dir);
      return report;
    },
    currentBudget: () => ({ kind: 'encoder-params', keep: 0.4 }),
    predictAtBudget: async (_dir, b) => {
      calls.predict.push(b);
      return { ...b, params: 1, encoderParams: 2, flopsPerToken: 3, metric: 0.8, basis: 'rethreshold' };
    },
    exportAtBudget: (dir, b) => {
      calls.exportAt.push([dir, b]);
    },
    openRun: () => {
      calls.openRun++;
    },
    ...over,
  };
  const subscriptions: { dispose(): void }[] = [];
  const panels = new ReportPanels(uri(ROOT) as never, cb);
  panels.register({ subscriptions } as never);
  return { panels, calls, report, subscriptions };
}

async function ready(p: FakePanel, kind: string, state: unknown = null) {
  p.webview.receive({ type: 'ready', panel: kind, state });
  await tick();
  await tick();
}

describe('ReportPanels (extension side)', () => {
  beforeEach(() => {
    vs.panels.length = 0;
    vs.written.length = 0;
    vs.commands.length = 0;
    vs.saveTo = '/tmp/out/file';
  });

  it('creates each panel with scripts on, resources limited to dist/ and media/, a nonce CSP and no retained context', async () => {
    const { panels } = setup();
    await panels.show('tradeoff', RUN);
    const p = vs.panels[0];
    assert.equal(p.viewType, 'vtrans.tradeoff');
    const o = p.webview.options as {
      enableScripts: boolean;
      localResourceRoots: FakeUri[];
      retainContextWhenHidden: boolean;
      enableCommandUris: boolean;
    };
    assert.equal(o.enableScripts, true);
    assert.equal(o.enableCommandUris, false);
    assert.equal(o.retainContextWhenHidden, false);
    assert.deepEqual(
      o.localResourceRoots.map((u) => u.fsPath),
      [path.join(ROOT, 'dist'), path.join(ROOT, 'media')],
    );
    const html = p.webview.html;
    const nonce = /script-src 'nonce-([A-Za-z0-9]+)'/.exec(html)?.[1];
    assert.ok(nonce && nonce.length >= 16, html);
    assert.ok(
      html.includes(`<script type="module" nonce="${nonce}" src="https://fake.vscode-cdn.net${path.join(ROOT, 'dist', 'webview.js')}">`),
    );
    assert.ok(html.includes("default-src 'none'") && !html.includes('unsafe-inline') && !html.includes('unsafe-eval'));
    assert.ok(html.includes('data-vtrans-panel="tradeoff"'));
    assert.deepEqual(p.webview.posted, [], 'nothing is sent before the page is ready');
    // A second show reveals the same panel.
    await panels.show('tradeoff', RUN);
    assert.equal(vs.panels.length, 1);
    assert.equal(p.revealed, 1);
    panels.dispose();
  });

  it('answers ready with the report and the budget, then the prediction; budget changes reach every open panel', async () => {
    const { panels, calls, report } = setup();
    await panels.show('tradeoff', RUN);
    const p = vs.panels[0];
    await ready(p, 'tradeoff');
    const [loading, show, budget] = p.webview.posted;
    assert.deepEqual(loading, { type: 'loading', runDir: RUN });
    assert.equal(show.type, 'show');
    assert.deepEqual(show.type === 'show' && [show.panel, show.runDir, show.report.runId, show.budget], [
      'tradeoff',
      RUN,
      report.runId,
      { kind: 'encoder-params', keep: 0.4 },
    ]);
    assert.deepEqual(budget, {
      type: 'budget',
      budget: {
        kind: 'encoder-params',
        keep: 0.4,
        predicted: { kind: 'encoder-params', keep: 0.4, params: 1, encoderParams: 2, flopsPerToken: 3, metric: 0.8, basis: 'rethreshold' },
      },
    });
    assert.equal(p.title, `Tradeoff: ${report.runId}`);

    await panels.show('heatmaps', RUN);
    const q = vs.panels[1];
    await ready(q, 'heatmaps');
    p.webview.posted.length = 0;
    q.webview.posted.length = 0;
    panels.setBudget({ kind: 'params', keep: 0.3 });
    await tick();
    assert.deepEqual(p.webview.posted[0], { type: 'budget', budget: { kind: 'params', keep: 0.3 } });
    assert.deepEqual(
      q.webview.posted,
      [{ type: 'budget', budget: { kind: 'params', keep: 0.3 } }],
      'predictions only go to the tradeoff panel',
    );
    assert.deepEqual(calls.predict.pop(), { kind: 'params', keep: 0.3 });
    assert.equal(p.webview.posted.length, 2);

    await panels.refresh(RUN);
    assert.equal(calls.load.filter((d) => d === RUN).length, 4);
    panels.dispose();
  });

  it('says "report.json could not be read" with the reason, and "No run yet" when there is no run', async () => {
    const { panels } = setup({
      loadReport: async () => {
        throw new Error('Unexpected end of JSON input');
      },
    });
    await panels.show('report', RUN);
    await ready(vs.panels[0], 'report');
    const err = vs.panels[0].webview.posted.find((m) => m.type === 'error');
    assert.ok(err && err.type === 'error');
    assert.equal(err.message, 'report.json could not be read: Unexpected end of JSON input');
    assert.equal(err.detail, path.join(RUN, 'report.json'));

    await panels.show('heatmaps');
    await ready(vs.panels[1], 'heatmaps');
    const empty = vs.panels[1].webview.posted[0];
    assert.ok(empty.type === 'empty' && empty.message.startsWith('No run yet: run VTrans: Compress Model'));
    assert.deepEqual(empty.type === 'empty' && empty.actions?.map((a) => a.command), ['vtrans.compress', 'vtrans.openRun']);
    vs.panels[1].webview.receive({ type: 'runCommand', command: 'vtrans.compress' });
    vs.panels[1].webview.receive({ type: 'runCommand', command: 'workbench.action.terminal.new' });
    vs.panels[1].webview.receive({ type: 'runCommand', command: 'vtrans.deleteRun' });
    await tick();
    assert.deepEqual(vs.commands, ['vtrans.compress']);
    panels.dispose();
  });

  it('saves files the page hands over, exports the report, and exports at a budget', async () => {
    const { panels, calls, report } = setup();
    await panels.show('tradeoff', RUN);
    const p = vs.panels[0];
    await ready(p, 'tradeoff');
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
    vs.saveTo = '/tmp/out/chart.png';
    p.webview.receive({
      type: 'saveFile',
      format: 'png',
      suggestedName: '../../etc/chart.png',
      content: png.toString('base64'),
      encoding: 'base64',
    });
    await tick();
    await tick();
    assert.equal(vs.lastSaveDefault, path.join(RUN, 'chart.png'), 'the suggested name cannot leave the run directory');
    assert.deepEqual(vs.written.pop(), { path: '/tmp/out/chart.png', bytes: png });
    assert.ok(p.webview.posted.some((m) => m.type === 'notice' && m.message === 'Saved /tmp/out/chart.png'));

    vs.saveTo = '/tmp/out/report.md';
    p.webview.receive({ type: 'exportReport', format: 'md' });
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(vs.written.pop()?.bytes.toString('utf8'), renderReportMarkdown(report));
    vs.saveTo = '/tmp/out/report.html';
    p.webview.receive({ type: 'exportReport', format: 'html' });
    for (let i = 0; i < 10; i++) await tick();
    const html = vs.written.pop()?.bytes.toString('utf8') ?? '';
    assert.ok(html.startsWith('<!doctype html>') && html.includes('id="vtrans-report"') && html.includes(report.runId));

    vs.saveTo = undefined;
    p.webview.receive({ type: 'saveFile', format: 'csv', suggestedName: 'x.csv', content: 'a,b\n', encoding: 'utf8' });
    await tick();
    assert.equal(vs.written.length, 0, 'a cancelled dialog writes nothing');

    p.webview.receive({ type: 'exportAtBudget', kind: 'encoder-params', keep: 0.4 });
    p.webview.receive({ type: 'exportAtBudget', kind: 'encoder-params', keep: 7 });
    p.webview.receive({ type: 'openRun' });
    await tick();
    assert.deepEqual(calls.exportAt, [[RUN, { kind: 'encoder-params', keep: 0.4 }]]);
    assert.equal(calls.openRun, 1);
    panels.dispose();
  });

  it('restores a panel after a reload from the run directory in its state', async () => {
    const { panels, calls } = setup();
    assert.deepEqual([...vs.serializers.keys()].sort(), [
      'vtrans.compare',
      'vtrans.heatmaps',
      'vtrans.report',
      'vtrans.tradeoff',
      'vtrans.training',
    ]);
    const p = new FakePanel('vtrans.report', 'VTrans Report');
    await vs.serializers.get('vtrans.report')!.deserializeWebviewPanel(p, { panel: 'report', runDir: '/runs/restored', openLayers: [1] });
    assert.ok(p.webview.html.includes('data-vtrans-panel="report"'));
    await ready(p, 'report', { panel: 'report', runDir: '/runs/restored' });
    assert.deepEqual(calls.load, ['/runs/restored']);
    assert.ok(panels.isOpen('report'));
    assert.ok(panels.isOpen('report', '/runs/restored'));
    p.dispose();
    assert.ok(!panels.isOpen('report'));
    panels.dispose();
  });

  it('the newest load wins when a panel reloads quickly', async () => {
    let release: (r: RunReport) => void = () => {};
    const slow = new Promise<RunReport>((r) => (release = r));
    const fast = bertReport();
    fast.runId = 'fast';
    let calls = 0;
    const { panels } = setup({ loadReport: async () => (++calls === 1 ? slow : fast) });
    await panels.show('report', '/run');
    const p = vs.panels[0];
    p.webview.receive({ type: 'ready', panel: 'report', state: null });
    await tick();
    p.webview.receive({ type: 'requestState' });
    await tick();
    release({ ...bertReport(), runId: 'slow' });
    for (let i = 0; i < 5; i++) await tick();
    const shows = p.webview.posted.filter((m) => m.type === 'show').map((m) => (m.type === 'show' ? m.report.runId : ''));
    assert.deepEqual(shows, ['fast']);
    panels.dispose();
  });

  it('opens a panel per run: two runs side by side, the same run revealed; show() without a run reuses the open one', async () => {
    const { panels } = setup({ runTitle: (dir) => `model · ${path.basename(dir)}` });
    await panels.show('tradeoff', '/runs/a');
    await panels.show('tradeoff', '/runs/b');
    assert.equal(vs.panels.length, 2);
    await panels.show('tradeoff', '/runs/a');
    assert.equal(vs.panels.length, 2);
    assert.equal(vs.panels[0].revealed, 1);
    await panels.show('tradeoff');
    assert.equal(vs.panels.length, 2, 'no new panel without a run');
    await ready(vs.panels[1], 'tradeoff');
    assert.equal(vs.panels[1].title, 'Tradeoff: model · b');
    assert.deepEqual(
      panels.openPanels().map((e) => e.runDir),
      ['/runs/a', '/runs/b'],
    );
    panels.dispose();
  });

  it('training panel: the records of metrics.jsonl, then only the new ones; the page can ask from any index', async () => {
    const records = [
      { time: 't', phase: 'teacher', eval: { name: 'accuracy', value: 0.9 } },
      { time: 't', phase: 'prune', step: 1, loss: 1, kl: 2, sparsity: 0, target: 1, lambda: [0, 0] },
    ] as MetricsRecord[];
    const state = {
      runDir: RUN,
      title: 'm · Fast-VTrans 50% params',
      status: 'running',
      target: { kind: 'params', keep: 0.5 },
      metricName: null,
      progress: null,
    } as const;
    const { panels } = setup({ loadMetrics: async () => ({ state: { ...state }, records: [...records] }) });
    await panels.show('training', RUN);
    const p = vs.panels[0];
    assert.equal(p.viewType, 'vtrans.training');
    await ready(p, 'training');
    assert.deepEqual(p.webview.posted[0], { type: 'metrics', state, from: 0, records });
    assert.equal(p.title, 'Training: m · Fast-VTrans 50% params');
    records.push({
      time: 't',
      phase: 'prune',
      step: 11,
      loss: 0.5,
      kl: 1.5,
      sparsity: 0.2,
      target: 0.8,
      lambda: [0.1, 0],
    } as MetricsRecord);
    await panels.metricsChanged(RUN);
    assert.deepEqual(p.webview.posted[1], { type: 'metrics', state, from: 2, records: [records[2]] });
    await panels.metricsChanged('/another/run');
    assert.equal(p.webview.posted.length, 2, 'other runs do not reach this panel');
    p.webview.receive({ type: 'requestMetrics', since: 1 });
    await tick();
    await tick();
    assert.deepEqual(p.webview.posted[2], { type: 'metrics', state, from: 1, records: records.slice(1) });
    panels.dispose();
  });

  it('compare panel: the runs in the order chosen, or a message naming the run without a report', async () => {
    const report = bertReport();
    const { panels } = setup({
      loadCompare: async (dirs) => {
        if (dirs.includes('/runs/unfinished')) throw new Error('m · Fast-VTrans 30% params has no report.json yet');
        return dirs.map((d) => ({ runDir: d, title: path.basename(d), note: '', report }));
      },
    });
    await panels.compare(['/runs/b', '/runs/a']);
    const p = vs.panels[0];
    assert.equal(p.viewType, 'vtrans.compare');
    await ready(p, 'compare');
    const msg = p.webview.posted[0];
    assert.equal(msg.type, 'compare');
    assert.deepEqual(msg.type === 'compare' && msg.runs.map((r) => r.runDir), ['/runs/b', '/runs/a']);
    assert.equal(p.title, 'Compare: 2 runs');
    await panels.compare(['/runs/b', '/runs/a']);
    assert.equal(vs.panels.length, 1, 'the same comparison is revealed');
    await panels.compare(['/runs/a', '/runs/unfinished']);
    const q = vs.panels[1];
    await ready(q, 'compare');
    assert.equal(q.webview.posted[0].type, 'error');
    assert.match(q.webview.posted[0].type === 'error' ? q.webview.posted[0].message : '', /has no report\.json yet/);
    panels.dispose();
  });
});
