// Bundles the three targets: the extension host entry and the CLI (Node, CommonJS) and the webview (browser, ESM).
// `vscode` is provided by the host; onnxruntime-node is native and ships as a dependency next to the bundle.
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

const common = {
  bundle: true,
  sourcemap: !production,
  minify: production,
  logLevel: 'warning',
  legalComments: 'none',
};

const nodeTargets = {
  ...common,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['vscode', 'onnxruntime-node'],
  entryPoints: { extension: 'src/extension/extension.ts', cli: 'src/cli.ts' },
  outdir: 'dist',
  // @vscode/python-extension and tokenizers ship ESM; this keeps `import.meta.url` users working in CJS output.
  define: { 'import.meta.url': 'importMetaUrl' },
  banner: { js: "const importMetaUrl = require('url').pathToFileURL(__filename).href;" },
};

const webviewTarget = {
  ...common,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  entryPoints: { webview: 'webview/main.ts' },
  outdir: 'dist',
  loader: { '.css': 'text', '.ttf': 'file' },
};

if (watch) {
  await Promise.all([nodeTargets, webviewTarget].map(async (opts) => (await esbuild.context(opts)).watch()));
} else {
  await Promise.all([esbuild.build(nodeTargets), esbuild.build(webviewTarget)]);
}
