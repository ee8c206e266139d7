/**
 * Which stored benchmark entries still stand (bench/plan.ts): the current teacher, the current settings, the current
 * revision of the method's code, and for a VTrans variant its recorded steps.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isCurrent, revisionOf, settingsFor, teacherOf, type BenchMethod } from '../../bench/plan';
import type { Entry } from '../../bench/run';

function stored(method: BenchMethod, keep: number, extra: Partial<Entry> = {}): Entry {
  return {
    task: 'party',
    method,
    keep,
    seed: 0,
    status: 'done',
    runDir: `bench/work/party/runs/${method}-${keep}`,
    totalSeconds: 10,
    compressSeconds: 10,
    achieved: keep,
    params: 1000,
    encoderParams: 500,
    flopsPerToken: 100,
    dev: null,
    test: null,
    teacherTest: null,
    latencyMs: null,
    onnxBytes: null,
    units: null,
    settings: settingsFor('party', method, keep, 0),
    revision: revisionOf(method),
    teacher: teacherOf('party'),
    ...extra,
  };
}

describe('benchmark plan: stale entries', () => {
  it('keeps an entry run with the current settings and code', () => {
    assert.equal(isCurrent(stored('kwon', 0.3)), true);
    assert.equal(isCurrent(stored('faster', 0.3, { steps: { prune: 90 } })), true);
  });

  it('drops an entry whose settings changed', () => {
    assert.equal(isCurrent(stored('kwon', 0.3, { settings: { ...settingsFor('party', 'kwon', 0.3, 0), batchSize: 8 } })), false);
  });

  it("drops an entry from an older revision of its method's code (entries without one are revision 1)", () => {
    assert.ok(revisionOf('cofi') > 1, 'cofi distils as CoFi does since revision 2');
    assert.equal(isCurrent(stored('cofi', 0.3, { revision: undefined })), false);
    assert.equal(isCurrent(stored('cofi', 0.3)), true);
    assert.equal(isCurrent(stored('random', 0.3, { revision: undefined })), true);
  });

  it('drops an entry that compressed another teacher, or one that does not say which', () => {
    assert.equal(isCurrent(stored('kwon', 0.3, { teacher: teacherOf('spam') })), false);
    assert.equal(isCurrent(stored('kwon', 0.3, { teacher: undefined })), false);
  });

  it("names a task's teacher by its recipe, the same on every call", () => {
    assert.equal(teacherOf('party'), teacherOf('party'));
    assert.notEqual(teacherOf('party'), teacherOf('sotu'));
  });

  it('drops a VTrans variant without its recorded steps', () => {
    assert.equal(isCurrent(stored('faster', 0.3)), false);
  });
});
