import type * as vscode from 'vscode';

/**
 * The item the user accepts next in a shown quick pick, or undefined once it is hidden. Its listeners are removed
 * when it settles, so a picker that stays open (the confirm step's loop) can be awaited again.
 */
export function nextChoice<T extends vscode.QuickPickItem>(qp: vscode.QuickPick<T>): Promise<T | undefined> {
  return new Promise((resolve) => {
    const settle = (item: T | undefined) => {
      accept.dispose();
      hide.dispose();
      resolve(item);
    };
    const accept = qp.onDidAccept(() => settle(qp.selectedItems[0]));
    const hide = qp.onDidHide(() => settle(undefined));
  });
}
