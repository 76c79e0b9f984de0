// A kernel generator's refusal of a grid past WebGPU's workgroups per dimension (a batch too large
// for one dispatch). An error class of its own, so the lowering turns it into a user's refusal by
// its class, never by its message.
export class GridLimitError extends Error {
  constructor(message: string, readonly limit = 65535) {
    super(message);
    this.name = 'GridLimitError';
  }
}
