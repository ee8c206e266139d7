/**
 * What the .vsix would carry, from `vsce ls` on the staged package (scripts/package.mjs): the users' README with
 * images that resolve inside the package, LICENSE, CHANGELOG, the bundles, the backend's sources, the production
 * dependencies with one platform's onnxruntime, and nothing for contributors (sources, tests, scripts, the
 * developers' README). The full package with the sample project is built and checked by `test/vscode/run.mjs`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';

const ROOT = path.resolve(__dirname, '../..');
type PackageModule = {
  listPackageFiles(target?: string): string[];
  productionDependencies(): string[];
  USER_README: string;
};
let pkg: PackageModule;
let files: string[];
const target = `${process.platform}-${process.arch}`;

before(async () => {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'extension.js'))) {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'esbuild.mjs')], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }
  pkg = (await import(path.join(ROOT, 'scripts', 'package.mjs'))) as PackageModule;
  files = pkg.listPackageFiles(target);
});

describe('the package (vsce ls)', () => {
  it('carries the manifest, the users’ README, LICENSE, CHANGELOG, the bundles and the backend', () => {
    for (const f of [
      'package.json',
      'LICENSE',
      'CHANGELOG.md',
      'docs/marketplace/README.md',
      'dist/extension.js',
      'dist/webview.js',
      'backend/vtrans/server.py',
    ])
      assert.ok(files.includes(f), `${f} in ${files.length} files`);
    assert.ok(!files.includes('README.md'), 'the developers’ README stays in the repository');
    if (fs.existsSync(path.join(ROOT, 'dist', 'sample', 'model', 'config.json')))
      assert.ok(
        files.includes('dist/sample/model/model.safetensors') && files.includes('dist/sample/data/train.jsonl'),
        'the sample project',
      );
  });

  it('carries nothing for contributors', () => {
    const stray = files.filter(
      (f) =>
        /^(src|test|scripts|examples|bench|webview|\.venv|\.vtrans|\.vscode-test|out|dist-vsix)\//.test(f) ||
        /^backend\/(tests|pyproject\.toml|requirements)/.test(f) ||
        /\.(map|ts|pyc)$/.test(f) ||
        /^docs\/(?!screenshots\/[^/]+\.png$|marketplace\/README\.md$)/.test(f),
    );
    assert.deepEqual(stray, []);
  });

  it('has the production dependencies only, with one platform’s onnxruntime binary', () => {
    const deps = pkg.productionDependencies();
    assert.ok(deps.includes('node_modules/onnxruntime-node') && deps.includes('node_modules/onnxruntime-common'), deps.join(' '));
    assert.ok(!deps.some((d) => /esbuild|typescript|@vscode\/vsce|playwright/.test(d)), 'no development dependencies');
    const packaged = new Set(
      files
        .filter((f) => f.startsWith('node_modules/'))
        .map((f) =>
          f
            .split('/')
            .slice(0, f.split('/')[1].startsWith('@') ? 3 : 2)
            .join('/'),
        ),
    );
    for (const d of packaged) assert.ok(deps.includes(d), `${d} is a production dependency`);
    const bins = new Set(files.filter((f) => f.includes('onnxruntime-node/bin/napi-v6/')).map((f) => f.split('/').slice(4, 6).join('-')));
    assert.deepEqual([...bins], [target]);
  });

  it('has a README for users whose images and links resolve inside the package', () => {
    const text = fs.readFileSync(pkg.USER_README, 'utf8');
    assert.doesNotMatch(text, /npm (run|test|ci)\b|pytest|node test\/|contributors? only/i, 'no contributor-only text');
    assert.match(text, /PyTorch ≥ 2\.1/);
    const links = [...text.matchAll(/!?\[[^\]]*\]\(([^)\s#]+)[^)]*\)/g)]
      .map((m) => m[1])
      .filter((l) => !/^(https?|mailto|command):/.test(l));
    assert.ok(links.filter((l) => l.endsWith('.png')).length >= 3, `screenshots: ${links.join(', ')}`);
    for (const l of links) assert.ok(files.includes(path.posix.normalize(l)), `${l} is packaged`);
  });
});
