/**
 * Which build of a task's teacher each benchmark entry compressed, and which build the report shows.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PIN_DIR, PIN_FILE } from '../examples/build/pin';
import type { Entry } from './run';

/** The first 12 hex digits of the SHA-256 of a model's weights file: which build of a teacher this is. */
export function weightsDigest(modelDir: string): string {
  return createHash('sha256')
    .update(fs.readFileSync(path.join(modelDir, 'model.safetensors')))
    .digest('hex')
    .slice(0, 12);
}

/** The digest of the build committed beside a demo's model directory (examples/build/model.ts, `--pin`), if any. */
export function pinnedDigest(modelDir: string): string | undefined {
  const pinDir = path.join(path.dirname(modelDir), PIN_DIR);
  return fs.existsSync(path.join(pinDir, PIN_FILE)) ? weightsDigest(pinDir) : undefined;
}

/**
 * The teacher build an entry compressed. The same recipe does not give the same weights everywhere: training from
 * random weights is not bit-reproducible across CPUs (their vector kernels round differently), and a run started on
 * another machine builds its own teacher. Students of two builds do not pair, so each entry is tied to its build:
 * by the digest of the teacher's weights where it recorded one, otherwise (older entries) by the teacher's test
 * metric, which it shares with a digest-stamped entry of the same build.
 */
export function buildOf(e: Entry, testOfDigest: ReadonlyMap<string, number>): string | undefined {
  if (e.teacherDigest) return e.teacherDigest;
  if (!e.teacherTest) return undefined;
  for (const [digest, test] of testOfDigest) if (test === e.teacherTest.value) return digest;
  return `test ${e.teacherTest.value}`;
}

/** Each digest's teacher test metric, as the entries stamped with it measured it. */
export function testsOfDigests(entries: readonly Entry[]): Map<string, number> {
  const tests = new Map<string, number>();
  for (const e of entries) if (e.teacherDigest && e.teacherTest) tests.set(e.teacherDigest, e.teacherTest.value);
  return tests;
}

export interface TaskBuilds {
  /** The build the task's tables show: the one most finished entries compressed (a build just committed beside
   * the demo takes over once its entries outnumber an earlier one's). */
  shown: string | undefined;
  /** Its entries (and those that name no build: runs that failed before measuring the teacher), one per
   * method × budget × seed, the latest where a build holds several. */
  entries: Entry[];
  /** The entries of every other build, with the teacher's test metric of each build. */
  others: { build: string; teacherTest: number; entries: Entry[] }[];
}

/** A task's entries split by the teacher build they compressed (buildOf). */
export function splitByBuild(entries: readonly Entry[]): TaskBuilds {
  const tests = testsOfDigests(entries);
  const byBuild = new Map<string | undefined, Entry[]>();
  for (const e of entries) {
    const build = buildOf(e, tests);
    byBuild.set(build, [...(byBuild.get(build) ?? []), e]);
  }
  const done = (b: string | undefined) => (byBuild.get(b) ?? []).filter((e) => e.status === 'done').length;
  const builds = [...byBuild.keys()].filter((b): b is string => b !== undefined);
  const shown = builds.reduce<string | undefined>((best, b) => (best === undefined || done(b) > done(best) ? b : best), undefined);
  const latest = new Map<string, Entry>();
  for (const e of [...(byBuild.get(shown) ?? []), ...(byBuild.get(undefined) ?? [])]) latest.set(`${e.method}@${e.keep}@${e.seed ?? 0}`, e);
  return {
    shown,
    entries: [...latest.values()],
    others: builds
      .filter((b) => b !== shown)
      .map((b) => ({ build: b, teacherTest: byBuild.get(b)!.find((e) => e.teacherTest)!.teacherTest!.value, entries: byBuild.get(b)! })),
  };
}
