/**
 * Both output shapes of a run's model/ give the same logits everywhere: onnxruntime-node on model.onnx equals
 * Hugging Face `transformers` loading model/ as the report says (trust_remote_code for the heterogeneous shape,
 * stock classes for the uniform one) and `vtrans.load_model`, within 1e-4, for every family and task. The
 * fixtures (random keep-sets: layers without attention or FFN, removed key/value groups, a pruned hidden width)
 * come from `python -m vtrans.testing shape-fixtures`, which runs transformers itself. `vtrans inspect` counts
 * the parameters transformers builds from either config.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inspectModel } from '../../src/core/inspect';
import { closeOnnx, openOnnx, runLogits } from '../../src/core/onnx';
import { backendEnv } from '../../src/core/python';
import { python } from './helpers/python';

interface Case {
  name: string;
  task: 'classification' | 'lm';
  shape: 'heterogeneous' | 'uniform';
  dir: string;
  params: number;
  onnx: string;
  input_ids: number[][];
  attention_mask: number[][];
  dims: number[];
  transformers_logits: number[];
  vtrans_logits: number[];
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vtrans-shapes-'));
let cases: Case[] = [];

before(() => {
  execFileSync(python(), ['-m', 'vtrans.testing', 'shape-fixtures', tmp], {
    env: { ...backendEnv(), HF_HUB_OFFLINE: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cases = JSON.parse(fs.readFileSync(path.join(tmp, 'cases.json'), 'utf8'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function maxDiff(c: Case, got: Float32Array, want: number[]): number {
  const [b, t] = [c.input_ids.length, c.input_ids[0].length];
  const per = want.length / (c.task === 'lm' ? b * t : b);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    if (c.task === 'lm') {
      const pos = Math.floor(i / per);
      if (c.attention_mask[Math.floor(pos / t)][pos % t] === 0) continue; // padding positions carry no meaning
    }
    worst = Math.max(worst, Math.abs(got[i] - want[i]));
  }
  return worst;
}

const NAMES = ['bert-classification', 'roberta-classification', 'gpt2-classification', 'gpt2-lm', 'llama-classification', 'llama-lm'];

describe('output shapes: onnxruntime-node against transformers', () => {
  it('covers every family and task in both shapes', () => {
    assert.deepEqual(cases.map((c) => c.name).sort(), NAMES.flatMap((n) => [`${n}-heterogeneous`, `${n}-uniform`]).sort());
  });

  for (const name of NAMES) {
    for (const shape of ['heterogeneous', 'uniform']) {
      it(`${name}, ${shape}: model.onnx equals transformers and vtrans.load_model within 1e-4`, async () => {
        const c = cases.find((x) => x.name === `${name}-${shape}`)!;
        const model = await openOnnx(c.onnx, 1);
        try {
          const [b, t] = [c.input_ids.length, c.input_ids[0].length];
          const out = await runLogits(model, { ids: c.input_ids.flat(), mask: c.attention_mask.flat(), batch: b, seq: t });
          assert.deepEqual(out.dims, c.dims);
          const hf = maxDiff(c, out.data, c.transformers_logits);
          assert.ok(hf < 1e-4, `transformers: ${hf}`);
          const ours = maxDiff(c, out.data, c.vtrans_logits);
          assert.ok(ours < 1e-4, `vtrans: ${ours}`);
        } finally {
          await closeOnnx(model);
        }
      });

      it(`${name}, ${shape}: vtrans inspect counts the parameters transformers loads`, () => {
        const c = cases.find((x) => x.name === `${name}-${shape}`)!;
        assert.equal(inspectModel(c.dir).params.total, c.params);
      });
    }
  }
});
