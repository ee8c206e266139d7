/**
 * The two implementations of the size accounting agree: TypeScript's header-only `vtrans inspect`
 * (src/core/modelShape.ts + src/core/accounting.ts) and the backend's (`count_params`, `flops_per_token`, by the
 * family modules of backend/vtrans/models/), on models the backend pruned and saved, for every family and task,
 * tied and untied heads, MHA/GQA/MQA, LLaMA's biases, and random keep-sets (a pruned hidden width, layers without
 * attention, without FFN, with neither, with fewer key/value groups). Both also equal what PyTorch counts in the
 * pruned model (`sum(p.numel())`, blocks and embedding modules apart), so a change to either side's formulas fails.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { countParams, flopsPerToken, type ParamCounts } from '../../src/core/accounting';
import { inspectModel } from '../../src/core/inspect';
import { readModelShape } from '../../src/core/modelShape';
import { backendEnv } from '../../src/core/python';
import { python } from './helpers/python';

interface Case {
  name: string;
  overrides: Record<string, unknown>;
  dir: string;
  units: { hidden: number; heads: number[]; ffn: number[] };
  /** The backend's count_params of the shape it reads back from the saved config.json. */
  params: ParamCounts;
  /** count_params of the shape the pruned model was built from. */
  paramsOfPrunedShape: ParamCounts;
  /** [seq_len, flops_per_token(shape, seq_len)]. */
  flops: Array<[number, number]>;
  /** What PyTorch counts in the pruned model. */
  torch: { total: number; embedding: number; encoder: number };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vtrans-accounting-'));
let cases: Case[] = [];

before(() => {
  execFileSync(python(), ['-m', 'vtrans.testing', 'accounting-fixtures', tmp], {
    env: backendEnv(),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cases = JSON.parse(fs.readFileSync(path.join(tmp, 'cases.json'), 'utf8'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Equal, or within a relative 1e-12 where a sequence length n with 4·n not an integer makes the sum inexact. */
function assertFlops(got: number, want: number, what: string) {
  if (Number.isInteger(want)) assert.equal(got, want, what);
  else assert.ok(Math.abs(got - want) <= 1e-12 * Math.abs(want), `${what}: ${got} vs ${want}`);
}

describe('size accounting: TypeScript equals the backend equals PyTorch', () => {
  it('covers every family, task and head/attention variant, full and pruned', () => {
    const kinds = new Set(cases.map((c) => c.name.replace(/^\d+-/, '').replace(/-\d+$/, '')));
    assert.deepEqual([...kinds].sort(), [
      'bert-classification',
      'gpt2-classification',
      'gpt2-lm',
      'llama-classification',
      'llama-lm',
      'roberta-classification',
    ]);
    const pruned = cases.filter((c) => c.units.heads.includes(0) && c.units.ffn.includes(0));
    assert.ok(pruned.length >= cases.length / 2, 'most models have a layer without attention and one without FFN');
    const shapes = cases.map((c) => readModelShape(c.dir));
    assert.ok(
      shapes.some((s) => s.family === 'llama' && s.layers.some((l) => l.kvHeads > 0 && l.kvHeads < l.heads)),
      'GQA',
    );
    assert.ok(
      shapes.some((s) => s.family === 'llama' && s.attentionBias && s.mlpBias),
      'llama biases',
    );
    assert.ok(
      shapes.some((s) => s.task === 'lm' && s.tiedEmbeddings) && shapes.some((s) => s.task === 'lm' && !s.tiedEmbeddings),
      'tied and untied',
    );
    assert.ok(
      shapes.some((s) => s.layers.some((l) => l.heads === 0 && l.ffn === 0)),
      'a layer with neither sublayer',
    );
  });

  it('the backend counts what PyTorch holds, from the saved config as from the pruned shape', () => {
    for (const c of cases) {
      assert.deepEqual(
        { total: c.params.total, embedding: c.params.embedding, encoder: c.params.encoder },
        c.torch,
        `${c.name}: count_params vs the model's parameters`,
      );
      assert.deepEqual(c.paramsOfPrunedShape, c.params, c.name);
    }
  });

  it('inspect (from the safetensors header) and countParams (from config.json) equal the backend', () => {
    for (const c of cases) {
      const inspected = inspectModel(c.dir);
      assert.equal(inspected.paramsFrom, 'weights', c.name);
      assert.deepEqual(inspected.params, c.params, `${c.name}: inspect's header count`);
      assert.deepEqual(countParams(readModelShape(c.dir)), c.params, `${c.name}: countParams of the config's shape`);
    }
  });

  it('FLOPs per token equal the backend at every sequence length', () => {
    for (const c of cases) {
      const shape = readModelShape(c.dir);
      for (const [seqLen, want] of c.flops) {
        assertFlops(flopsPerToken(shape, seqLen), want, `${c.name} @${seqLen}: flopsPerToken`);
        assertFlops(inspectModel(c.dir, { seqLen }).flopsPerToken, want, `${c.name} @${seqLen}: inspect`);
      }
    }
  });
});
