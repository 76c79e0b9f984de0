// A mistake the user can fix. The CLI prints `message` and `hint` and exits 1, never a stack trace.
// errors/ is the bottom layer, below grammar <- compiler <- runtime: every layer may import it, and
// it imports nothing of the tree.

/**
 * What the mistake concerns, so that callers decide by kind, never by the message's text:
 * 'input' (a file, a flag, data: every trial would meet it) or 'trial' (one trial's own stored
 * state, e.g. a run with another configuration or every checkpoint damaged: a sweep records it
 * with that trial and goes on).
 */
export type UserErrorKind = 'input' | 'trial';

export class UserError extends Error {
  readonly kind: UserErrorKind;
  readonly hint: string | undefined;
  /** Where the mistake is: `file:line:col`, a flag such as `--adapter`, or a path. */
  readonly where: string | undefined;
  /** The message is a rendered diagnostic (position, source line, hint): print it as it is. */
  readonly preformatted: boolean;
  constructor(message: string, opts: { hint?: string; where?: string; preformatted?: boolean; kind?: UserErrorKind } = {}) {
    super(message);
    this.name = 'UserError';
    this.kind = opts.kind ?? 'input';
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
