/**
 * The HTML shell of a VS Code webview panel: a strict CSP (scripts only with the page's nonce, styles only
 * from the extension's media/ or with the nonce, images from the extension or data:/blob: for the PNG
 * export, nothing else — no network), the stylesheet, and the bundled script. Free of `vscode` so the
 * browser tests load exactly this page.
 */
import { randomBytes } from 'node:crypto';
import type { PanelKind } from '../../core/webviewProtocol';

export interface WebviewHtmlOptions {
  panel: PanelKind;
  /** `webview.cspSource`. */
  cspSource: string;
  nonce: string;
  /** `webview.asWebviewUri(dist/webview.js)`. */
  scriptUri: string;
  /** `webview.asWebviewUri(media/webview.css)`. */
  styleUri: string;
  title: string;
}

export function makeNonce(): string {
  return randomBytes(18)
    .toString('base64')
    .replace(/[^A-Za-z0-9]/g, '');
}

const attr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `img-src ${cspSource} data: blob:`,
    `style-src ${cspSource} 'nonce-${nonce}'`,
    `font-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
    "connect-src 'none'",
    "form-action 'none'",
    "base-uri 'none'",
  ].join('; ');
}

export function renderWebviewHtml(o: WebviewHtmlOptions): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${attr(contentSecurityPolicy(o.cspSource, o.nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${attr(o.title)}</title>
<link rel="stylesheet" href="${attr(o.styleUri)}" nonce="${o.nonce}">
</head>
<body data-vtrans-panel="${o.panel}">
<main id="vtrans-root"></main>
<script type="module" nonce="${o.nonce}" src="${attr(o.scriptUri)}"></script>
</body>
</html>
`;
}
