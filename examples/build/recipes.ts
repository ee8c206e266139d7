// What each demo model is: its architecture or pretrained checkpoint, task, length and training options. Kept
// apart from the build code (model.ts) because a recipe is part of its own model's build stamp: changing one demo's
// recipe rebuilds that demo only, while a change to the build code rebuilds them all.
import { PARTY_LABELS } from './party';

export type DemoName = 'spam' | 'sotu' | 'party';
export const DEMOS: readonly DemoName[] = ['spam', 'sotu', 'party'];
/**
 * The maximum sequence length each demo model is trained (and should be compressed and evaluated) at. 128 is
 * also compress's default; the party passages need `--max-len 192`.
 */
export const DEMO_MAX_LEN: Record<DemoName, number> = { spam: 128, sotu: 128, party: 192 };
/** The demo models, and the sample project the extension ships (examples/build/sample.ts). */
export type BuildName = DemoName | 'sample';

export interface Recipe {
  /** config.json of a model trained from random weights; absent when fine-tuning a pretrained one. */
  config?: Record<string, unknown>;
  /** Fine-tune this pretrained checkpoint with a new classification head for these labels. */
  pretrained?: { name: 'all-MiniLM-L6-v2'; labels: string[] };
  task: 'classification' | 'lm';
  maxLen: number;
  train: { epochs?: number; steps?: number; lr: number; batchSize: number; evals?: number };
  files: { train: string; dev: string; test: string };
}

/** config.json of a BERT ham/spam classifier trained from random weights (the spam demo and the sample project). */
function bertSpamClassifier(
  vocab: number,
  size: { hidden: number; layers: number; ffn: number; positions: number },
): Record<string, unknown> {
  return {
    architectures: ['BertForSequenceClassification'],
    model_type: 'bert',
    vocab_size: vocab,
    hidden_size: size.hidden,
    num_hidden_layers: size.layers,
    num_attention_heads: 4,
    intermediate_size: size.ffn,
    hidden_act: 'gelu',
    hidden_dropout_prob: 0.1,
    attention_probs_dropout_prob: 0.1,
    max_position_embeddings: size.positions,
    type_vocab_size: 2,
    layer_norm_eps: 1e-12,
    pad_token_id: 0,
    initializer_range: 0.02,
    id2label: { '0': 'ham', '1': 'spam' },
    label2id: { ham: 0, spam: 1 },
    problem_type: 'single_label_classification',
  };
}

export function recipe(name: BuildName, vocab: number): Recipe {
  if (name === 'sample') {
    // The sample project shipped in the extension: small enough to ship and to compress in seconds.
    return {
      task: 'classification',
      maxLen: 128,
      config: bertSpamClassifier(vocab, { hidden: 64, layers: 2, ffn: 256, positions: 160 }),
      train: { epochs: 6, lr: 2e-3, batchSize: 32 },
      files: { train: 'train.jsonl', dev: 'dev.jsonl', test: 'test.jsonl' },
    };
  }
  if (name === 'party') {
    // Sized for two CPU cores: 600 steps of 32 passages (two epochs of the 9,622 training passages) at about
    // 2.5 s a step, dev evaluated three times. Passages of 60-120 words are 125 WordPiece tokens on average;
    // 192 keeps 99 % of them whole.
    return {
      task: 'classification',
      maxLen: DEMO_MAX_LEN.party,
      pretrained: { name: 'all-MiniLM-L6-v2', labels: [...PARTY_LABELS] },
      train: { steps: 600, lr: 1e-4, batchSize: 32, evals: 3 },
      files: { train: 'train.jsonl', dev: 'dev.jsonl', test: 'test.jsonl' },
    };
  }
  if (name === 'spam') {
    return {
      task: 'classification',
      maxLen: DEMO_MAX_LEN.spam,
      config: bertSpamClassifier(vocab, { hidden: 128, layers: 4, ffn: 512, positions: 512 }),
      train: { epochs: 2, lr: 1e-3, batchSize: 32 },
      files: { train: 'train.jsonl', dev: 'dev.jsonl', test: 'test.jsonl' },
    };
  }
  return {
    task: 'lm',
    maxLen: DEMO_MAX_LEN.sotu,
    config: {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      vocab_size: vocab,
      n_embd: 128,
      n_layer: 4,
      n_head: 4,
      n_inner: 512,
      n_positions: 512,
      n_ctx: 512,
      activation_function: 'gelu_new',
      resid_pdrop: 0.1,
      embd_pdrop: 0.1,
      attn_pdrop: 0.1,
      layer_norm_epsilon: 1e-5,
      initializer_range: 0.02,
      bos_token_id: vocab - 1,
      eos_token_id: vocab - 1,
      tie_word_embeddings: true,
    },
    train: { epochs: 2, lr: 2e-3, batchSize: 32, evals: 4 },
    files: { train: 'train.txt', dev: 'dev.txt', test: 'test.txt' },
  };
}
