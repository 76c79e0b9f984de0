// Append-only JSON-lines logs. A process killed mid-append can leave a torn last line (no
// trailing newline): readers skip it, and the next writer cuts it off before appending, so the
// log never holds a half record glued to a whole one.
import { appendFileSync, closeSync, existsSync, fstatSync, ftruncateSync, openSync, readFileSync, readSync } from 'node:fs';
import { UserError } from '../../grammar/user-error.js';
import { DiskFullError, isDiskFull, writeFileAtomic } from './atomic.js';

/** The records of a JSONL file ([] if it does not exist), without a torn last line. */
export function readJsonl<T>(file: string): T[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  lines.pop(); // after the last newline: '' for a clean file, the torn fragment otherwise
  const out: T[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      throw new UserError(`line ${i + 1} is not valid JSON`, { where: `${file}:${i + 1}`, hint: 'the log was edited or damaged; remove that line' });
    }
  });
  return out;
}

/** Cut a torn last line off `file`. Returns the number of bytes removed. */
export function repairTail(file: string): number {
  if (!existsSync(file)) return 0;
  const fd = openSync(file, 'r+');
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return 0;
    const last = Buffer.alloc(1);
    readSync(fd, last, 0, 1, size - 1);
    if (last[0] === 0x0a) return 0;
    // Scan back in chunks for the last newline; a torn line is at most one record long.
    const chunk = Buffer.alloc(64 * 1024);
    let end = size;
    while (end > 0) {
      const start = Math.max(0, end - chunk.byteLength);
      readSync(fd, chunk, 0, end - start, start);
      const nl = chunk.subarray(0, end - start).lastIndexOf(0x0a);
      if (nl >= 0) {
        ftruncateSync(fd, start + nl + 1);
        return size - (start + nl + 1);
      }
      end = start;
    }
    ftruncateSync(fd, 0);
    return size;
  } finally {
    closeSync(fd);
  }
}

/** An appender that repairs the file's tail once, on its first append. */
export class JsonlLog<T> {
  private repaired = false;
  constructor(readonly file: string) {}

  append(record: T): void {
    if (!this.repaired) {
      repairTail(this.file);
      this.repaired = true;
    }
    // One write of the whole line: a kill leaves at most this line torn.
    try {
      appendFileSync(this.file, `${JSON.stringify(record)}\n`);
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      // A partial line may have gone out: cut it off (that frees space), keeping every whole record.
      try { repairTail(this.file); } catch { /* the next append repairs it */ }
      throw new DiskFullError(this.file);
    }
  }

  read(): T[] {
    return readJsonl<T>(this.file);
  }

  /** Keep only the records that pass `keep`, rewriting the file atomically (used on resume). */
  retain(keep: (r: T) => boolean): number {
    if (!existsSync(this.file)) return 0;
    const all = this.read();
    const kept = all.filter(keep);
    writeFileAtomic(this.file, kept.map((r) => `${JSON.stringify(r)}\n`).join(''));
    this.repaired = true;
    return all.length - kept.length;
  }
}
