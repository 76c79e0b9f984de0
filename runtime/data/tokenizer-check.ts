// A model scores only data cut into its own tokens: GPT-2 ids read as bytes (or the reverse) give a
// perplexity that means nothing (about 17,000 was seen) instead of an error.
import { UserError } from '../../grammar/user-error.js';
import type { PreparedText } from './types.js';

export function checkSameTokenizer(data: Pick<PreparedText, 'name' | 'tokenizer' | 'vocab'>, model: { tokenizer: 'gpt2' | 'bytes'; vocab: number; what: string }, where?: string): void {
  if (data.tokenizer !== model.tokenizer || data.vocab > model.vocab) {
    throw new UserError(`data '${data.name}' is tokenised with ${data.tokenizer} (vocabulary ${data.vocab}), but ${model.what} was trained on ${model.tokenizer} tokens (vocabulary ${model.vocab})`, {
      ...(where ? { where } : {}),
      hint: `evaluate on data with 'tokenizer ${model.tokenizer}'`,
    });
  }
}
