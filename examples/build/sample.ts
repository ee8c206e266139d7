// The sample project shipped inside the extension (the walkthrough opens it): a slice of the SpamAssassin demo
// data (prepareSpam's cleaned, de-duplicated, split records), a small WordPiece tokenizer trained on the slice,
// and — through model.ts — a tiny BERT trained from scratch on it. Small enough to ship in the .vsix and to
// compress in well under a minute on two CPU cores.
//
//   node --import tsx examples/build/model.ts sample      data + tokenizer + model into examples/sample/
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isFresh, stderrLog, timed, writeStamp, type Logger } from './common';
import { DEFAULT_OUT } from './prepare';
import { hashUnit, SPLITS, type SplitName } from './split';
import { prepareSpam, readJsonl, type SpamRecord } from './spam';
import { TOKENIZER_FILES, writeFileAtomic, writeTokenizerFiles } from './tokenizerJson';
import { trainWordPiece } from './wordpiece';

/** Examples per split of the slice. */
export const SAMPLE_SIZES: Record<SplitName, number> = { train: 1200, dev: 300, test: 300 };
/** Characters per message in the slice (cut at a word boundary). */
export const SAMPLE_MAX_CHARS = 600;
export const SAMPLE_VOCAB = 3000;
const SALT = 'vtrans-sample-v1:';

/** The first `n` records by a hash of their id: a fixed, order-independent slice with the split's label mix. */
export function sliceRecords(records: readonly SpamRecord[], n: number): SpamRecord[] {
  return [...records]
    .map((r) => ({ r, u: hashUnit(r.id, SALT) }))
    .sort((a, b) => a.u - b.u || (a.r.id < b.r.id ? -1 : 1))
    .slice(0, n)
    .map(({ r }) => r)
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** A message cut to `max` characters at the last space before it. */
export function cutText(text: string, max = SAMPLE_MAX_CHARS): string {
  if (text.length <= max) return text;
  const cut = text.lastIndexOf(' ', max);
  return text.slice(0, cut > max / 2 ? cut : max).trimEnd();
}

export interface PrepareSampleResult {
  cached: boolean;
  dataDir: string;
  tokenizerDir: string;
}

const README = `# VTrans sample project

A tiny BERT spam classifier and a slice of its data, to try VTrans in a minute:

- \`model/\` — \`config.json\` (model_type bert, 2 layers, hidden size 64), \`model.safetensors\`, \`tokenizer.json\`.
  Trained from scratch on \`data/train.jsonl\`; \`model/training.json\` has its dev and test accuracy.
- \`data/train.jsonl\`, \`data/dev.jsonl\`, \`data/test.jsonl\` — one \`{"text": ..., "label": "spam" | "ham"}\` per line:
  messages of the public SpamAssassin corpus (mail headers removed), ${SAMPLE_SIZES.train} / ${SAMPLE_SIZES.dev} / ${SAMPLE_SIZES.test} of them,
  cut to ${SAMPLE_MAX_CHARS} characters.

Run **VTrans: Compress Model**, pick \`model\`, then \`data/train.jsonl\` and \`data/dev.jsonl\`. Your own project
looks the same: a folder with \`config.json\`, the weights and \`tokenizer.json\`, and data files with a text and a
label column (\`.jsonl\`, \`.csv\` or \`.tsv\`; \`.txt\` for language modelling).
`;

/** Writes <outDir>/data/{train,dev,test}.jsonl, <outDir>/tokenizer/ and README.md (cached by a stamp). */
export async function prepareSample(outDir: string, opts: { force?: boolean; log?: Logger } = {}): Promise<PrepareSampleResult> {
  const log = opts.log ?? stderrLog;
  const spam = await prepareSpam(DEFAULT_OUT.spam, { log });
  const dataDir = path.join(outDir, 'data');
  const tokenizerDir = path.join(outDir, 'tokenizer');
  const stampFile = path.join(outDir, '.build', 'prepare.json');
  const source = fs.readFileSync(path.join(spam.dataDir, 'manifest.json'), 'utf8');
  const stamp = {
    task: 'sample',
    spam: source,
    sizes: { ...SAMPLE_SIZES },
    maxChars: SAMPLE_MAX_CHARS,
    vocab: SAMPLE_VOCAB,
    salt: SALT,
    readme: README,
  };
  const outputs = [
    ...SPLITS.map((s) => path.join(dataDir, `${s}.jsonl`)),
    ...TOKENIZER_FILES.map((f) => path.join(tokenizerDir, f)),
    path.join(outDir, 'README.md'),
  ];
  if (!opts.force && isFresh(stampFile, stamp, outputs)) {
    log(`sample: ${path.relative(process.cwd(), outDir) || '.'} is up to date`);
    return { cached: true, dataDir, tokenizerDir };
  }
  const splits = {} as Record<SplitName, SpamRecord[]>;
  for (const s of SPLITS) {
    splits[s] = sliceRecords(readJsonl(path.join(spam.dataDir, `${s}.jsonl`)), SAMPLE_SIZES[s]).map((r) => ({
      ...r,
      text: cutText(r.text),
    }));
    const text = splits[s].map((r) => JSON.stringify({ text: r.text, label: r.label })).join('\n') + '\n';
    writeFileAtomic(path.join(dataDir, `${s}.jsonl`), text);
    log(`sample: ${s} ${splits[s].length} (${splits[s].filter((r) => r.label === 'spam').length} spam)`);
  }
  const wp = timed(log, 'sample: trained WordPiece on the train slice', () =>
    trainWordPiece(
      splits.train.map((r) => r.text),
      { vocabSize: SAMPLE_VOCAB, minFrequency: 2, limitAlphabet: 300, log },
    ),
  );
  writeTokenizerFiles(tokenizerDir, wp);
  writeFileAtomic(path.join(outDir, 'README.md'), README);
  writeStamp(stampFile, stamp);
  return { cached: false, dataDir, tokenizerDir };
}
