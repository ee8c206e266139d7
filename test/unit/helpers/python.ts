/** The backend interpreter for tests: the one the test runner's bootstrap found (VTRANS_PYTHON), else Debian's. */
export function python(): string {
  return process.env.VTRANS_PYTHON ?? '/usr/bin/python3';
}
