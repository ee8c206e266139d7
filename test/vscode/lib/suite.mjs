// Bundles the extension-host suite (test/vscode/suite/*.ts) to out/test/vscode/suite/*.js: one CommonJS file per
// test file plus index.js, `vscode` from the host and `mocha` from the checkout's node_modules at run time.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as esbuild from 'esbuild';
import { ROOT } from './tools.mjs';

export const SUITE_OUT = path.join(ROOT, 'out', 'test', 'vscode', 'suite');
export const SUITE_INDEX = path.join(SUITE_OUT, 'index.js');

export async function bundleSuite() {
  fs.rmSync(SUITE_OUT, { recursive: true, force: true });
  const dir = path.join(ROOT, 'test', 'vscode', 'suite');
  const entryPoints = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.ts') && f !== 'helpers.ts')
    .map((f) => path.join(dir, f));
  await esbuild.build({
    entryPoints,
    outdir: SUITE_OUT,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    sourcemap: 'inline',
    external: ['vscode', 'mocha'],
    logLevel: 'warning',
  });
  return SUITE_INDEX;
}

/** Prints the failures of a results.json written by suite/index.ts; returns { ok, summary }. */
export function summarizeResults(name, file, exitCode) {
  const results = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : undefined;
  if (!results?.done) return { ok: false, summary: `${name}: the suite did not report results (exit code ${exitCode})`, results };
  const passed = results.results.filter((r) => r.state === 'passed').length;
  const failed = results.results.filter((r) => r.state === 'failed');
  for (const f of failed) console.log(`\n${name} FAILED: ${f.title}\n  ${f.error.split('\n').slice(0, 6).join('\n  ')}`);
  return {
    ok: exitCode === 0 && failed.length === 0,
    summary: `${name}: ${passed} passing, ${failed.length} failing (extension host exit code ${exitCode})`,
    results,
  };
}
