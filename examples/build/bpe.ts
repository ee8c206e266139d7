// Byte-pair-encoding merge learner over a word-count table, shared by the WordPiece and the byte-level
// BPE builders. Pair counts are kept incrementally: a merge only revisits the words that contain the
// merged pair (an index from pair to words), and a max-heap with lazy invalidation picks the next pair.
// Ties are broken by a fixed order (the pair's two symbol strings, compared by UTF-16 code units), so
// the result depends only on the word counts, never on input order.

export interface WordTable {
  /** Initial symbol sequence of each distinct word. */
  words: string[][];
  /** How often each word occurs. */
  counts: number[];
}

export interface Merge {
  left: string;
  right: string;
  merged: string;
  /** Weighted count of the pair when it was merged. */
  count: number;
}

export interface MergeOptions {
  /** Pairs seen fewer times than this are never merged (default 2). */
  minPairCount?: number;
  /** How two symbols combine (default: concatenation). */
  join?: (left: string, right: string) => string;
}

/** Max number of distinct symbols (pair keys are `left * SHIFT + right`, well inside 2^53). */
const SHIFT = 1 << 22;

interface HeapEntry {
  key: number;
  count: number;
}

class PairHeap {
  private readonly items: HeapEntry[] = [];
  constructor(private readonly before: (a: HeapEntry, b: HeapEntry) => boolean) {}
  get size(): number {
    return this.items.length;
  }
  push(e: HeapEntry): void {
    const a = this.items;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }
  pop(): HeapEntry | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop() as HeapEntry;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.before(a[l], a[m])) m = l;
        if (r < a.length && this.before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

/**
 * Learns merges one at a time; the caller stops iterating when its vocabulary is full. Each yielded
 * merge has been applied to the table before the next one is chosen.
 */
export function* learnMerges(table: WordTable, opts: MergeOptions = {}): Generator<Merge> {
  const minPairCount = opts.minPairCount ?? 2;
  const join = opts.join ?? ((l: string, r: string) => l + r);
  const symbols: string[] = [];
  const symbolIds = new Map<string, number>();
  const intern = (s: string): number => {
    let id = symbolIds.get(s);
    if (id === undefined) {
      id = symbols.length;
      if (id >= SHIFT) throw new Error(`too many distinct symbols (> ${SHIFT}) for the BPE learner`);
      symbols.push(s);
      symbolIds.set(s, id);
    }
    return id;
  };
  const words: number[][] = table.words.map((w) => w.map(intern));
  const counts = table.counts;
  const pairCounts = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();

  const addPairs = (w: number, sign: 1 | -1, touched: Set<number> | null): void => {
    const word = words[w];
    const c = counts[w] * sign;
    for (let i = 0; i + 1 < word.length; i++) {
      const key = word[i] * SHIFT + word[i + 1];
      const updated = (pairCounts.get(key) ?? 0) + c;
      if (updated === 0) {
        // no word holds this pair any more: forget it (keeps the maps from filling with dead pairs)
        pairCounts.delete(key);
        pairWords.delete(key);
      } else {
        pairCounts.set(key, updated);
      }
      if (sign > 0) {
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, (set = new Set()));
        set.add(w);
        touched?.add(key);
      }
    }
  };
  for (let w = 0; w < words.length; w++) if (counts[w] > 0) addPairs(w, 1, null);

  const before = (x: HeapEntry, y: HeapEntry): boolean => {
    if (x.count !== y.count) return x.count > y.count;
    const xl = symbols[Math.floor(x.key / SHIFT)];
    const yl = symbols[Math.floor(y.key / SHIFT)];
    if (xl !== yl) return xl < yl;
    return symbols[x.key % SHIFT] < symbols[y.key % SHIFT];
  };
  const heap = new PairHeap(before);
  for (const [key, count] of pairCounts) if (count >= minPairCount) heap.push({ key, count });

  for (;;) {
    const top = heap.pop();
    if (!top) return;
    const current = pairCounts.get(top.key) ?? 0;
    if (current !== top.count) {
      if (current >= minPairCount) heap.push({ key: top.key, count: current });
      continue;
    }
    if (current < minPairCount) return;
    const left = Math.floor(top.key / SHIFT);
    const right = top.key % SHIFT;
    const merged = join(symbols[left], symbols[right]);
    const mergedId = intern(merged);
    const touched = new Set<number>();
    const where = pairWords.get(top.key) ?? new Set<number>();
    for (const w of [...where].sort((a, b) => a - b)) {
      const word = words[w];
      let has = false;
      for (let i = 0; i + 1 < word.length; i++) {
        if (word[i] === left && word[i + 1] === right) {
          has = true;
          break;
        }
      }
      if (!has) continue;
      addPairs(w, -1, null);
      const next: number[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i + 1 < word.length && word[i] === left && word[i + 1] === right) {
          next.push(mergedId);
          i++;
        } else {
          next.push(word[i]);
        }
      }
      words[w] = next;
      addPairs(w, 1, touched);
    }
    pairWords.delete(top.key);
    pairCounts.delete(top.key);
    // Only pairs that contain the new symbol can have grown; re-queue those with their new counts.
    for (const key of touched) {
      if (Math.floor(key / SHIFT) !== mergedId && key % SHIFT !== mergedId) continue;
      const c = pairCounts.get(key) ?? 0;
      if (c >= minPairCount) heap.push({ key, count: c });
    }
    yield { left: symbols[left], right: symbols[right], merged, count: current };
  }
}

/** Counts items of an iterable into a Map (insertion order = first occurrence). */
export function countInto(map: Map<string, number>, items: Iterable<string>): void {
  for (const it of items) map.set(it, (map.get(it) ?? 0) + 1);
}
