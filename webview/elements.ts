/**
 * The @vscode-elements/elements components the panels use (imported one by one to keep the bundle small).
 * They read the `--vscode-*` theme variables, so they match the editor's theme (and the fallbacks that
 * media/webview.css defines for the standalone report.html).
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import '@vscode-elements/elements/dist/vscode-radio/index.js';
import '@vscode-elements/elements/dist/vscode-radio-group/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
