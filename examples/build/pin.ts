// Pinned demo builds: a model directory one machine trained, committed in examples/<demo>/teacher/ with the key it
// was built under, and copied by every later build with that key instead of training again. Training is not
// bit-reproducible across CPUs (their vector kernels round differently), so without a pin two machines build two
// teachers from one recipe, and benchmark entries compressing each would not pair.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The folder of a committed build beside the demo's model/, and the file in it that says what it was built from. */
export const PIN_DIR = 'teacher';
export const PIN_FILE = 'pin.json';

/** What a pinned build must share with a build: its recipe, pretrained checkpoint, seed, and the bytes of the data
 * and tokenizer it trained on. Not the build code: a change there that leaves these alone trains the same model. */
export interface PinFacts {
  recipe: unknown;
  pretrained?: Record<string, string>;
  seed: number;
  data: Record<string, string>;
  tokenizer?: Record<string, string>;
}

export function pinKey(facts: PinFacts): string {
  return JSON.stringify(facts);
}

/** The SHA-256 (16 hex digits) of each named file of a folder (all of its files when none are named). */
export function filesDigest(dir: string, names: string[] = fs.readdirSync(dir).sort()): Record<string, string> {
  return Object.fromEntries(
    names.map((n) => [
      n,
      createHash('sha256')
        .update(fs.readFileSync(path.join(dir, n)))
        .digest('hex')
        .slice(0, 16),
    ]),
  );
}

export function pinMatches(pinDir: string, key: string): boolean {
  const file = path.join(pinDir, PIN_FILE);
  return fs.existsSync(file) && (JSON.parse(fs.readFileSync(file, 'utf8')) as { key: string }).key === key;
}

/** The pinned model directory, copied over `modelDir` (its pin file left behind). */
export function copyPinned(pinDir: string, modelDir: string): void {
  fs.rmSync(modelDir, { recursive: true, force: true });
  fs.mkdirSync(modelDir, { recursive: true });
  for (const f of fs.readdirSync(pinDir)) if (f !== PIN_FILE) fs.copyFileSync(path.join(pinDir, f), path.join(modelDir, f));
}

/** Commits a fresh build as the one every machine uses: its model directory, the key, and where it was trained. */
export function pinBuild(modelDir: string, pinDir: string, key: string): void {
  fs.rmSync(pinDir, { recursive: true, force: true });
  fs.mkdirSync(pinDir, { recursive: true });
  for (const f of fs.readdirSync(modelDir)) fs.copyFileSync(path.join(modelDir, f), path.join(pinDir, f));
  const pin = { key, cpu: os.cpus()[0]?.model ?? 'unknown', at: new Date().toISOString() };
  fs.writeFileSync(path.join(pinDir, PIN_FILE), JSON.stringify(pin, null, 2) + '\n');
}
