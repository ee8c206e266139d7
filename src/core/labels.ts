/**
 * How the extension, the CLI, the views and report.html name methods and budget kinds: one place for the words,
 * keyed by the backend's enums (src/core/contracts.ts) so that a new value cannot go unnamed. Browser-safe.
 */
import type { BaselineMethod, BudgetKind, Method } from './contracts';

/** In sentences: "keep 30 % of the encoder parameters". */
export const BUDGET_KIND_LABEL: Record<BudgetKind, string> = {
  params: 'parameters',
  'encoder-params': 'encoder parameters',
  flops: 'FLOPs per token',
};

/** In tables and axis captions. */
export const BUDGET_KIND_SHORT: Record<BudgetKind, string> = { params: 'params', 'encoder-params': 'encoder params', flops: 'FLOPs' };

export const METHOD_LABEL: Record<Method | BaselineMethod, string> = {
  vtrans: 'VTrans',
  fast: 'Fast-VTrans',
  faster: 'Faster-VTrans',
  cofi: 'CoFi',
  random: 'random',
  magnitude: 'magnitude',
  taylor: 'Taylor',
};
