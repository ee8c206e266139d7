/**
 * An error caused by the user's input (a file, a setting, a flag), as opposed to a bug.
 * Its message is one line that names the file or setting, what is wrong, and what to do;
 * the CLI prints it without a stack trace and exits with code 2, the extension shows it as is.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(hint ? `${message} ${hint}` : message);
    this.name = 'UserError';
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
