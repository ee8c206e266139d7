// Minimal RFC822 / MIME reader for the SpamAssassin demo: enough to take the mail servers' headers off
// a message and turn its readable parts into plain text. It is not a general mail parser: it decodes
// quoted-printable and base64 text parts, picks the plain part of multipart/alternative, descends into
// multipart/* and message/rfc822, converts HTML to text, and drops attachments.

export interface MessageParts {
  /** Raw header block (everything before the first blank line), unfolded lines. */
  headers: Map<string, string>;
  body: string;
}

/** Normalizes line ends to `\n`. */
function lf(text: string): string {
  return text.replace(/\r\n?/g, '\n');
}

/**
 * Splits a raw RFC822 message at the first blank line (a line that is empty or holds only spaces/tabs).
 * A message without a blank line is all headers and has an empty body.
 */
export function splitHeaders(raw: string): { headerBlock: string; body: string } {
  const text = lf(raw);
  if (text.startsWith('\n')) return { headerBlock: '', body: text.slice(1) };
  const m = /\n[ \t]*\n/.exec(text);
  if (!m) return { headerBlock: text, body: '' };
  return { headerBlock: text.slice(0, m.index), body: text.slice(m.index + m[0].length) };
}

/** The body of a raw RFC822 message with its header block removed (no decoding). */
export function stripHeaders(raw: string): string {
  return splitHeaders(raw).body;
}

/** Parses a header block into lowercased name -> value (first occurrence wins, folded lines joined). */
export function parseHeaderBlock(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  let name: string | null = null;
  let value = '';
  const flush = (): void => {
    if (name !== null && !headers.has(name)) headers.set(name, value.trim());
  };
  for (const line of block.split('\n')) {
    if (/^[ \t]/.test(line) && name !== null) {
      value += ' ' + line.trim();
      continue;
    }
    flush();
    const m = /^([!-9;-~]+):(.*)$/.exec(line);
    if (m) {
      name = m[1].toLowerCase();
      value = m[2];
    } else {
      name = null; // mbox "From " separator or junk: not a header field
      value = '';
    }
  }
  flush();
  return headers;
}

export function parseMessage(raw: string): MessageParts {
  const { headerBlock, body } = splitHeaders(raw);
  return { headers: parseHeaderBlock(headerBlock), body };
}

export interface ContentType {
  type: string; // e.g. "text/plain", lowercased
  params: Map<string, string>; // lowercased names
}

export function parseContentType(value: string | undefined, fallback = 'text/plain'): ContentType {
  const params = new Map<string, string>();
  if (!value) return { type: fallback, params };
  const semi = value.indexOf(';');
  const type = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  const rest = semi < 0 ? '' : value.slice(semi + 1);
  const re = /([!#-'*+.0-9A-Z^-~-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/gi;
  for (const m of rest.matchAll(re)) {
    const key = m[1].toLowerCase();
    if (!params.has(key)) params.set(key, (m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1'));
  }
  return { type: /^[\w.+-]+\/[\w.+-]+$/.test(type) ? type : fallback, params };
}

/** The bytes a JS string stands for in a mail body: code points < 256 as one byte, others as UTF-8. */
function stringBytes(text: string): number[] {
  const out: number[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (cp < 256) out.push(cp);
    else out.push(...Buffer.from(ch, 'utf8'));
  }
  return out;
}

export function decodeQuotedPrintable(text: string): Uint8Array {
  const src = lf(text)
    .replace(/[ \t]+$/gm, '')
    .replace(/=\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(src.slice(i + 1, i + 3))) {
      bytes.push(parseInt(src.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...stringBytes(c));
    }
  }
  return Uint8Array.from(bytes);
}

export function decodeBase64(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64'));
}

/** Decodes bytes in the declared charset; unknown or missing charsets try UTF-8, then windows-1252. */
export function decodeCharset(bytes: Uint8Array, charset: string | undefined): string {
  const label = (charset ?? '').trim().toLowerCase();
  if (label && label !== 'us-ascii' && label !== 'ascii' && label !== 'utf-8' && label !== 'utf8') {
    try {
      return new TextDecoder(label).decode(bytes);
    } catch {
      // unknown label: fall through to the guesses below
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return new TextDecoder('windows-1252').decode(bytes);
  }
}

/** Undoes a part's Content-Transfer-Encoding. 7bit/8bit/binary bodies are returned as they are. */
export function decodeTransfer(body: string, encoding: string | undefined, charset: string | undefined): string {
  const enc = (encoding ?? '').trim().toLowerCase();
  if (enc === 'base64') return decodeCharset(decodeBase64(body), charset);
  if (enc === 'quoted-printable') return decodeCharset(decodeQuotedPrintable(body), charset);
  return body;
}

const NAMED_ENTITIES: Record<string, string> = {
  nbsp: ' ',
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  copy: '©',
  reg: '®',
  trade: '™',
  euro: '€',
  pound: '£',
  yen: '¥',
  cent: '¢',
  sect: '§',
  deg: '°',
  middot: '·',
  bull: '•',
  hellip: '…',
  mdash: '—',
  ndash: '–',
  lsquo: '‘',
  rsquo: '’',
  ldquo: '“',
  rdquo: '”',
  laquo: '«',
  raquo: '»',
  times: '×',
  divide: '÷',
  frac12: '½',
  frac14: '¼',
  frac34: '¾',
  eacute: 'é',
  egrave: 'è',
  aacute: 'á',
  agrave: 'à',
  oacute: 'ó',
  uacute: 'ú',
  iacute: 'í',
  ntilde: 'ñ',
  ccedil: 'ç',
  uuml: 'ü',
  ouml: 'ö',
  auml: 'ä',
  szlig: 'ß',
};

export function decodeEntities(text: string): string {
  return text.replace(/&(#\d{1,7}|#x[0-9a-f]{1,6}|[a-z][a-z0-9]{1,7});?/gi, (whole, ent: string) => {
    if (ent[0] === '#') {
      const cp = ent[1] === 'x' || ent[1] === 'X' ? parseInt(ent.slice(2), 16) : parseInt(ent.slice(1), 10);
      if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return ' ';
      return String.fromCodePoint(cp);
    }
    return NAMED_ENTITIES[ent.toLowerCase()] ?? whole;
  });
}

const BLOCK_TAGS =
  'address|article|blockquote|br|center|dd|div|dl|dt|form|h[1-6]|hr|li|ol|p|pre|section|table|tbody|thead|tfoot|tr|ul|title';

/** Visible text of an HTML document: drops comments, scripts, styles and tags; block tags become line breaks. */
export function htmlToText(html: string): string {
  let t = html;
  // Only closed comments/blocks are removed whole: spam often leaves them open, and then the rest of
  // the document would vanish.
  t = t.replace(/<!--[\s\S]*?-->/g, ' ').replace(/<!--/g, ' ');
  t = t.replace(/<(script|style|title|xml)\b[^>]*>[\s\S]*?<\/\1\s*>/gi, ' ');
  t = t.replace(/<!DOCTYPE[^>]*>/gi, ' ');
  t = t.replace(new RegExp(`<\\/?(?:${BLOCK_TAGS})\\b[^>]*>`, 'gi'), '\n');
  t = t.replace(/<\/?(?:td|th|img|input|option|select|textarea|button)\b[^>]*>/gi, ' ');
  t = t.replace(/<\/?[a-z][^>]*>/gi, '');
  return decodeEntities(t);
}

/** Heuristic for bodies that are HTML without saying so (common in spam). */
export function looksLikeHtml(text: string): boolean {
  if (/<(html|body|table|head)\b/i.test(text)) return true;
  const tags = text.match(/<\/?(?:a|b|br|p|div|font|span|td|tr|img|center|i|u)\b[^>]*>/gi);
  return tags !== null && tags.length >= 3;
}

function splitMultipart(body: string, boundary: string): string[] | null {
  const parts: string[] = [];
  const delim = `--${boundary}`;
  const lines = lf(body).split('\n');
  let current: string[] | null = null;
  let found = false;
  for (const line of lines) {
    const trimmed = line.replace(/[ \t]+$/, '');
    if (trimmed === delim || trimmed === `${delim}--`) {
      found = true;
      if (current !== null) parts.push(current.join('\n'));
      current = trimmed === delim ? [] : null;
      if (trimmed !== delim) break;
      continue;
    }
    if (current !== null) current.push(line);
  }
  if (current !== null && current.length > 0) parts.push(current.join('\n'));
  return found ? parts : null;
}

/** Readable text of a parsed MIME entity; attachments and signatures contribute nothing. */
function entityText(headers: Map<string, string>, body: string, depth: number): string {
  const ct = parseContentType(headers.get('content-type'));
  const cte = headers.get('content-transfer-encoding');
  const charset = ct.params.get('charset');
  if (depth > 8) return '';
  if (ct.type.startsWith('multipart/')) {
    const boundary = ct.params.get('boundary');
    const rawParts = boundary ? splitMultipart(body, boundary) : null;
    if (!rawParts) return plainOrHtml(decodeTransfer(body, cte, charset), false);
    const parts = rawParts.map((p) => {
      const { headers: h, body: b } = parseMessage(p);
      return { type: parseContentType(h.get('content-type')).type, text: entityText(h, b, depth + 1) };
    });
    if (ct.type === 'multipart/alternative') {
      // The plain version, unless it is a stub ("your mail program does not support HTML") next to
      // a much longer rendered alternative.
      const size = (t: string): number => t.replace(/\s+/g, '').length;
      const nonEmpty = parts.filter((p) => size(p.text) > 0);
      const plain = nonEmpty.find((p) => p.type === 'text/plain');
      const longest = nonEmpty.reduce<(typeof parts)[number] | undefined>((a, p) => (a && size(a.text) >= size(p.text) ? a : p), undefined);
      if (plain && longest && size(longest.text) <= 2 * size(plain.text)) return plain.text;
      return longest ? longest.text : '';
    }
    return parts
      .map((p) => p.text)
      .filter((t) => t.trim() !== '')
      .join('\n');
  }
  if (ct.type === 'message/rfc822') {
    const inner = parseMessage(body);
    return entityText(inner.headers, inner.body, depth + 1);
  }
  if (ct.type === 'text/html') return plainOrHtml(decodeTransfer(body, cte, charset), true);
  if (ct.type.startsWith('text/')) return plainOrHtml(decodeTransfer(body, cte, charset), false);
  return ''; // application/*, image/*, audio/*, signatures: not part of the readable message
}

function plainOrHtml(text: string, isHtml: boolean): string {
  return isHtml || looksLikeHtml(text) ? htmlToText(text) : text;
}

/**
 * Header names that mark a line as a mail header when it appears inside a body (forwarded messages,
 * bounces, digests). Such lines, and their folded continuation lines, are removed from the text.
 */
export const HEADER_LINE =
  /^(?:received|return-path|delivered-to|message-id|in-reply-to|references|x-[\w-]+|mime-version|content-[\w-]+|from|to|cc|bcc|reply-to|sender|subject|date|sent|errors-to|precedence|list-[\w-]+|importance|organization|user-agent|thread-[\w-]+|status|envelope-to|dkim-signature|domainkey-signature|authentication-results|resent-[\w-]+|mailing-list|priority):/i;

const MBOX_FROM = /^From \S+\s+(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\b/;

/** Base64/uuencode payload lines left over from attachments that were not declared as such. */
const ENCODED_LINE = /^[A-Za-z0-9+/=]{60,}$|^M[!-`]{59,61}$/;

export interface CleanOptions {
  maxChars: number;
}

/**
 * Final cleanup of extracted text: removes header-like lines (and folds), mbox separators, PGP
 * signature blocks, encoded payload lines and control characters, collapses whitespace inside lines,
 * drops empty lines, and truncates to `maxChars` at a word boundary where possible.
 */
export function cleanText(text: string, opts: CleanOptions): string {
  const out: string[] = [];
  let inHeader = false;
  let inPgp = false;
  for (const rawLine of lf(text).split('\n')) {
    if (inHeader && /^[ \t]+\S/.test(rawLine)) continue; // folded continuation of a removed header line
    inHeader = false;
    const line = rawLine
      .replace(/[\p{Cc}\ufffd\u200b-\u200f\u2028\u2029\ufeff]/gu, ' ')
      .replace(/[ \t\u00a0\u3000]+/g, ' ')
      .trim();
    if (inPgp) {
      if (/^-----END PGP (SIGNATURE|PUBLIC KEY BLOCK)-----/.test(line)) inPgp = false;
      continue;
    }
    if (/^-----BEGIN PGP (SIGNATURE|PUBLIC KEY BLOCK)-----/.test(line)) {
      inPgp = true;
      continue;
    }
    if (HEADER_LINE.test(line)) {
      inHeader = true;
      continue;
    }
    if (line === '' || MBOX_FROM.test(line) || ENCODED_LINE.test(line)) continue;
    out.push(line);
  }
  let joined = out.join('\n');
  if (joined.length > opts.maxChars) {
    const cut = joined.slice(0, opts.maxChars);
    const ws = Math.max(cut.lastIndexOf(' '), cut.lastIndexOf('\n'));
    joined = (ws > opts.maxChars * 0.8 ? cut.slice(0, ws) : cut).trimEnd();
    // never end inside a UTF-16 surrogate pair
    if (/[\ud800-\udbff]$/.test(joined)) joined = joined.slice(0, -1);
  }
  return joined;
}

/** The readable text of a raw RFC822 message: headers removed, parts decoded, HTML made text, cleaned. */
export function messageText(raw: string, opts: CleanOptions = { maxChars: 4000 }): string {
  const { headers, body } = parseMessage(raw);
  return cleanText(entityText(headers, body, 0), opts);
}
