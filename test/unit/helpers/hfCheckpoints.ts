/**
 * Hugging Face tensor names and shapes for a config, as the published checkpoints lay them out, so tests can
 * write safetensors headers (zero-filled sparse data) for full-size models without downloading them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeSafetensors } from '../../../src/core/safetensors';

export type Tensor = { name: string; shape: number[] };

export function bertTensors(c: {
  vocab: number;
  hidden: number;
  layers: number;
  ffn: number;
  positions: number;
  types: number;
  prefix?: string;
  pooler?: boolean;
}): Tensor[] {
  const p = c.prefix ?? '';
  const H = c.hidden;
  const t: Tensor[] = [
    { name: `${p}embeddings.word_embeddings.weight`, shape: [c.vocab, H] },
    { name: `${p}embeddings.position_embeddings.weight`, shape: [c.positions, H] },
    { name: `${p}embeddings.token_type_embeddings.weight`, shape: [c.types, H] },
    { name: `${p}embeddings.LayerNorm.weight`, shape: [H] },
    { name: `${p}embeddings.LayerNorm.bias`, shape: [H] },
  ];
  for (let i = 0; i < c.layers; i++) {
    const l = `${p}encoder.layer.${i}.`;
    for (const m of ['query', 'key', 'value'])
      t.push({ name: `${l}attention.self.${m}.weight`, shape: [H, H] }, { name: `${l}attention.self.${m}.bias`, shape: [H] });
    t.push(
      { name: `${l}attention.output.dense.weight`, shape: [H, H] },
      { name: `${l}attention.output.dense.bias`, shape: [H] },
      { name: `${l}attention.output.LayerNorm.weight`, shape: [H] },
      { name: `${l}attention.output.LayerNorm.bias`, shape: [H] },
      { name: `${l}intermediate.dense.weight`, shape: [c.ffn, H] },
      { name: `${l}intermediate.dense.bias`, shape: [c.ffn] },
      { name: `${l}output.dense.weight`, shape: [H, c.ffn] },
      { name: `${l}output.dense.bias`, shape: [H] },
      { name: `${l}output.LayerNorm.weight`, shape: [H] },
      { name: `${l}output.LayerNorm.bias`, shape: [H] },
    );
  }
  if (c.pooler !== false) t.push({ name: `${p}pooler.dense.weight`, shape: [H, H] }, { name: `${p}pooler.dense.bias`, shape: [H] });
  return t;
}

export function gpt2Tensors(c: { vocab: number; hidden: number; layers: number; positions: number }): Tensor[] {
  const H = c.hidden;
  const t: Tensor[] = [
    { name: 'wte.weight', shape: [c.vocab, H] },
    { name: 'wpe.weight', shape: [c.positions, H] },
  ];
  for (let i = 0; i < c.layers; i++) {
    const l = `h.${i}.`;
    t.push(
      { name: `${l}ln_1.weight`, shape: [H] },
      { name: `${l}ln_1.bias`, shape: [H] },
      { name: `${l}attn.c_attn.weight`, shape: [H, 3 * H] },
      { name: `${l}attn.c_attn.bias`, shape: [3 * H] },
      { name: `${l}attn.c_proj.weight`, shape: [H, H] },
      { name: `${l}attn.c_proj.bias`, shape: [H] },
      { name: `${l}ln_2.weight`, shape: [H] },
      { name: `${l}ln_2.bias`, shape: [H] },
      { name: `${l}mlp.c_fc.weight`, shape: [H, 4 * H] },
      { name: `${l}mlp.c_fc.bias`, shape: [4 * H] },
      { name: `${l}mlp.c_proj.weight`, shape: [4 * H, H] },
      { name: `${l}mlp.c_proj.bias`, shape: [H] },
    );
  }
  t.push({ name: 'ln_f.weight', shape: [H] }, { name: 'ln_f.bias', shape: [H] });
  return t;
}

export function llamaTensors(c: { vocab: number; hidden: number; layers: number; heads: number; kvHeads: number; ffn: number }): Tensor[] {
  const H = c.hidden;
  const d = H / c.heads;
  const t: Tensor[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocab, H] }];
  for (let i = 0; i < c.layers; i++) {
    const l = `model.layers.${i}.`;
    t.push(
      { name: `${l}input_layernorm.weight`, shape: [H] },
      { name: `${l}self_attn.q_proj.weight`, shape: [c.heads * d, H] },
      { name: `${l}self_attn.k_proj.weight`, shape: [c.kvHeads * d, H] },
      { name: `${l}self_attn.v_proj.weight`, shape: [c.kvHeads * d, H] },
      { name: `${l}self_attn.o_proj.weight`, shape: [H, c.heads * d] },
      { name: `${l}post_attention_layernorm.weight`, shape: [H] },
      { name: `${l}mlp.gate_proj.weight`, shape: [c.ffn, H] },
      { name: `${l}mlp.up_proj.weight`, shape: [c.ffn, H] },
      { name: `${l}mlp.down_proj.weight`, shape: [H, c.ffn] },
    );
  }
  t.push({ name: 'model.norm.weight', shape: [H] }, { name: 'lm_head.weight', shape: [c.vocab, H] });
  return t;
}

/** Writes config.json and the weights, as one file or split into `shards` files with an index. */
export function writeCheckpoint(dir: string, config: object, tensors: Tensor[], opts: { dtype?: string; shards?: number } = {}): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const dtype = opts.dtype ?? 'F32';
  const shards = opts.shards ?? 1;
  if (shards === 1) {
    writeSafetensors(
      path.join(dir, 'model.safetensors'),
      tensors.map((t) => ({ ...t, dtype })),
    );
    return;
  }
  const per = Math.ceil(tensors.length / shards);
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const part = tensors.slice(s * per, (s + 1) * per);
    writeSafetensors(
      path.join(dir, file),
      part.map((t) => ({ ...t, dtype })),
    );
    for (const t of part) weightMap[t.name] = file;
  }
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
}
