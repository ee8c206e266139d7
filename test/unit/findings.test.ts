/**
 * The findings sentences against figures computed here, independently, from the fixture reports (and one
 * tiny hand-made report whose expected numbers are written out).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { computeFindings, fmtCount, fmtInt, fmtMetricDelta, type Finding } from '../../src/core/findings';
import type { LayerReport, RunReport } from '../../src/core/report';
import { renderReportMarkdown } from '../../src/core/reportHtml';
import { bertReport, emptyRun, failedRun, gpt2xlReport, llamaReport, loadFixture } from '../fixtures/reports/generate';

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const byId = (fs: Finding[], id: string) => {
  const f = fs.find((x) => x.id === id);
  assert.ok(f, `finding ${id} missing; got ${fs.map((x) => x.id).join(', ')}`);
  return f.text;
};

/** Mean of a probe over retained and pruned heads, by the definition: a head is retained when it and its attention sublayer are kept. */
function probeMeans(r: RunReport, probe: 'special' | 'current' | 'previous' | 'keywords' | 'entropy') {
  const kept: number[] = [];
  const pruned: number[] = [];
  for (const l of r.layers) {
    for (const h of l.heads) {
      const v = h.probes?.[probe];
      if (v === undefined) continue;
      if (h.kept && l.attentionKept) kept.push(v);
      else pruned.push(v);
    }
  }
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { kept: avg(kept), pruned: avg(pruned), nKept: kept.length, nPruned: pruned.length };
}

/** Weights removed per layer: heads own (2 + 2/groupSize)·H·d, FFN neurons own H·(2 or 3 for llama). */
function removed(r: RunReport, l: LayerReport) {
  const H = r.model.hidden;
  const d = H / r.model.heads;
  const perHead = H * d * (2 + 2 / l.groupSize);
  const perNeuron = H * (r.model.family === 'llama' ? 3 : 2);
  const prunedHeads = l.heads.filter((h) => !(h.kept && l.attentionKept)).length;
  const ffnKept = l.ffnKept ? l.ffn.kept : 0;
  const attn = prunedHeads * perHead;
  const ffn = (l.ffn.total - ffnKept) * perNeuron;
  return { attn, ffn, share: (attn + ffn) / (l.heads.length * perHead + l.ffn.total * perNeuron), prunedHeads, ffnKept };
}

describe('findings', () => {
  it('the committed BERT fixture equals what the generator produces', () => {
    assert.deepEqual(loadFixture('bert-4x4'), bertReport());
    assert.deepEqual(loadFixture('empty-run'), emptyRun());
    assert.deepEqual(loadFixture('failed-run'), failedRun());
  });

  for (const [name, make, verdict] of [
    ['BERT 4×4', bertReport, 'confirms'],
    ['LLaMA-2-7B 32×32', llamaReport, 'confirms'],
    ['GPT-2 XL 48×25', gpt2xlReport, 'does not confirm'],
  ] as const) {
    describe(name, () => {
      const r = make();
      const fs = computeFindings(r);

      it('special-token attention of pruned vs retained heads, with the verdict on the paper', () => {
        const m = probeMeans(r, 'special');
        const text = byId(fs, 'special');
        assert.ok(text.includes(`Pruned heads put ${pct(m.pruned)} of their attention on special tokens`), text);
        assert.ok(text.includes(`retained heads ${pct(m.kept)}`), text);
        assert.ok(text.includes(`(${fmtInt(m.nPruned)} pruned, ${fmtInt(m.nKept)} retained heads)`), text);
        assert.ok(text.includes(`this ${verdict} the paper's observation`), text);
        assert.equal(m.pruned > m.kept && m.pruned >= 0.5, verdict === 'confirms');
      });

      it('the other probes, pruned vs retained', () => {
        const text = byId(fs, 'otherProbes');
        for (const p of ['current', 'previous', 'keywords'] as const) {
          const m = probeMeans(r, p);
          assert.ok(
            text.includes(
              `${p === 'current' ? 'current token' : p === 'previous' ? 'previous token' : 'keywords'} ${pct(m.pruned)} vs ${pct(m.kept)}`,
            ),
            `${p}: ${text}`,
          );
        }
        const e = probeMeans(r, 'entropy');
        assert.ok(text.includes(`entropy ${e.pruned.toFixed(3)} nats vs ${e.kept.toFixed(3)} nats`), text);
      });

      it('the compressed model against the teacher', () => {
        const text = byId(fs, 'student');
        const s = r.student!;
        const t = r.teacher;
        assert.ok(
          text.includes(`keeps ${pct(s.params / t.params)} of the parameters (${fmtCount(s.params)} of ${fmtCount(t.params)})`),
          text,
        );
        assert.ok(text.includes(`${pct(s.flopsPerToken / t.flopsPerToken)} of the FLOPs per token`), text);
        if (r.metricName === 'accuracy') {
          assert.ok(
            text.includes(
              `accuracy is ${(s.metric!.value * 100).toFixed(2)}% against the teacher's ${(t.metric!.value * 100).toFixed(2)}%`,
            ),
            text,
          );
          assert.ok(text.includes(`a drop of ${((t.metric!.value - s.metric!.value) * 100).toFixed(2)} points`), text);
        } else {
          assert.ok(text.includes(`perplexity is ${s.metric!.value.toFixed(2)} against the teacher's ${t.metric!.value.toFixed(2)}`), text);
          assert.ok(text.includes(`+${pct(s.metric!.value / t.metric!.value - 1)}, lower is better`), text);
        }
      });

      it('the layers that lost most, by share of their weights', () => {
        const ranked = r.layers
          .map((l) => ({ l, ...removed(r, l) }))
          .filter((x) => x.share > 0)
          .sort((a, b) => b.share - a.share || a.l.index - b.l.index);
        const text = byId(fs, 'layers');
        let at = 0;
        for (const x of ranked.slice(0, 3)) {
          const part = `layer ${x.l.index} (${pct(x.share)} of its weights: ${x.prunedHeads} of ${x.l.heads.length} heads and ${fmtInt(x.l.ffn.total - x.ffnKept)} of ${fmtInt(x.l.ffn.total)} FFN neurons removed)`;
          const i = text.indexOf(part);
          assert.ok(i >= at, `expected, in order: ${part}\n in: ${text}`);
          at = i;
        }
      });

      it('FFN vs attention share of the removed weights, and what remains', () => {
        const rm = r.layers.map((l) => removed(r, l));
        const attn = rm.reduce((a, x) => a + x.attn, 0);
        const ffn = rm.reduce((a, x) => a + x.ffn, 0);
        const text = byId(fs, 'share');
        assert.ok(text.includes(`${pct(ffn / (attn + ffn))} were FFN neurons and ${pct(attn / (attn + ffn))} attention heads`), text);
        const u = r.units!;
        assert.ok(
          text.includes(`${fmtInt(u.heads.kept)} of ${fmtInt(u.heads.total)} attention heads (${pct(u.heads.kept / u.heads.total)})`),
          text,
        );
        assert.ok(text.includes(`${fmtInt(u.ffn.kept)} of ${fmtInt(u.ffn.total)} FFN neurons (${pct(u.ffn.kept / u.ffn.total)})`), text);
      });

      it('removed sublayers and the hidden width', () => {
        const attn = r.layers.filter((l) => !l.attentionKept).map((l) => l.index);
        const ffn = r.layers.filter((l) => !l.ffnKept).map((l) => l.index);
        const text = byId(fs, 'sublayers');
        if (attn.length)
          assert.ok(
            text.includes(
              `attention in ${attn.length === 1 ? 'layer' : 'layers'} ${attn.length === 1 ? attn[0] : attn.slice(0, -1).join(', ') + ' and ' + attn[attn.length - 1]}`,
            ),
            text,
          );
        if (ffn.length)
          assert.ok(text.includes(`FFN in layer${ffn.length === 1 ? '' : 's'} ${ffn.join(ffn.length === 2 ? ' and ' : ', ')}`), text);
        const h = r.hiddenKept!;
        const hidden = byId(fs, 'hidden');
        if (h.kept === h.total) assert.equal(hidden, `All ${fmtInt(h.total)} hidden dimensions were kept.`);
        else
          assert.equal(
            hidden,
            `The hidden width was pruned from ${fmtInt(h.total)} to ${fmtInt(h.kept)} dimensions (${pct(h.kept / h.total)} kept).`,
          );
      });

      it('report.md carries the findings and the figures', () => {
        const md = renderReportMarkdown(r);
        for (const f of fs) assert.ok(md.includes(`- ${f.text}`), f.id);
        assert.ok(md.includes(`| Parameters | ${fmtInt(r.teacher.params)} | ${fmtInt(r.student!.params)} |`));
        const headRows = md.split('\n').filter((l) => /^\| \d+ \| \d+ \| (kept|pruned) \|/.test(l));
        assert.equal(headRows.length, r.layers.length * r.model.heads);
        assert.equal(headRows.filter((l) => l.includes('| pruned |')).length, probeMeans(r, 'special').nPruned);
      });
    });
  }

  it('a hand-made 2 × 2 report gives the numbers written out here', () => {
    const r = bertReport();
    r.model = { ...r.model, layers: 2, heads: 2, hidden: 8, ffn: 10 };
    const head = (index: number, kept: boolean, special: number) => ({
      index,
      kept,
      logAlpha: kept ? 1 : -1,
      probes: { special, current: 0.1, previous: 0.05, keywords: 0, entropy: 1 },
    });
    r.layers = [
      {
        index: 0,
        heads: [head(0, true, 0.2), head(1, false, 0.8)],
        groupSize: 1,
        ffn: { kept: 5, total: 10 },
        attentionKept: true,
        ffnKept: true,
      },
      {
        index: 1,
        heads: [head(0, true, 0.1), head(1, false, 0.6)],
        groupSize: 1,
        ffn: { kept: 10, total: 10 },
        attentionKept: true,
        ffnKept: true,
      },
    ];
    r.hiddenKept = { kept: 6, total: 8 };
    const fs = computeFindings(r);
    // Pruned: (0.8 + 0.6) / 2 = 70.0%; retained: (0.2 + 0.1) / 2 = 15.0%.
    assert.equal(
      byId(fs, 'special'),
      "Pruned heads put 70.0% of their attention on special tokens on average, retained heads 15.0% (2 pruned, 2 retained heads): this confirms the paper's observation that pruned heads attend mostly to special tokens.",
    );
    // H 8, d 4: a head owns 4·8·4 = 128 weights, a neuron 16. Layer 0 loses 128 + 5·16 = 208 of 2·128 + 10·16 = 416 (50.0%), layer 1 loses 128 (30.8%).
    assert.equal(
      byId(fs, 'layers'),
      'The layers that lost most: layer 0 (50.0% of its weights: 1 of 2 heads and 5 of 10 FFN neurons removed) and layer 1 (30.8% of its weights: 1 of 2 heads and 0 of 10 FFN neurons removed).',
    );
    // Removed: attention 256, FFN 80 → FFN 23.8%, attention 76.2%.
    assert.ok(
      byId(fs, 'share').startsWith(
        'Of the weights removed inside the layers, 23.8% were FFN neurons and 76.2% attention heads; 2 of 4 attention heads (50.0%) and 15 of 20 FFN neurons (75.0%) remain.',
      ),
    );
    assert.equal(byId(fs, 'hidden'), 'The hidden width was pruned from 8 to 6 dimensions (75.0% kept).');
    assert.equal(byId(fs, 'sublayers'), 'No whole attention or FFN sublayer was removed.');

    // Retained heads attending more to special tokens: the observation is not confirmed.
    r.layers[0].heads[1].probes!.special = 0.1;
    r.layers[1].heads[1].probes!.special = 0.1;
    r.layers[0].heads[0].probes!.special = 0.9;
    assert.match(byId(computeFindings(r), 'special'), /^Pruned heads put 10\.0% .* retained heads 50\.0% .*this does not confirm/);
    // More than retained but under half: partly.
    r.layers[0].heads[0].probes!.special = 0.05;
    r.layers[1].heads[0].probes!.special = 0.05;
    r.layers[0].heads[1].probes!.special = 0.3;
    r.layers[1].heads[1].probes!.special = 0.3;
    assert.match(byId(computeFindings(r), 'special'), /30\.0% .* 5\.0% .*only partly confirmed/);
  });

  it('runs without a student or probes say so instead of inventing numbers', () => {
    const empty = computeFindings(emptyRun());
    assert.deepEqual(
      empty.map((f) => f.text),
      ['No compressed model yet: the run is still running.'],
    );
    const failed = computeFindings(failedRun());
    assert.equal(byId(failed, 'student'), 'No compressed model yet: the run failed before writing it.');
    assert.match(byId(failed, 'special'), /no attention probes/);
    assert.equal(
      failed.find((f) => f.id === 'otherProbes'),
      undefined,
    );
  });

  it('metric deltas keep the direction of the metric', () => {
    assert.equal(fmtMetricDelta('accuracy', 0.84, 0.86), 'a drop of 2.00 points');
    assert.equal(fmtMetricDelta('accuracy', 0.87, 0.86), 'a gain of 1.00 points');
    assert.equal(fmtMetricDelta('perplexity', 11, 10), '+10.0%, lower is better');
    assert.equal(fmtMetricDelta('perplexity', 9, 10), '-10.0%, lower is better');
  });
});
