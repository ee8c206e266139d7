// Shared helpers of the demo build scripts: package versions, build stamps (cache keys), and stderr logs.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { writeFileAtomic, type JsonValue } from './tokenizerJson';

export const nodeRequire = createRequire(__filename);

/** Installed version of a package (found from its entry point, so packages with `exports` work too). */
export function packageVersion(name: string): string {
  let dir = path.dirname(nodeRequire.resolve(name));
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === name) return pkg.version ?? 'unknown';
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find the package.json of ${name}`);
    dir = parent;
  }
}

/** Hash of this folder's TypeScript sources: a change to the build code invalidates the caches. */
export function buildSourcesHash(): string {
  const dir = __dirname;
  const h = createHash('sha256');
  for (const f of fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.ts'))
    .sort()) {
    h.update(f)
      .update('\0')
      .update(fs.readFileSync(path.join(dir, f)))
      .update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

export interface Stamp {
  [key: string]: JsonValue;
}

/** True when `stampFile` holds exactly `stamp` and every output exists. */
export function isFresh(stampFile: string, stamp: Stamp, outputs: string[]): boolean {
  if (!outputs.every((f) => fs.existsSync(f))) return false;
  try {
    return fs.readFileSync(stampFile, 'utf8') === stampText(stamp);
  } catch {
    return false;
  }
}

export function writeStamp(stampFile: string, stamp: Stamp): void {
  writeFileAtomic(stampFile, stampText(stamp));
}

function stampText(stamp: Stamp): string {
  return JSON.stringify(stamp, null, 2) + '\n';
}

export type Logger = (line: string) => void;

export const stderrLog: Logger = (line) => process.stderr.write(`${line}\n`);

export const silentLog: Logger = () => {};

/** Runs `fn`, logging how long it took. */
export function timed<T>(log: Logger, label: string, fn: () => T): T {
  const t0 = Date.now();
  const result = fn();
  log(`${label} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  return result;
}
