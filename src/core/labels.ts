/**
 * How the extension, the CLI, the views and report.html name methods and budget kinds: one place for the words,
 * keyed by the backend's enums (src/core/contracts.ts) so that a new value cannot go unnamed. Browser-safe.
 */
import type { BaselineMethod, BudgetKind, Method, OutputShape } from './contracts';

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
  'torch-pruning': 'Torch-Pruning',
  kwon: 'Kwon et al.',
};

/** The output shapes of model/ (docs/model-format.md), and what each means for loading it. */
export const SHAPE_LABEL: Record<OutputShape, string> = { heterogeneous: 'Heterogeneous', uniform: 'Uniform' };
export const SHAPE_DETAIL: Record<OutputShape, string> = {
  heterogeneous: "per-layer sizes, VTrans's full freedom; transformers loads it with trust_remote_code=True",
  uniform: 'every layer the same size, the standard config; stock transformers and other tools load it',
};
