/**
 * Language-model perplexity by the standard protocol, on a real corpus (State of the Union sentences): a `.txt`
 * file is the text as it is, each line with its line break, cut into consecutive windows of maxLen tokens
 * (what `transformers`' run_clm.py does with keep_linebreaks=True). Three computations must agree: the
 * backend's `evaluate` on the token shards, onnxruntime-node's (src/core/onnxEval.ts) on the same shards, and
 * an independent one in Python — the Hugging Face tokenizer, windows made in Python, `transformers`'
 * GPT2LMHeadModel loaded from the same model directory, exp(mean NLL).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { trainByteLevelBpe } from '../../examples/build/bytelevel';
import { cleanSotuText, loadSotu } from '../../examples/build/sotu';
import { writeTokenizerFiles } from '../../examples/build/tokenizerJson';
import { closeOnnx, openOnnx } from '../../src/core/onnx';
import { evaluateOnnx } from '../../src/core/onnxEval';
import type { Metric } from '../../src/core/report';
import { backendEnv } from '../../src/core/python';
import { prepareShards, readShards } from '../../src/core/shards';
import { loadTokenizer } from '../../src/core/tokenize';
import { python } from './helpers/python';

const MAX_LEN = 64;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vtrans-lm-ppl-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const env = { ...backendEnv(), HF_HUB_OFFLINE: '1', TRANSFORMERS_VERBOSITY: 'error' };
const runPython = (args: string[]) => execFileSync(python(), args, { encoding: 'utf8', env, maxBuffer: 1 << 28 });

/** A tiny GPT-2 with random weights (every unit matters to the logits), exported to ONNX, with a SOTU tokenizer. */
const BUILD = `
import sys
from vtrans.checkpoint import load_model
from vtrans.export import export_onnx
from vtrans.testing import build_tiny
d, vocab = sys.argv[1], int(sys.argv[2])
build_tiny("gpt2", "lm", d, seed=3, vocab_size=vocab, bos_token_id=vocab - 1, eos_token_id=vocab - 1)
export_onnx(load_model(d), d + "/model.onnx")
`;

/** The backend on the shards, and the independent computation from the text file. */
const EVALUATE = `
import json, math, sys
import torch
from transformers import AutoTokenizer, GPT2LMHeadModel
from vtrans.checkpoint import load_model
from vtrans.evaluate import evaluate
from vtrans.schema import dump
from vtrans.shards import Shards
d, corpus, shards, block = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
torch.set_num_threads(1)
backend = dump(evaluate(load_model(d), Shards(shards), torch.device("cpu")))

# run_clm.py: the "text" loader with keep_linebreaks=True (each line keeps its line break), tokenizer(lines),
# all ids concatenated, cut into blocks of block_size, the remainder dropped; labels = input_ids.
with open(corpus, encoding="utf-8") as f:
    lines = f.read().splitlines(keepends=True)
tok = AutoTokenizer.from_pretrained(d)
ids = [i for line in tok(lines)["input_ids"] for i in line]
windows = [ids[i : i + block] for i in range(0, len(ids) // block * block, block)]
model = GPT2LMHeadModel.from_pretrained(d).eval()
nll, count = 0.0, 0
with torch.no_grad():
    for start in range(0, len(windows), 16):
        x = torch.tensor(windows[start : start + 16])
        predicted = x[:, 1:].numel()  # transformers shifts the labels: every token after a window's first
        nll += float(model(input_ids=x, labels=x).loss) * predicted
        count += predicted
print(json.dumps({"backend": backend, "reference": {"value": math.exp(nll / count), "count": count}, "ids": ids, "windows": windows}))
`;

/** Real text with line breaks: Washington's first three addresses (1790–1792, 5,800 words), one sentence per line, addresses separated by a blank line. */
function corpusText(): string {
  const addresses = loadSotu()
    .filter((a) => a.year <= 1792)
    .slice(0, 3);
  assert.equal(addresses.length, 3);
  return addresses.map((a) => cleanSotuText(a.text).replace(/(?<=[.!?]) +(?=[A-Z])/g, '\n')).join('\n\n') + '\n';
}

describe('language-model perplexity on a real corpus: backend, onnxruntime-node and transformers agree', () => {
  const modelDir = path.join(tmp, 'model');
  const corpus = path.join(tmp, 'sotu.txt');
  let shardsDir = '';
  let onnxPpl: Metric = { name: 'perplexity', value: 0, count: 0 };
  let out: {
    backend: { name: string; value: number; count: number };
    reference: { value: number; count: number };
    ids: number[];
    windows: number[][];
  };

  before(async () => {
    const text = corpusText();
    fs.writeFileSync(corpus, text);
    const bpe = trainByteLevelBpe(text.split('\n'), { vocabSize: 600 });
    runPython(['-c', BUILD, modelDir, String(bpe.stats.vocabSize)]);
    writeTokenizerFiles(modelDir, bpe);
    const prepared = await prepareShards({ modelDir, dataFile: corpus, task: 'lm', maxLen: MAX_LEN, cacheDir: path.join(tmp, 'cache') });
    shardsDir = prepared.dir;
    const model = await openOnnx(path.join(modelDir, 'model.onnx'), 1);
    try {
      onnxPpl = await evaluateOnnx(model, readShards(shardsDir));
    } finally {
      await closeOnnx(model);
    }
    out = JSON.parse(
      runPython(['-c', EVALUATE, modelDir, corpus, shardsDir, String(MAX_LEN)])
        .trim()
        .split('\n')
        .pop()!,
    );
  });

  it('the shards hold exactly the windows made independently in Python from the text', () => {
    const s = readShards(shardsDir);
    assert.ok(s.meta.examples >= 100, `${s.meta.examples} windows`);
    assert.equal(s.meta.lmInput, 'text');
    assert.equal(s.meta.eosId, undefined, 'no EOS between the lines of a .txt');
    assert.equal(s.meta.examples, out.windows.length);
    assert.equal(s.meta.droppedTokens, out.ids.length - out.windows.length * MAX_LEN);
    assert.deepEqual(Array.from(s.ids), out.windows.flat());
    const newline = loadTokenizer(modelDir).encodeText('\n');
    assert.equal(newline.length, 1);
    // every line break of the text is in the stream as its own token, and nothing else was inserted
    assert.equal(out.ids.filter((id) => id === newline[0]).length, corpusText().split('\n').length - 1);
    assert.ok(!out.ids.includes(loadTokenizer(modelDir).eosId!));
  });

  it('perplexity within 1e-6 (relative) of the independent computation, over the same tokens', (t) => {
    const ref = out.reference;
    t.diagnostic(
      `perplexity over ${ref.count} tokens: transformers ${ref.value}, backend ${out.backend.value}, onnxruntime-node ${onnxPpl.value}`,
    );
    assert.equal(out.backend.name, 'perplexity');
    assert.equal(ref.count, out.windows.length * (MAX_LEN - 1));
    assert.equal(out.backend.count, ref.count);
    assert.equal(onnxPpl.count, ref.count);
    assert.ok(ref.value > 1 && Number.isFinite(ref.value), String(ref.value));
    for (const [name, v] of [
      ['backend', out.backend.value],
      ['onnxruntime-node', onnxPpl.value],
    ] as const) {
      assert.ok(Math.abs(v - ref.value) / ref.value < 1e-6, `${name} ${v} vs transformers ${ref.value}`);
    }
  });
});
