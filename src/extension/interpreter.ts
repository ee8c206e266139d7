/**
 * Which Python runs the backend: the `vtrans.pythonPath` setting, else the Python extension's active
 * environment for the workspace, else the defaults the CLI uses (VTRANS_PYTHON, /usr/bin/python3, python3).
 * The first that imports torch ≥ 1.13 wins; when none does, one notification says why, with the install
 * command and a button to the setting.
 */
import { PythonExtension } from '@vscode/python-extension';
import * as vscode from 'vscode';
import { UserError } from '../core/errors';
import { defaultCandidates, findPython, installCommand, type PythonInfo } from '../core/python';
import { readSettings } from './config';

async function pythonExtensionInterpreter(resource: vscode.Uri | undefined, log: vscode.LogOutputChannel): Promise<string | undefined> {
  if (!vscode.extensions.getExtension('ms-python.python')) return undefined;
  try {
    const api = await Promise.race([PythonExtension.api(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out')), 10_000))]);
    const env = await api.environments.resolveEnvironment(api.environments.getActiveEnvironmentPath(resource));
    return env?.executable.uri?.fsPath;
  } catch (e) {
    log.warn(`Python extension: no active environment (${(e as Error).message})`);
    return undefined;
  }
}

export async function interpreterCandidates(log: vscode.LogOutputChannel): Promise<{ candidates: string[]; fromSetting: boolean }> {
  const configured = readSettings().pythonPath;
  if (configured) return { candidates: [configured], fromSetting: true };
  const fromExtension = await pythonExtensionInterpreter(vscode.workspace.workspaceFolders?.[0]?.uri, log);
  return { candidates: [...new Set([...(fromExtension ? [fromExtension] : []), ...defaultCandidates()])], fromSetting: false };
}

export async function resolveInterpreter(log: vscode.LogOutputChannel): Promise<PythonInfo> {
  const { candidates, fromSetting } = await interpreterCandidates(log);
  log.info(`looking for PyTorch in: ${candidates.join(', ')}`);
  try {
    return await findPython(candidates);
  } catch (e) {
    if (e instanceof UserError && fromSetting) {
      throw new UserError(`vtrans.pythonPath (${candidates[0]}) cannot run the backend: ${e.message.replace(/^No Python with PyTorch ≥ 1\.13 found \(|\)\. Install.*$/g, '')}.`, `Install PyTorch there (${installCommand()}) or clear the setting.`);
    }
    throw e;
  }
}

/** The single "no PyTorch" notification: the reason, the install command, and a way to the setting. */
export async function showMissingTorch(error: Error): Promise<void> {
  const open = 'Open Settings';
  const copy = 'Copy Install Command';
  const choice = await vscode.window.showErrorMessage(`VTrans cannot start its Python backend. ${error.message}`, open, copy);
  if (choice === open) await vscode.commands.executeCommand('workbench.action.openSettings', 'vtrans.pythonPath');
  if (choice === copy) await vscode.env.clipboard.writeText(installCommand());
}
