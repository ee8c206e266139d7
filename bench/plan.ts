/**
 * What the benchmark runs: methods, budgets, tasks and seeds, the settings each entry runs with, and whether a
 * stored entry still stands for them.
 */
import { createHash } from 'node:crypto';
import { recipe, type DemoName } from '../examples/build/recipes';
import type { CompressParams } from '../src/core/protocol';
import { SWEPT } from './report';
import type { Entry, Results } from './run';

export const METHODS = ['vtrans', 'fast', 'faster', 'cofi', 'torch-pruning', 'kwon', 'taylor', 'magnitude', 'random'] as const;
export type BenchMethod = (typeof METHODS)[number];
export const BUDGETS = [0.5, 0.3, 0.1, 0.05];
export const TASKS: DemoName[] = ['spam', 'sotu', 'party'];
/** Every method × budget runs once per seed (`--seeds` picks others). */
export const SEEDS = [0, 1, 2];
/** Methods that run on some tasks only: Torch-Pruning's Hugging Face path is for BERT-family classifiers. */
export const RUNS_ON: Partial<Record<BenchMethod, DemoName[]>> = { 'torch-pruning': ['spam', 'party'] };

/**
 * Phase lengths: VTrans, Fast- and Faster-VTrans run their default recipes (the backend's, per method); the peers
 * share one step budget, the same for every task.
 */
const PEER_TRAINING = { pruneEpochs: 0, minPruneSteps: 150, finetuneEpochs: 0, minFinetuneSteps: 75 };
const SCORED_PEER = { finetuneEpochs: 0, minFinetuneSteps: 75 };
export const METHOD_SETTINGS: Record<BenchMethod, Partial<CompressParams>> = {
  vtrans: {},
  fast: {},
  faster: {},
  // CoFi's own target warm-up: linear, over about a fifth of pruning (its small-data script: 20 of 96 epochs).
  cofi: { ...PEER_TRAINING, ramp: 'linear', warmup: 0.2 },
  'torch-pruning': SCORED_PEER,
  kwon: {}, // retraining-free: its recipe has no training to set
  taylor: SCORED_PEER,
  magnitude: SCORED_PEER,
  random: SCORED_PEER,
};
export const TASK_SETTINGS: Record<DemoName, Partial<CompressParams>> = {
  spam: { batchSize: 32 },
  // 400 blocks of 128 tokens (51K tokens) of dev and test each, so that an LM run is not mostly evaluation.
  sotu: { batchSize: 16, evalExamples: 400 },
  // Every dev passage in each evaluation (2,481), so that sweep points and separate runs score the same examples.
  party: { batchSize: 32, evalLimit: 3000 },
};
export const COMMON: Partial<CompressParams> = { sweep: [], probeExamples: 0, seed: 0 };
/**
 * A method's code, where it changed what a run computes under the same settings: entries from an older revision
 * are stale. cofi 2: its own distillation (layer distillation with dynamic matching) instead of VTrans's. faster 2:
 * every cut takes the trained scales or scale 1, the better on dev (selection.ScaleChoice). faster 3: the other
 * output shape's cut follows the budget's choice, and the chosen model's dev metric is not evaluated again.
 */
const REVISIONS: Partial<Record<BenchMethod, number>> = { cofi: 2, faster: 3 };
export const revisionOf = (method: BenchMethod): number => REVISIONS[method] ?? 1;

/**
 * What identifies the teacher a task's entries compress: its build recipe (architecture, data files, training
 * schedule). An entry that compressed another teacher is stale: its figures and the teacher's no longer pair.
 */
export const teacherOf = (task: DemoName): string =>
  createHash('sha256')
    .update(JSON.stringify(recipe(task, 0)))
    .digest('hex')
    .slice(0, 12);

/** The settings an entry runs with: what decides whether a stored entry still stands. */
export function settingsFor(task: DemoName, method: BenchMethod, keep: number, seed = 0): Partial<CompressParams> {
  const sweep = SWEPT.has(method) && keep === Math.max(...BUDGETS) ? { sweep: BUDGETS } : {};
  return { ...COMMON, ...TASK_SETTINGS[task], ...METHOD_SETTINGS[method], ...sweep, seed };
}

const sameSettings = (a: Partial<CompressParams> | undefined, b: Partial<CompressParams>): boolean =>
  JSON.stringify(a, Object.keys(a ?? {}).sort()) === JSON.stringify(b, Object.keys(b).sort());

export function currentSettings(): Results['settings'] {
  return { budgets: BUDGETS, kind: 'encoder-params', methods: METHOD_SETTINGS, tasks: TASK_SETTINGS, common: COMMON };
}

/**
 * Whether a stored entry stands: run on the current teacher, with the current settings and revision of its method's code, and for a VTrans
 * variant with its recorded steps (its schedule is the backend's default recipe, which entries from before `steps`
 * was kept cannot show to be the current one).
 */
export function isCurrent(e: Entry): boolean {
  return (
    sameSettings(e.settings, settingsFor(e.task, e.method, e.keep, e.seed ?? 0)) &&
    (e.revision ?? 1) === revisionOf(e.method) &&
    e.teacher === teacherOf(e.task) &&
    (!SWEPT.has(e.method) || !!e.steps)
  );
}
