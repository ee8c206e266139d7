/**
 * Pinned demo builds (examples/build/pin.ts): a committed model directory is copied instead of training wherever
 * its key (recipe, seed, data and tokenizer bytes) is the build's, and the committed spam and sotu teachers still
 * match their recipes and data.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { weightsDigest } from '../../bench/builds';
import { buildDemoModel } from '../../examples/build/model';
import { copyPinned, filesDigest, PIN_FILE, pinBuild, pinKey, pinMatches } from '../../examples/build/pin';

const ROOT = path.resolve(__dirname, '..', '..');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'demo-pin-'));
const facts = (seed = 0, train = 'a') => ({ recipe: { task: 'lm' }, seed, data: { 'train.txt': train } });

describe('pinned demo builds', () => {
  it('keys a build by its recipe, seed and the bytes of its data and tokenizer', () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'train.txt'), 'one');
    fs.writeFileSync(path.join(dir, 'dev.txt'), 'two');
    const before = filesDigest(dir, ['train.txt']);
    assert.deepEqual(Object.keys(filesDigest(dir)), ['dev.txt', 'train.txt']);
    fs.writeFileSync(path.join(dir, 'train.txt'), 'one!');
    assert.notEqual(filesDigest(dir, ['train.txt'])['train.txt'], before['train.txt']);
    assert.notEqual(pinKey(facts(0)), pinKey(facts(1)));
    assert.notEqual(pinKey(facts(0, 'a')), pinKey(facts(0, 'b')));
  });

  it('commits a model directory with its key and copies it back byte for byte, without the pin file', () => {
    const dir = tmp();
    const model = path.join(dir, 'model');
    fs.mkdirSync(model);
    fs.writeFileSync(path.join(model, 'model.safetensors'), Buffer.from([1, 2, 3]));
    fs.writeFileSync(path.join(model, 'training.json'), '{"test":{}}');
    pinBuild(model, path.join(dir, 'teacher'), pinKey(facts()));
    assert.ok(pinMatches(path.join(dir, 'teacher'), pinKey(facts())));
    assert.ok(!pinMatches(path.join(dir, 'teacher'), pinKey(facts(1))));
    assert.ok(!pinMatches(path.join(dir, 'nothing'), pinKey(facts())));
    const copy = path.join(dir, 'copy');
    copyPinned(path.join(dir, 'teacher'), copy);
    assert.deepEqual(fs.readdirSync(copy).sort(), ['model.safetensors', 'training.json']);
    assert.deepEqual(fs.readFileSync(path.join(copy, 'model.safetensors')), Buffer.from([1, 2, 3]));
    assert.ok(fs.readFileSync(path.join(dir, 'teacher', PIN_FILE), 'utf8').includes('"cpu"'));
  });

  for (const [demo, folder] of [
    ['spam', 'spam-classifier'],
    ['sotu', 'sotu-lm'],
  ] as const) {
    it(`builds the ${demo} demo by copying its committed teacher, not by training`, async () => {
      const out = tmp();
      fs.cpSync(path.join(ROOT, 'examples', folder, 'teacher'), path.join(out, 'teacher'), { recursive: true });
      const lines: string[] = [];
      const built = await buildDemoModel(demo, { outDir: out, log: (line: string) => lines.push(line) });
      assert.ok(
        lines.some((l) => l.startsWith(`copying the pinned ${demo} model`)),
        `the committed teacher's key no longer matches the ${demo} recipe or data (re-pin it with examples/build/model.ts ${demo} --pin): ${lines.join(' | ')}`,
      );
      assert.equal(weightsDigest(built.modelDir), weightsDigest(path.join(out, 'teacher')));
      fs.rmSync(out, { recursive: true, force: true });
    });
  }
});
