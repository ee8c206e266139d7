/** Workspace trust: in an untrusted workspace nothing is spawned; commands say why and offer to manage trust. */
import * as vscode from 'vscode';

export async function requireTrust(action: string): Promise<boolean> {
  if (vscode.workspace.isTrusted) return true;
  const manage = 'Manage Workspace Trust';
  void vscode.window
    .showWarningMessage(
      `VTrans needs a trusted workspace to ${action}: it runs a Python interpreter with code from your environment. Finished runs can still be browsed.`,
      manage,
    )
    .then((choice) => (choice === manage ? vscode.commands.executeCommand('workbench.trust.manage') : undefined));
  return false;
}
