// Atomic file writes: a reader (or a process started after a kill -9) sees either the old file or
// the complete new one, never a prefix. Temp files are dot-prefixed so directory scans skip them.
import { chmodSync, closeSync, fsyncSync, openSync, realpathSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../../grammar/user-error.js';

/** No space left (or over quota) while writing `where`. What was written before stays as it was. */
export class DiskFullError extends UserError {
  constructor(readonly path: string) {
    super(`disk full at ${path}`, { where: path, hint: "free some space (or write elsewhere with --out), then continue with 'moec run FILE --resume': what was written before is kept" });
    this.name = 'DiskFullError';
  }
}

export function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** The temp name used while `file` is being written: hidden, unique per process. */
export function tempPath(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
}

/** Write `data` to a temp file beside `file`, fsync it, rename it over `file`, fsync the directory. */
export function writeFileAtomic(file: string, data: string | Uint8Array | readonly Uint8Array[], mode?: number): void {
  const tmp = tempPath(file);
  const parts = typeof data === 'string' ? [Buffer.from(data, 'utf8')] : data instanceof Uint8Array ? [data] : data;
  let fd: number;
  try {
    fd = openSync(tmp, 'w', mode);
  } catch (err) {
    throw isDiskFull(err) ? new DiskFullError(file) : err;
  }
  try {
    for (const p of parts) {
      let off = 0;
      while (off < p.byteLength) off += writeSync(fd, p, off, p.byteLength - off);
    }
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw isDiskFull(err) ? new DiskFullError(file) : err;
  }
  closeSync(fd);
  if (mode !== undefined) chmodSync(tmp, mode); // exactly the old mode, whatever the umask
  try {
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw isDiskFull(err) ? new DiskFullError(file) : err;
  }
  fsyncDir(path.dirname(file));
}

/**
 * Replace a user's file (a .moe source rewritten by moec fmt) atomically: through a symlink to its
 * target, which keeps its permissions; a full disk leaves the old file whole.
 */
export function replaceUserFile(file: string, data: string): void {
  const target = realpathSync(file);
  writeFileAtomic(target, data, statSync(target).mode & 0o7777);
}

/** Make a rename or a new entry durable. Some file systems refuse fsync on a directory; that only weakens durability. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // EISDIR/EINVAL/EPERM on platforms without directory fsync: the rename itself is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}
