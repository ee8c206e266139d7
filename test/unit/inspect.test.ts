import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { countParams, flopsPerToken } from '../../src/core/accounting';
import { inspectModel } from '../../src/core/inspect';
import { readModelShape } from '../../src/core/modelShape';
import { bertTensors, gpt2Tensors, llamaTensors, writeCheckpoint } from './helpers/hfCheckpoints';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vtrans-inspect-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const CLI = path.resolve(__dirname, '../../dist/cli.js');

function cli(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
}

const BERT_BASE = {
  architectures: ['BertForMaskedLM'],
  model_type: 'bert',
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  intermediate_size: 3072,
  vocab_size: 30522,
  max_position_embeddings: 512,
  type_vocab_size: 2,
  hidden_act: 'gelu',
  layer_norm_eps: 1e-12,
};
const ROBERTA_BASE = {
  architectures: ['RobertaForMaskedLM'],
  model_type: 'roberta',
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  intermediate_size: 3072,
  vocab_size: 50265,
  max_position_embeddings: 514,
  type_vocab_size: 1,
  pad_token_id: 1,
};
const GPT2 = {
  architectures: ['GPT2LMHeadModel'],
  model_type: 'gpt2',
  n_embd: 768,
  n_layer: 12,
  n_head: 12,
  n_positions: 1024,
  n_ctx: 1024,
  vocab_size: 50257,
};
const LLAMA2_7B = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 4096,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 32,
  intermediate_size: 11008,
  vocab_size: 32000,
  max_position_embeddings: 4096,
  rms_norm_eps: 1e-5,
  tie_word_embeddings: false,
  torch_dtype: 'float16',
};

describe('vtrans inspect: published parameter counts from config.json + safetensors headers', () => {
  it('bert-base-uncased: 109,482,240 with pooler', () => {
    const dir = path.join(tmp, 'bert-base-uncased');
    writeCheckpoint(
      dir,
      BERT_BASE,
      bertTensors({ vocab: 30522, hidden: 768, layers: 12, ffn: 3072, positions: 512, types: 2, prefix: 'bert.' }),
    );
    const r = inspectModel(dir);
    assert.equal(r.params.total, 109_482_240);
    assert.equal(r.params.embedding, 23_837_184);
    assert.equal(r.params.encoder, 85_054_464);
    assert.equal(r.params.nonEmbedding, 109_482_240 - 23_837_184);
    assert.equal(r.family, 'bert');
    assert.equal(r.heads, 12);
    assert.equal(r.dtype, 'F32');
    // The formula (used when only pytorch_model.bin is present) agrees with the header count.
    assert.equal(countParams(readModelShape(dir)).total, 109_482_240);
  });

  it('roberta-base: 124,645,632', () => {
    const dir = path.join(tmp, 'roberta-base');
    writeCheckpoint(
      dir,
      ROBERTA_BASE,
      bertTensors({ vocab: 50265, hidden: 768, layers: 12, ffn: 3072, positions: 514, types: 1, prefix: 'roberta.' }),
    );
    assert.equal(inspectModel(dir).params.total, 124_645_632);
  });

  it('gpt2: 124,439,808 (tied LM head)', () => {
    const dir = path.join(tmp, 'gpt2');
    writeCheckpoint(dir, GPT2, gpt2Tensors({ vocab: 50257, hidden: 768, layers: 12, positions: 1024 }));
    const r = inspectModel(dir);
    assert.equal(r.params.total, 124_439_808);
    assert.equal(r.task, 'lm');
    assert.equal(countParams(readModelShape(dir)).total, 124_439_808);
  });

  it('Llama-2-7b: 6,738,415,616 from a sharded fp16 checkpoint', () => {
    const dir = path.join(tmp, 'llama-2-7b');
    writeCheckpoint(dir, LLAMA2_7B, llamaTensors({ vocab: 32000, hidden: 4096, layers: 32, heads: 32, kvHeads: 32, ffn: 11008 }), {
      dtype: 'F16',
      shards: 2,
    });
    const r = inspectModel(dir);
    assert.equal(r.params.total, 6_738_415_616);
    assert.equal(r.dtype, 'F16');
    assert.equal(r.weightFiles.length, 2);
    assert.equal(countParams(readModelShape(dir)).total, 6_738_415_616);
  });

  it('GQA: key/value heads are read and counted', () => {
    const cfg = {
      ...LLAMA2_7B,
      hidden_size: 256,
      num_hidden_layers: 2,
      num_attention_heads: 8,
      num_key_value_heads: 2,
      intermediate_size: 512,
      vocab_size: 1000,
    };
    const dir = path.join(tmp, 'llama-gqa');
    writeCheckpoint(dir, cfg, llamaTensors({ vocab: 1000, hidden: 256, layers: 2, heads: 8, kvHeads: 2, ffn: 512 }));
    const r = inspectModel(dir);
    assert.equal(r.kvHeads, 2);
    assert.equal(r.params.total, countParams(readModelShape(dir)).total);
    // q 256·256 + k,v 2·256·64 + o 256·256 + 2 norms + 3·256·512, per layer
    assert.equal(r.params.encoder, 2 * (256 * 256 * 2 + 2 * 256 * 64 + 2 * 256 + 3 * 256 * 512));
  });

  it('FLOPs per token follow the documented formula', () => {
    const shape = readModelShape(path.join(tmp, 'bert-base-uncased'));
    const n = 128;
    const perLayer = 2 * 768 * 3 * 768 + 2 * 768 * 768 + 4 * n * 768 + 2 * 768 * 3072 * 2;
    assert.equal(flopsPerToken({ ...shape, numLabels: 0 }, n), 12 * perLayer);
    assert.equal(
      inspectModel(path.join(tmp, 'gpt2'), { seqLen: 1024 }).flopsPerToken,
      12 * (2 * 768 * 3 * 768 + 2 * 768 * 768 + 4 * 1024 * 768 + 4 * 768 * 3072) + 2 * 768 * 50257,
    );
  });

  it('reads per-layer heterogeneous sizes of pruned models', () => {
    const cfg = {
      ...LLAMA2_7B,
      hidden_size: 96,
      head_dim: 32,
      num_hidden_layers: 3,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      intermediate_size: 64,
      vocab_size: 50,
      layer_num_attention_heads: [4, 0, 2],
      layer_num_key_value_heads: [2, 0, 1],
      layer_intermediate_size: [64, 10, 0],
    };
    const dir = path.join(tmp, 'llama-pruned');
    // Build the matching header from the formula's own layout.
    const t = [{ name: 'model.embed_tokens.weight', shape: [50, 96] }];
    const layers = [
      [4, 2, 64],
      [0, 0, 10],
      [2, 1, 0],
    ];
    layers.forEach(([h, g, f], i) => {
      const l = `model.layers.${i}.`;
      if (h > 0) {
        t.push(
          { name: `${l}input_layernorm.weight`, shape: [96] },
          { name: `${l}self_attn.q_proj.weight`, shape: [h * 32, 96] },
          { name: `${l}self_attn.k_proj.weight`, shape: [g * 32, 96] },
          { name: `${l}self_attn.v_proj.weight`, shape: [g * 32, 96] },
          { name: `${l}self_attn.o_proj.weight`, shape: [96, h * 32] },
        );
      }
      if (f > 0) {
        t.push(
          { name: `${l}post_attention_layernorm.weight`, shape: [96] },
          { name: `${l}mlp.gate_proj.weight`, shape: [f, 96] },
          { name: `${l}mlp.up_proj.weight`, shape: [f, 96] },
          { name: `${l}mlp.down_proj.weight`, shape: [96, f] },
        );
      }
    });
    t.push({ name: 'model.norm.weight', shape: [96] }, { name: 'lm_head.weight', shape: [50, 96] });
    writeCheckpoint(dir, cfg, t);
    const r = inspectModel(dir);
    assert.deepEqual(r.heads, [4, 0, 2]);
    assert.deepEqual(r.kvHeads, [2, 0, 1]);
    assert.deepEqual(r.ffn, [64, 10, 0]);
    assert.equal(r.pruned, true);
    assert.equal(r.params.total, countParams(readModelShape(dir)).total);
  });
});

describe('vtrans inspect CLI', () => {
  it('prints a table and --json', () => {
    const table = cli('inspect', path.join(tmp, 'gpt2'));
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, /parameters\s+124,439,808/);
    const json = cli('inspect', path.join(tmp, 'bert-base-uncased'), '--json', '--seq-len', '64');
    assert.equal(json.status, 0, json.stderr);
    const r = JSON.parse(json.stdout.trim().split('\n').pop()!);
    assert.equal(r.params.total, 109_482_240);
    assert.equal(r.seqLen, 64);
  });

  const bad: Array<[string, (dir: string) => void, RegExp]> = [
    ['missing directory', () => {}, /model directory not found/],
    ['missing config.json', (d) => fs.mkdirSync(d), /config\.json: missing/],
    [
      'invalid config.json',
      (d) => {
        fs.mkdirSync(d);
        fs.writeFileSync(path.join(d, 'config.json'), '{"model_type": "bert",');
      },
      /config\.json: not valid JSON/,
    ],
    [
      'unknown model_type',
      (d) => {
        fs.mkdirSync(d);
        fs.writeFileSync(path.join(d, 'config.json'), '{"model_type": "t5"}');
      },
      /model_type "t5" is not supported.*bert, roberta, gpt2, llama/,
    ],
    [
      'truncated safetensors header',
      (d) => {
        fs.mkdirSync(d);
        fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify(GPT2));
        const buf = Buffer.alloc(8 + 10);
        buf.writeBigUInt64LE(1000n);
        fs.writeFileSync(path.join(d, 'model.safetensors'), buf);
      },
      /model\.safetensors: not a valid safetensors file \(header of 1000 bytes runs past/,
    ],
    [
      'corrupt safetensors header',
      (d) => {
        fs.mkdirSync(d);
        fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify(GPT2));
        const json = Buffer.from('{"wte.weight": {"dtype": "F32", "shape": [2,2], "data_offsets": [0, 3]}}');
        const len = Buffer.alloc(8);
        len.writeBigUInt64LE(BigInt(json.length));
        fs.writeFileSync(path.join(d, 'model.safetensors'), Buffer.concat([len, json, Buffer.alloc(16)]));
      },
      /do not fit its shape/,
    ],
    [
      'truncated tensor data',
      (d) => {
        writeCheckpoint(d, GPT2, gpt2Tensors({ vocab: 10, hidden: 8, layers: 1, positions: 4 }));
        const f = path.join(d, 'model.safetensors');
        fs.truncateSync(f, fs.statSync(f).size - 4);
      },
      /truncated/,
    ],
    [
      'sharded index naming a missing shard',
      (d) => {
        writeCheckpoint(d, LLAMA2_7B, llamaTensors({ vocab: 10, hidden: 8, layers: 2, heads: 2, kvHeads: 2, ffn: 4 }), { shards: 2 });
        fs.rmSync(path.join(d, 'model-00002-of-00002.safetensors'));
      },
      /names shard "model-00002-of-00002\.safetensors", which is missing/,
    ],
  ];
  for (const [name, make, message] of bad) {
    it(`${name}: one line naming the file, exit code 2, no stack trace`, () => {
      const dir = path.join(tmp, `bad-${name.replace(/\W+/g, '-')}`);
      make(dir);
      const r = cli('inspect', dir);
      assert.equal(r.status, 2, r.stderr);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], message);
      assert.ok(lines[0].includes(dir), `names ${dir}: ${lines[0]}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    });
  }
});
