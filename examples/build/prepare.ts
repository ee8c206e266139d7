// Data + tokenizer step of the demo models.
//
//   node --import tsx examples/build/prepare.ts spam [--out examples/spam-classifier] [--vocab-size 8000] [--max-chars 4000] [--force]
//   node --import tsx examples/build/prepare.ts sotu [--out examples/sotu-lm] [--vocab-size 8192] [--force]
//   node --import tsx examples/build/prepare.ts party [--out examples/sotu-party] [--min-words 60] [--max-words 120] [--force]
//   node --import tsx examples/build/prepare.ts all
//
// Writes <out>/data/ and, for spam and sotu, <out>/tokenizer/ (tokenizer.json, tokenizer_config.json,
// special_tokens_map.json; the party task uses its pretrained model's tokenizer). Cached: when <out>/.build/prepare.json matches the dataset version, the
// build code and the options, and the outputs exist, nothing is done. Progress goes to stderr.
import * as path from 'node:path';
import { silentLog, stderrLog } from './common';
import { prepareParty } from './party';
import { prepareSotu } from './sotu';
import { prepareSpam } from './spam';

const ROOT = path.resolve(__dirname, '..', '..');
export const DEFAULT_OUT = {
  spam: path.join(ROOT, 'examples', 'spam-classifier'),
  sotu: path.join(ROOT, 'examples', 'sotu-lm'),
  party: path.join(ROOT, 'examples', 'sotu-party'),
  sample: path.join(ROOT, 'examples', 'sample'),
};

type Task = keyof typeof DEFAULT_OUT;

const USAGE = `usage: prepare.ts <spam|sotu|party|all> [--out DIR] [--vocab-size N] [--max-chars N] [--min-frequency N] [--min-words N] [--max-words N] [--force] [--quiet]`;

interface Args {
  task: Task | 'all';
  out?: string;
  vocabSize?: number;
  maxChars?: number;
  minFrequency?: number;
  minWords?: number;
  maxWords?: number;
  force: boolean;
  quiet: boolean;
}

function parseArgs(argv: string[]): Args {
  const task = argv[0];
  if (task !== 'spam' && task !== 'sotu' && task !== 'party' && task !== 'all') throw new Error(`unknown task "${task ?? ''}"\n${USAGE}`);
  const args: Args = { task, force: false, quiet: false };
  const int = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n <= 0) throw new Error(`${flag} needs a positive integer, got "${v ?? ''}"\n${USAGE}`);
    return n;
  };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '--out':
        args.out = value();
        if (!args.out) throw new Error(`--out needs a directory\n${USAGE}`);
        break;
      case '--vocab-size':
        args.vocabSize = int(flag, value());
        break;
      case '--max-chars':
        args.maxChars = int(flag, value());
        break;
      case '--min-frequency':
        args.minFrequency = int(flag, value());
        break;
      case '--min-words':
        args.minWords = int(flag, value());
        break;
      case '--max-words':
        args.maxWords = int(flag, value());
        break;
      case '--force':
        args.force = true;
        break;
      case '--quiet':
        args.quiet = true;
        break;
      default:
        throw new Error(`unknown option "${a}"\n${USAGE}`);
    }
  }
  if (args.task === 'all' && args.out) throw new Error(`--out cannot be used with "all"\n${USAGE}`);
  return args;
}

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const log = args.quiet ? silentLog : stderrLog;
  const t0 = Date.now();
  if (args.task === 'spam' || args.task === 'all') {
    const out = path.resolve(args.out ?? DEFAULT_OUT.spam);
    await prepareSpam(out, { vocabSize: args.vocabSize, maxChars: args.maxChars, minFrequency: args.minFrequency, force: args.force, log });
  }
  if (args.task === 'sotu' || args.task === 'all') {
    const out = path.resolve(args.out ?? DEFAULT_OUT.sotu);
    await prepareSotu(out, { vocabSize: args.vocabSize, minFrequency: args.minFrequency, force: args.force, log });
  }
  if (args.task === 'party' || args.task === 'all') {
    const out = path.resolve(args.out ?? DEFAULT_OUT.party);
    await prepareParty(out, { minWords: args.minWords, maxWords: args.maxWords, force: args.force, log });
  }
  log(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`prepare: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
