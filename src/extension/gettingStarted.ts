/**
 * The walkthrough's steps ("Get started with VTrans"): pick the Python interpreter that runs the backend (through
 * the Python extension when it is installed, else from the candidates VTrans finds or a path), check PyTorch and
 * the GPU, and open the sample project shipped in the extension (a tiny BERT spam classifier and a slice of its
 * data). Each step sets a context key the walkthrough's completion events wait for.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { describePython, installCommand, probePython, type PythonInfo } from '../core/python';
import type { BackendManager } from './backendManager';
import { readSettings } from './config';
import { interpreterCandidates, resolveInterpreter } from './interpreter';
import { nextChoice } from './quickPick';

export const SAMPLE_FOLDER = 'vtrans-sample';
export const WALKTHROUGH_ID = 'vtrans.vtrans#vtrans.gettingStarted';

async function done(key: string): Promise<void> {
  await vscode.commands.executeCommand('setContext', key, true);
}

function pythonExtension(): boolean {
  return vscode.extensions.getExtension('ms-python.python') !== undefined;
}

/**
 * "Pick the interpreter": the Python extension's picker when it is there (VTrans follows its choice), else a list
 * of the interpreters VTrans would try, each probed (torch version, CUDA), and a way to type a path. The pick is
 * written to the user setting vtrans.pythonPath, and the message says so.
 */
export async function selectInterpreter(backends: BackendManager, log: vscode.LogOutputChannel): Promise<PythonInfo | undefined> {
  if (pythonExtension() && !readSettings().pythonPath) {
    await vscode.commands.executeCommand('python.setInterpreter');
    try {
      const info = await resolveInterpreter(log);
      await backends.stop();
      await done('vtrans.interpreterReady');
      void vscode.window.showInformationMessage(
        `VTrans runs its backend with ${info.executable} (from the Python extension): ${describePython(info)}.`,
      );
      return info;
    } catch (e) {
      void vscode.window.showErrorMessage(`${(e as Error).message}`);
      return undefined;
    }
  }
  type Item = vscode.QuickPickItem & { exe?: string; action?: 'path' | 'copy' };
  const qp = vscode.window.createQuickPick<Item>();
  qp.title = 'VTrans: Python interpreter for the backend (needs PyTorch ≥ 2.1, numpy, safetensors)';
  qp.placeholder = 'Checking the interpreters VTrans finds…';
  qp.busy = true;
  qp.ignoreFocusOut = true;
  const enter: Item = { label: '$(edit) Enter the interpreter’s path…', action: 'path', alwaysShow: true };
  const copy: Item = { label: '$(copy) Copy the install command', action: 'copy', alwaysShow: true, detail: installCommand() };
  qp.items = [enter, copy];
  qp.show();
  const { candidates } = await interpreterCandidates(log);
  const items: Item[] = [];
  for (const c of candidates) {
    const r = await probePython(c);
    items.push({
      exe: c.executable,
      label: `${r.ok ? '$(pass)' : '$(circle-slash)'} ${c.executable}`,
      description: c.source,
      detail: r.ok ? describePython(r.info) : r.reason,
    });
  }
  qp.items = [...items, { label: '', kind: vscode.QuickPickItemKind.Separator }, enter, copy];
  qp.placeholder = 'Pick an interpreter that has PyTorch, or enter one’s path';
  qp.busy = false;
  const picked = await nextChoice(qp);
  qp.dispose();
  if (!picked) return undefined;
  if (picked.action === 'copy') {
    await vscode.env.clipboard.writeText(installCommand());
    void vscode.window.showInformationMessage(`Copied: ${installCommand()}`);
    return undefined;
  }
  const exe =
    picked.action === 'path'
      ? await vscode.window.showInputBox({
          title: 'VTrans: path of a Python interpreter with PyTorch',
          placeHolder: '/path/to/.venv/bin/python',
          ignoreFocusOut: true,
          validateInput: (v) => (v.trim() ? undefined : 'The path of a python executable'),
        })
      : picked.exe;
  if (!exe) return undefined;
  const r = await probePython({ executable: exe.trim(), source: 'picked' });
  if (!r.ok) {
    void vscode.window.showErrorMessage(
      `${exe} cannot run the VTrans backend: ${r.reason}. Install PyTorch there (${installCommand()}) or pick another.`,
    );
    return undefined;
  }
  await vscode.workspace.getConfiguration('vtrans').update('pythonPath', r.info.executable, vscode.ConfigurationTarget.Global);
  await backends.stop();
  await done('vtrans.interpreterReady');
  void vscode.window.showInformationMessage(
    `VTrans will run its backend with ${r.info.executable} (saved as vtrans.pythonPath in your user settings): ${describePython(r.info)}.`,
  );
  return r.info;
}

/** "Check PyTorch and the GPU": the interpreter VTrans would use, its torch, CUDA and the GPUs by name. */
export async function checkEnvironment(log: vscode.LogOutputChannel): Promise<PythonInfo | undefined> {
  try {
    const info = await resolveInterpreter(log);
    const gpus = info.cuda
      ? `${info.gpus} GPU${info.gpus === 1 ? '' : 's'}: ${info.gpuNames.join(', ')} — VTrans trains there (bf16 autocast where supported)`
      : 'no GPU that PyTorch can use — VTrans trains on the CPU (fine for small models such as the sample)';
    await done('vtrans.environmentChecked');
    const details = 'Show Details';
    void vscode.window
      .showInformationMessage(`PyTorch ${info.torch} (Python ${info.python}, ${info.source}); ${gpus}.`, details)
      .then((c) => c === details && log.show());
    log.info(`environment: ${info.executable}: ${describePython(info)}`);
    return info;
  } catch (e) {
    const pick = 'Pick Interpreter';
    void vscode.window
      .showErrorMessage(`VTrans cannot run its backend yet. ${(e as Error).message}`, pick)
      .then((c) => c === pick && vscode.commands.executeCommand('vtrans.selectInterpreter'));
    return undefined;
  }
}

/** The sample project inside the extension (dist/sample: model/, data/, README.md; built by scripts/package.mjs). */
export function sampleSource(extensionPath: string): string | undefined {
  const dir = path.join(extensionPath, 'dist', 'sample');
  return fs.existsSync(path.join(dir, 'model', 'config.json')) ? dir : undefined;
}

/**
 * "Open the sample": copies it into the open folder (vtrans-sample/), or into a folder the user picks and opens
 * that. Resolves with the sample's folder in the workspace, or undefined.
 */
export async function openSample(extensionPath: string): Promise<string | undefined> {
  const src = sampleSource(extensionPath);
  if (!src) {
    void vscode.window.showErrorMessage(
      `The sample project is not in this build of VTrans (${path.join(extensionPath, 'dist', 'sample')} is missing): package the extension with npm run package, which builds it.`,
    );
    return undefined;
  }
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  let dest: string;
  if (folder) dest = path.join(folder, SAMPLE_FOLDER);
  else {
    const picked = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Put the sample here' });
    if (!picked?.[0]) return undefined;
    dest = path.join(picked[0].fsPath, SAMPLE_FOLDER);
  }
  const fresh = !fs.existsSync(dest);
  if (fresh) fs.cpSync(src, dest, { recursive: true });
  await done('vtrans.sampleOpened');
  if (!folder) {
    await vscode.commands.executeCommand('vscode.openFolder', vscode.Uri.file(dest));
    return dest;
  }
  await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(path.join(dest, 'model')));
  await vscode.commands
    .executeCommand('markdown.showPreview', vscode.Uri.file(path.join(dest, 'README.md')))
    .then(undefined, () => vscode.commands.executeCommand('vscode.open', vscode.Uri.file(path.join(dest, 'README.md'))));
  void vscode.window
    .showInformationMessage(
      `${fresh ? 'Copied' : 'Opened'} the sample project into ${vscode.workspace.asRelativePath(dest)}: a tiny BERT spam classifier (model/) and its data (data/).`,
      'Compress It',
    )
    .then((c) => c === 'Compress It' && vscode.commands.executeCommand('vtrans.compressSample'));
  return dest;
}

/** The sample's model folder in the workspace, when it was opened. */
export function sampleModel(): string | undefined {
  for (const f of vscode.workspace.workspaceFolders ?? []) {
    for (const dir of [path.join(f.uri.fsPath, SAMPLE_FOLDER, 'model'), path.join(f.uri.fsPath, 'model')]) {
      if (fs.existsSync(path.join(dir, 'config.json')) && fs.existsSync(path.join(path.dirname(dir), 'data', 'train.jsonl'))) return dir;
    }
  }
  return undefined;
}
