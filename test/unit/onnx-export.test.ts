/**
 * The backend's physically pruned models, exported to ONNX, give the hard-masked model's logits in
 * onnxruntime-node; and `vtrans inspect` counts them exactly as torch does.
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

interface Run {
  input_ids: number[][];
  attention_mask: number[][];
  dims: number[];
  masked_logits: number[];
  pruned_logits: number[];
}
interface Case {
  name: string;
  task: 'classification' | 'lm';
  dir: string;
  params: number;
  runs: Run[];
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vtrans-onnx-'));
let cases: Case[] = [];

before(() => {
  execFileSync(python(), ['-m', 'vtrans.testing', 'onnx-fixtures', tmp], { env: backendEnv(), stdio: ['ignore', 'pipe', 'inherit'] });
  cases = JSON.parse(fs.readFileSync(path.join(tmp, 'cases.json'), 'utf8'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function maxDiff(run: Run, got: Float32Array, want: number[], task: string): number {
  const [b, t] = [run.input_ids.length, run.input_ids[0].length];
  const per = want.length / (task === 'lm' ? b * t : b);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    if (task === 'lm') {
      const pos = Math.floor(i / per);
      if (run.attention_mask[Math.floor(pos / t)][pos % t] === 0) continue; // padding positions carry no meaning
    }
    worst = Math.max(worst, Math.abs(got[i] - want[i]));
  }
  return worst;
}

describe('pruned models in onnxruntime-node', () => {
  it('covers every family and task', () => {
    assert.deepEqual(cases.map((c) => c.name).sort(), [
      'bert-classification',
      'gpt2-classification',
      'gpt2-lm',
      'llama-classification',
      'llama-lm',
      'roberta-classification',
    ]);
  });

  for (const name of [
    'bert-classification',
    'roberta-classification',
    'gpt2-classification',
    'gpt2-lm',
    'llama-classification',
    'llama-lm',
  ]) {
    it(`${name}: ONNX logits equal the hard-masked model's within 1e-4 at two batch/sequence sizes`, async () => {
      const c = cases.find((x) => x.name === name)!;
      const model = await openOnnx(path.join(c.dir, 'model.onnx'), 1);
      try {
        for (const run of c.runs) {
          const [b, t] = [run.input_ids.length, run.input_ids[0].length];
          const out = await runLogits(model, { ids: run.input_ids.flat(), mask: run.attention_mask.flat(), batch: b, seq: t });
          assert.deepEqual(out.dims, run.dims);
          assert.ok(
            maxDiff(run, out.data, run.masked_logits, c.task) < 1e-4,
            `masked: ${maxDiff(run, out.data, run.masked_logits, c.task)}`,
          );
          assert.ok(maxDiff(run, out.data, run.pruned_logits, c.task) < 1e-4);
        }
      } finally {
        await closeOnnx(model);
      }
    });

    it(`${name}: vtrans inspect counts the pruned checkpoint exactly`, () => {
      const c = cases.find((x) => x.name === name)!;
      const r = inspectModel(c.dir);
      assert.equal(r.params.total, c.params);
      assert.equal(r.pruned, true);
      assert.ok(Array.isArray(r.heads) && (r.heads as number[])[1] === 0);
    });
  }
});
