/** Small DOM helpers. Text goes in through textContent only; no inline `style` attributes (the CSP forbids them). */

type Attrs = Record<string, string | number | boolean | null | undefined>;
type Child = Node | string | null | undefined | false;

function setAttrs(el: Element, attrs: Attrs | undefined): void {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c == null || c === false) continue;
    el.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
}

/** An HTML element: h('button', { class: 'x', type: 'button' }, 'Label'). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs, ...children: Child[]): HTMLElementTagNameMap[K];
export function h(tag: string, attrs?: Attrs, ...children: Child[]): HTMLElement;
export function h(tag: string, attrs?: Attrs, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export const SVG_NS = 'http://www.w3.org/2000/svg';

export function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs?: Attrs, ...children: Child[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** A theme colour from a `--vscode-*` variable, with a fallback for pages outside VS Code. */
export function themeColor(name: string, fallback: string): string {
  const v = getComputedStyle(document.body).getPropertyValue(name).trim();
  return v || fallback;
}

/** Runs `fn` when the VS Code theme (body class) or the OS colour scheme changes. */
export function onThemeChange(fn: () => void): () => void {
  const mo = new MutationObserver(() => fn());
  mo.observe(document.body, { attributes: true, attributeFilter: ['class', 'data-vscode-theme-kind'] });
  const mq = window.matchMedia('(prefers-color-scheme: dark)');
  mq.addEventListener('change', fn);
  return () => {
    mo.disconnect();
    mq.removeEventListener('change', fn);
  };
}

/** Places a floating element next to an anchor rectangle, inside the viewport (positions via CSSOM, allowed by the CSP). */
export function placeNear(el: HTMLElement, anchor: DOMRect): void {
  el.style.left = '0px';
  el.style.top = '0px';
  const r = el.getBoundingClientRect();
  const pad = 8;
  let x = anchor.right + pad;
  if (x + r.width > window.innerWidth - pad) x = Math.max(pad, anchor.left - r.width - pad);
  let y = anchor.top + anchor.height / 2 - r.height / 2;
  y = Math.min(Math.max(pad, y), Math.max(pad, window.innerHeight - r.height - pad));
  el.style.left = `${Math.round(x + window.scrollX)}px`;
  el.style.top = `${Math.round(y + window.scrollY)}px`;
}

/** A shared tooltip: one element, filled with lines of text. */
export class Tooltip {
  readonly el: HTMLDivElement;
  constructor(id: string) {
    this.el = h('div', { class: 'vt-tooltip', role: 'tooltip', id, hidden: true });
    document.body.append(this.el);
  }
  show(lines: (string | [string, string])[], anchor: DOMRect): void {
    this.el.replaceChildren(
      ...lines.map((l, i) =>
        typeof l === 'string'
          ? h('div', { class: i === 0 ? 'vt-tooltip-title' : 'vt-tooltip-line' }, l)
          : h(
              'div',
              { class: 'vt-tooltip-row' },
              h('span', { class: 'vt-tooltip-key' }, l[0]),
              h('span', { class: 'vt-tooltip-value' }, l[1]),
            ),
      ),
    );
    this.el.hidden = false;
    placeNear(this.el, anchor);
  }
  hide(): void {
    this.el.hidden = true;
  }
  dispose(): void {
    this.el.remove();
  }
}
