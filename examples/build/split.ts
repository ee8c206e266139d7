import { createHash } from 'node:crypto';

export type SplitName = 'train' | 'dev' | 'test';
export const SPLITS: readonly SplitName[] = ['train', 'dev', 'test'];

export interface SplitFractions {
  /** Fraction of items that go to train (default 0.8). */
  train: number;
  /** Fraction of items that go to dev (default 0.1); the rest is test. */
  dev: number;
}

export const DEFAULT_FRACTIONS: SplitFractions = { train: 0.8, dev: 0.1 };

/** A number in [0, 1) from the SHA-256 of `salt + key`: stable across runs, machines and input order. */
export function hashUnit(key: string, salt = ''): number {
  const h = createHash('sha256').update(salt).update(key).digest();
  return h.readUInt32BE(0) / 0x100000000;
}

/** The split of one item, decided only by its id (and the salt), so it never depends on the others. */
export function splitOf(id: string, fractions: SplitFractions = DEFAULT_FRACTIONS, salt = ''): SplitName {
  if (!(fractions.train > 0 && fractions.dev >= 0 && fractions.train + fractions.dev <= 1)) {
    throw new Error(`invalid split fractions train=${fractions.train} dev=${fractions.dev}: need train > 0, dev >= 0, train + dev <= 1`);
  }
  const u = hashUnit(id, salt);
  if (u < fractions.train) return 'train';
  if (u < fractions.train + fractions.dev) return 'dev';
  return 'test';
}
