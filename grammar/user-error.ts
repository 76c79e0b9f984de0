// A mistake the user can fix. The CLI prints `message` and `hint` and exits 1, never a stack trace.
// It lives in the lowest layer so grammar, compiler and runtime can all throw it.
export class UserError extends Error {
  readonly hint: string | undefined;
  /** Where the mistake is: `file:line:col`, a flag such as `--adapter`, or a path. */
  readonly where: string | undefined;
  /** The message is a rendered diagnostic (position, source line, hint): print it as it is. */
  readonly preformatted: boolean;
  constructor(message: string, opts: { hint?: string; where?: string; preformatted?: boolean } = {}) {
    super(message);
    this.name = 'UserError';
    this.hint = opts.hint;
    this.where = opts.where;
    this.preformatted = opts.preformatted ?? false;
  }

  format(): string {
    if (this.preformatted) return this.message;
    const head = this.where ? `${this.where}: error: ${this.message}` : `error: ${this.message}`;
    return this.hint ? `${head}\n  hint: ${this.hint}` : head;
  }
}
