/**
 * Which build of a teacher each benchmark entry compressed (bench/builds.ts): the report shows the build most entries
 * compressed, one entry per method × budget × seed, and keeps every other build's entries apart.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildOf, splitByBuild, testsOfDigests } from '../../bench/builds';
import type { Entry } from '../../bench/run';

function run(method: Entry['method'], seed: number, teacher: number, extra: Partial<Entry> = {}): Entry {
  return {
    task: 'sotu',
    method,
    keep: 0.3,
    seed,
    status: 'done',
    runDir: `bench/work/sotu/runs/${method}-0.3-seed${seed}`,
    totalSeconds: 10,
    compressSeconds: 10,
    achieved: 0.3,
    params: 1000,
    encoderParams: 500,
    flopsPerToken: 100,
    dev: null,
    test: { name: 'perplexity', value: 200 + seed },
    teacherTest: { name: 'perplexity', value: teacher },
    latencyMs: null,
    onnxBytes: null,
    units: null,
    ...extra,
  };
}

describe('benchmark teacher builds', () => {
  it('tells builds apart by the weights digest, and an older entry by the teacher metric it shares with one', () => {
    const stamped = run('faster', 0, 160.33, { teacherDigest: 'aaa' });
    const older = run('random', 0, 160.33);
    const another = run('vtrans', 0, 162.13);
    const tests = testsOfDigests([stamped, older, another]);
    assert.equal(buildOf(stamped, tests), 'aaa');
    assert.equal(buildOf(older, tests), 'aaa');
    assert.equal(buildOf(another, tests), 'test 162.13');
    assert.equal(buildOf(run('faster', 1, 160.33, { status: 'failed', teacherTest: null }), tests), undefined);
  });

  it('shows the build with the most finished entries and keeps the others apart, each with its teacher metric', () => {
    const split = splitByBuild([
      run('vtrans', 0, 162.13),
      run('random', 0, 162.13),
      run('faster', 0, 160.33),
      run('faster', 1, 160.33),
      run('random', 1, 160.33),
      run('kwon', 0, 160.33, { status: 'failed', teacherTest: null }),
    ]);
    assert.equal(split.shown, 'test 160.33');
    assert.deepEqual(
      split.entries.map((e) => `${e.method}/${e.seed}`),
      ['faster/0', 'faster/1', 'random/1', 'kwon/0'],
    );
    assert.deepEqual(
      split.others.map((o) => [o.teacherTest, o.entries.map((e) => e.method)]),
      [[162.13, ['vtrans', 'random']]],
    );
  });

  it('keeps the latest of one build’s entries for the same method, budget and seed', () => {
    const older = run('faster', 0, 160.33);
    const rerun = run('faster', 0, 160.33, { teacherDigest: 'aaa', test: { name: 'perplexity', value: 190 } });
    const split = splitByBuild([older, rerun]);
    assert.deepEqual(split.entries, [rerun]);
    assert.deepEqual(split.others, []);
  });
});
