// Reading a run's JSON records, with errors that name the file and say what to do.
import { readFileSync } from 'node:fs';
import { UserError } from '../../grammar/user-error.js';

export function readJsonFile<T>(file: string): T {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new UserError(code === 'ENOENT' ? 'file not found' : `cannot read (${code ?? String(err)})`, { where: file });
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new UserError('not valid JSON', { where: file, hint: 'the file was edited or damaged by hand; moec writes it atomically' });
  }
}
