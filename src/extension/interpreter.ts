/**
 * Which Python runs the backend: the `vtrans.pythonPath` setting, else the Python extension's active
 * environment for the workspace, else VTRANS_PYTHON, a `.venv/` in a workspace folder, then python3.
 * The first that imports torch ≥ 2.1 (with numpy and safetensors) wins; when none does, one notification
 * says why, with the install command and a button to the setting.
 */
import { PythonExtension } from '@vscode/python-extension';
import * as vscode from 'vscode';
import {
  type Candidate,
  defaultCandidates,
  formatSurvey,
  installCommand,
  noPythonError,
  type PythonInfo,
  surveyPython,
} from '../core/python';
import { UserError } from '../core/errors';
import { readSettings } from './config';

async function pythonExtensionApi(): Promise<PythonExtension | undefined> {
  if (!vscode.extensions.getExtension('ms-python.python')) return undefined;
  return Promise.race([PythonExtension.api(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out')), 10_000))]);
}

async function pythonExtensionInterpreter(resource: vscode.Uri | undefined, log: vscode.LogOutputChannel): Promise<string | undefined> {
  try {
    const api = await pythonExtensionApi();
    if (!api) return undefined;
    const env = await api.environments.resolveEnvironment(api.environments.getActiveEnvironmentPath(resource));
    return env?.executable.uri?.fsPath;
  } catch (e) {
    log.warn(`Python extension: no active environment (${(e as Error).message})`);
    return undefined;
  }
}

/** Calls `onChange` when the Python extension's active environment changes (the backend then restarts). */
export async function onInterpreterChange(onChange: () => void, log: vscode.LogOutputChannel): Promise<vscode.Disposable | undefined> {
  try {
    const api = await pythonExtensionApi();
    return api?.environments.onDidChangeActiveEnvironmentPath(() => onChange());
  } catch (e) {
    log.warn(`Python extension: cannot follow interpreter changes (${(e as Error).message})`);
    return undefined;
  }
}

export async function interpreterCandidates(log: vscode.LogOutputChannel): Promise<{ candidates: Candidate[]; fromSetting: boolean }> {
  const configured = readSettings().pythonPath;
  if (configured) return { candidates: [{ executable: configured, source: 'vtrans.pythonPath' }], fromSetting: true };
  const fromExtension = await pythonExtensionInterpreter(vscode.workspace.workspaceFolders?.[0]?.uri, log);
  const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
  const candidates = [
    ...(fromExtension ? [{ executable: fromExtension, source: 'the Python extension' }] : []),
    ...defaultCandidates(process.env, folders),
  ];
  const seen = new Set<string>();
  return { candidates: candidates.filter((c) => !seen.has(c.executable) && seen.add(c.executable)), fromSetting: false };
}

export async function resolveInterpreter(log: vscode.LogOutputChannel): Promise<PythonInfo> {
  const { candidates, fromSetting } = await interpreterCandidates(log);
  const { found, reports } = await surveyPython(candidates);
  log.info(formatSurvey(reports, found));
  if (found) return found;
  if (fromSetting) {
    throw new UserError(
      `vtrans.pythonPath (${candidates[0].executable}) cannot run the backend: ${reports[0]?.detail}.`,
      `Install PyTorch there (${installCommand()}) or clear the setting.`,
    );
  }
  throw noPythonError(reports);
}

/** The single "no PyTorch" notification: the reason, the install command, and a way to the setting. */
export async function showMissingTorch(error: Error): Promise<void> {
  const open = 'Open Settings';
  const copy = 'Copy Install Command';
  const choice = await vscode.window.showErrorMessage(`VTrans cannot start its Python backend. ${error.message}`, open, copy);
  if (choice === open) await vscode.commands.executeCommand('workbench.action.openSettings', 'vtrans.pythonPath');
  if (choice === copy) await vscode.env.clipboard.writeText(installCommand());
}
