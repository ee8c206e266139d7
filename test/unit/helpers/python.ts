import * as fs from 'node:fs';
import * as path from 'node:path';

/** The backend interpreter for tests: the one the test runner's bootstrap chose (VTRANS_PYTHON), else the project's .venv. */
export function python(): string {
  if (process.env.VTRANS_PYTHON) return process.env.VTRANS_PYTHON;
  const venv = path.resolve(__dirname, '..', '..', '..', '.venv', 'bin', 'python');
  if (fs.existsSync(venv)) return venv;
  throw new Error('no backend Python for the tests: run them through `npm test`, which creates .venv/, or set VTRANS_PYTHON');
}
