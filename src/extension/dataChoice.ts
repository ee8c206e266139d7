/**
 * Choosing the data of a compression like a user would: data files found by their content (tables with a text
 * and a label column; .txt only for language modelling), a preview of the chosen file (columns, first rows, row
 * and label counts), the column mapping (text / label / second text of a pair), the evaluation data (a file or
 * a held-out share) and an optional test file. The choice is remembered per model project in the workspace
 * state (never written to the settings) and offered first the next time.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Fields } from '../core/data';
import { describePreview, previewData, sniffDataFile, type DataPreview } from '../core/dataPreview';
import { errorMessage } from '../core/errors';
import type { Task } from '../core/modelShape';
import { EXCLUDE, type ModelProject } from './modelProjects';
import { nextChoice } from './quickPick';

const DATA_GLOB = '**/*.{jsonl,ndjson,csv,tsv,txt}';
const STATE_KEY = 'vtrans.dataChoices';
export const HOLDOUT = 0.1;

export interface DataChoice {
  task: Task;
  train: string;
  /** Undefined: 10 % of the training data is held out for evaluation. */
  eval?: string;
  test?: string;
  /** Column names; unset ones are the defaults (text, label, text_pair). */
  fields: Fields;
}

/** Remembered choices, per model project, in the workspace state (not in the settings). */
export class DataChoices {
  constructor(private readonly state: vscode.Memento) {}

  get(modelDir: string): DataChoice | undefined {
    const all = this.state.get<Record<string, DataChoice>>(STATE_KEY, {});
    const c = all[path.resolve(modelDir)];
    // A file that moved or was deleted since: not offered.
    if (!c || ![c.train, c.eval, c.test].every((f) => f === undefined || fs.existsSync(f))) return undefined;
    return c;
  }

  async set(modelDir: string, choice: DataChoice): Promise<void> {
    const all = { ...this.state.get<Record<string, DataChoice>>(STATE_KEY, {}) };
    all[path.resolve(modelDir)] = choice;
    await this.state.update(STATE_KEY, all);
  }
}

type Item<T> = vscode.QuickPickItem & { value?: T };

const rel = (f: string) => vscode.workspace.asRelativePath(f);
const sep = (label: string): vscode.QuickPickItem => ({ label, kind: vscode.QuickPickItemKind.Separator });

/** "train.csv, eval dev.csv, test test.csv · text: sentence, label: label". */
export function describeChoice(c: DataChoice): string {
  const files = [
    path.basename(c.train),
    c.eval ? `eval ${path.basename(c.eval)}` : `eval: ${Math.round(HOLDOUT * 100)}% held out`,
    ...(c.test ? [`test ${path.basename(c.test)}`] : []),
  ];
  const cols = Object.entries(c.fields)
    .filter(([, v]) => v)
    .map(([k, v]) => `${k === 'textPair' ? 'pair' : k}: ${v}`);
  return `${files.join(', ')}${cols.length ? ` · ${cols.join(', ')}` : ''}`;
}

interface Candidate {
  file: string;
  tasks: Task[];
}

/** Data files of the workspace that can serve `task`, by their content; files named like `prefer` first. */
async function candidates(task: Task): Promise<Candidate[]> {
  const uris = await vscode.workspace.findFiles(DATA_GLOB, EXCLUDE, 1000);
  const out: Candidate[] = [];
  for (const u of uris) {
    const s = await sniffDataFile(u.fsPath);
    if (s.ok && s.tasks.includes(task)) out.push({ file: u.fsPath, tasks: s.tasks });
  }
  return out;
}

async function lightPreview(file: string, task: Task, fields?: Fields): Promise<DataPreview | undefined> {
  try {
    return await previewData(file, { task, fields, maxBytes: 512 * 1024 });
  } catch {
    return undefined;
  }
}

/** A quick pick of data files; `extra` items come first (e.g. "hold out 10 %"). Undefined: cancelled. */
async function pickFile<T>(
  title: string,
  task: Task,
  prefer: RegExp,
  extra: Item<T>[],
  fields?: Fields,
): Promise<{ file?: string; extra?: Item<T> } | undefined> {
  const qp = vscode.window.createQuickPick<Item<string | T>>();
  qp.title = title;
  qp.placeholder =
    task === 'lm'
      ? 'Text for language modelling: .txt, or .jsonl / .csv / .tsv with a text column'
      : '.jsonl, .csv or .tsv with a text and a label column';
  qp.matchOnDescription = true;
  qp.matchOnDetail = true;
  // The flow has several steps: a click elsewhere (the walkthrough moving on, the Explorer) must not cancel it.
  qp.ignoreFocusOut = true;
  qp.busy = true;
  const browse: Item<string> = { label: '$(folder-opened) Browse…', alwaysShow: true };
  // The list appears once it is complete: rows that move while the user clicks would take the click elsewhere.
  const waiting = qp.placeholder;
  qp.placeholder = 'Looking for data files in the workspace…';
  qp.show();
  const found = await candidates(task);
  found.sort(
    (a, b) =>
      Number(prefer.test(path.basename(b.file))) - Number(prefer.test(path.basename(a.file))) || rel(a.file).localeCompare(rel(b.file)),
  );
  const items: Item<string>[] = [];
  for (const [i, c] of found.entries()) {
    const p = i < 40 ? await lightPreview(c.file, task, fields) : undefined;
    // Files for the same run must have the training file's columns.
    const missing = p && fields ? Object.values(fields).filter((col): col is string => !!col && !p.columns.includes(col)) : [];
    items.push({
      value: c.file,
      label: `$(file) ${path.basename(c.file)}`,
      description: path.dirname(rel(c.file)) === '.' ? '' : path.dirname(rel(c.file)),
      detail: !p
        ? `${(fs.statSync(c.file).size / 1024).toFixed(0)} KiB`
        : missing.length
          ? `$(warning) no ${missing.map((m) => `"${m}"`).join(' or ')} column (columns: ${p.columns.join(', ')})`
          : describePreview(p),
    });
  }
  qp.items = [...extra, ...(items.length ? [sep('Data files in the workspace'), ...items] : []), browse];
  qp.placeholder = waiting;
  qp.busy = false;
  if (!items.length && !extra.length)
    qp.placeholder = `No data file for ${task === 'lm' ? 'language modelling' : 'classification'} in the workspace: Browse… for one`;
  const picked = await nextChoice(qp);
  qp.dispose();
  if (!picked) return undefined;
  if ((extra as Item<string | T>[]).includes(picked)) return { extra: picked as Item<T> };
  if (picked === browse) {
    const uris = await vscode.window.showOpenDialog({
      canSelectMany: false,
      title,
      filters: { Data: task === 'lm' ? ['txt', 'jsonl', 'ndjson', 'csv', 'tsv'] : ['jsonl', 'ndjson', 'csv', 'tsv'] },
    });
    return uris?.[0] ? { file: uris[0].fsPath } : undefined;
  }
  return { file: picked.value as string };
}

/**
 * The preview of the training file with its column mapping, changeable here. Resolves with the mapping, or
 * undefined when cancelled.
 */
async function confirmColumns(file: string, task: Task, project: ModelProject, start: Fields): Promise<Fields | undefined> {
  let fields: Fields = { ...start };
  const qp = vscode.window.createQuickPick<Item<string>>();
  qp.title = `VTrans: training data — ${path.basename(file)}`;
  qp.placeholder = 'Check the columns and labels, then Use';
  qp.matchOnDescription = true;
  qp.ignoreFocusOut = true;
  let preview: DataPreview | undefined;
  let first = true;
  const render = async () => {
    qp.busy = true;
    try {
      preview = await previewData(file, { task, fields });
      // Columns remembered from another file that this one lacks: guess afresh.
      if (first && Object.values(fields).some((c) => c && !preview!.columns.includes(c))) {
        fields = {};
        preview = await previewData(file, { task });
      }
      first = false;
    } catch (e) {
      qp.items = [{ label: `$(error) ${errorMessage(e)}`, value: 'none' }];
      qp.busy = false;
      return;
    }
    const p = preview;
    fields = { text: p.fields.text, label: p.fields.label, textPair: p.fields.textPair };
    const problems: string[] = [];
    if (p.format !== 'txt' && (!p.fields.text || !p.columns.includes(p.fields.text))) problems.push('pick the text column');
    if (task === 'classification' && (!p.fields.label || !p.columns.includes(p.fields.label))) problems.push('pick the label column');
    if (task === 'classification' && p.fields.label && p.labels.length < 2)
      problems.push(`the column "${p.fields.label}" has fewer than two labels`);
    const known = project.labels;
    const foreign =
      task === 'classification' && known
        ? p.labels.filter((l) => !known.some((k) => k === l.label || k.toLowerCase() === l.label.toLowerCase()) && !/^\d+$/.test(l.label))
        : [];
    if (foreign.length)
      problems.push(`labels the model does not have: ${foreign.map((l) => l.label).join(', ')} (it has ${known!.join(', ')})`);
    const items: Item<string>[] = [
      problems.length
        ? { label: `$(warning) Cannot use it yet: ${problems.join('; ')}`, value: 'blocked', alwaysShow: true }
        : { label: `$(check) Use ${path.basename(file)}`, value: 'use', detail: describePreview(p), alwaysShow: true },
    ];
    if (p.format !== 'txt') {
      items.push(sep('Columns (select one to change it)'));
      items.push({ label: `Text column: ${p.fields.text ?? '—'}`, value: 'col:text', description: 'the text to classify' });
      if (task === 'classification')
        items.push({
          label: `Label column: ${p.fields.label ?? '—'}`,
          value: 'col:label',
          description: known ? `model labels: ${known.join(', ')}` : '',
        });
      items.push({
        label: `Second text column: ${p.fields.textPair ?? 'none'}`,
        value: 'col:textPair',
        description: 'for sentence-pair tasks',
      });
    }
    if (task === 'classification' && p.labels.length) {
      const total = p.labels.reduce((n, l) => n + l.count, 0);
      items.push(sep(`Labels (${p.complete ? 'all' : 'the first 64 MiB:'} ${total.toLocaleString('en-US')} rows)`));
      for (const l of p.labels.slice(0, 12))
        items.push({
          label: `${foreign.includes(l) ? '$(warning) ' : ''}${l.label}`,
          description: `${l.count.toLocaleString('en-US')} (${((100 * l.count) / total).toFixed(1)}%)`,
          value: 'none',
        });
      if (p.labels.length > 12) items.push({ label: `… and ${p.labels.length - 12} more labels`, value: 'none' });
    }
    items.push(sep(`First rows (${p.complete ? '' : '~'}${p.rowCount.toLocaleString('en-US')} in all)`));
    for (const r of p.rows)
      items.push({
        label: (r[p.fields.text ?? 'text'] ?? '').replace(/\s+/g, ' ').slice(0, 120) || '(empty)',
        description: [
          p.fields.textPair ? `pair: ${(r[p.fields.textPair] ?? '').slice(0, 40)}` : '',
          p.fields.label ? `${p.fields.label}: ${r[p.fields.label] ?? ''}` : '',
        ]
          .filter(Boolean)
          .join(' · '),
        value: 'none',
      });
    qp.items = items;
    qp.busy = false;
  };
  qp.show();
  await render();
  for (;;) {
    const picked = await nextChoice(qp);
    if (!picked) {
      qp.dispose();
      return undefined;
    }
    if (picked.value === 'use') {
      qp.dispose();
      return fields;
    }
    if (picked.value?.startsWith('col:') && preview) {
      const key = picked.value.slice(4) as keyof Fields;
      const options: Item<string>[] = preview.columns.map((c) => ({
        label: c,
        value: c,
        description: preview!.rows[0]?.[c]?.slice(0, 60) ?? '',
        picked: fields[key] === c,
      }));
      if (key === 'textPair') options.unshift({ label: 'none', value: '', description: 'single texts' });
      const col = await vscode.window.showQuickPick(options, {
        title: `VTrans: ${key === 'text' ? 'text' : key === 'label' ? 'label' : 'second text'} column of ${path.basename(file)}`,
        ignoreFocusOut: true,
      });
      if (col) fields = { ...fields, [key]: col.value || undefined };
      qp.show();
      await render();
    }
  }
}

/**
 * The whole data step for a model project. Resolves with the choice (remembered for next time), or undefined
 * when the user cancelled.
 */
export async function chooseData(project: ModelProject, memory: DataChoices, steps: { of: number }): Promise<DataChoice | undefined> {
  const last = memory.get(project.dir);
  if (last) {
    const reuse: Item<'reuse'> = { label: '$(history) Use the same data as last time', value: 'reuse', detail: describeChoice(last) };
    const other: Item<'other'> = { label: '$(list-unordered) Choose other data…', value: 'other' };
    const c = await vscode.window.showQuickPick([reuse, other], {
      title: `VTrans: data for ${path.basename(project.dir)} (2/${steps.of})`,
      placeHolder: 'Remembered for this model project (in the workspace state, not the settings)',
      ignoreFocusOut: true,
    });
    if (!c) return undefined;
    if (c === reuse) return last;
  }
  let task = project.task;
  if (project.tasks.length > 1) {
    const t = await vscode.window.showQuickPick(
      project.tasks.map((id) => ({ id, label: id === 'classification' ? 'Classification (the checkpoint’s head)' : 'Language modelling' })),
      { title: `VTrans: task for ${path.basename(project.dir)}`, ignoreFocusOut: true },
    );
    if (!t) return undefined;
    task = t.id;
  }
  const train = await pickFile<never>(`VTrans: training data (2/${steps.of})`, task, /train/i, []);
  if (!train?.file) return undefined;
  const fields = await confirmColumns(train.file, task, project, last?.fields ?? {});
  if (!fields) return undefined;
  const holdout: Item<'holdout'> = {
    label: `$(split-horizontal) Hold out ${Math.round(HOLDOUT * 100)}% of the training data`,
    value: 'holdout',
    alwaysShow: true,
  };
  const evalPick = await pickFile(`VTrans: evaluation data (2/${steps.of})`, task, /dev|valid|eval/i, [holdout], fields);
  if (!evalPick) return undefined;
  const none: Item<'none'> = {
    label: '$(circle-slash) No test file',
    value: 'none',
    alwaysShow: true,
    detail: 'The test metric is reported for the teacher and the compressed model when a test file is given (never used for selection).',
  };
  const testPick = await pickFile(`VTrans: test data, optional (2/${steps.of})`, task, /test/i, [none], fields);
  if (!testPick) return undefined;
  const choice: DataChoice = {
    task,
    train: train.file,
    eval: evalPick.file,
    test: testPick.file,
    fields: Object.fromEntries(Object.entries(fields).filter(([, v]) => v)) as Fields,
  };
  await memory.set(project.dir, choice);
  return choice;
}
