// The on-disk cache: entries are folders written atomically (a temporary folder renamed into
// place) with a manifest listing each file's SHA-256. An entry whose manifest is missing or
// unreadable, or whose files do not match it, is removed and rebuilt, never used.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

/**
 * One cache per user, shared by every project: `$MOEC_CACHE`, else `$XDG_CACHE_HOME/moec`, else
 * `~/.cache/moec` (the XDG base-directory rule; a relative XDG_CACHE_HOME is ignored, as it says).
 */
export function cacheRoot(): string {
  return resolve(cacheRootAndWhy().dir);
}

/** The cache folder and which rule chose it, for `moec doctor`. */
export function cacheRootAndWhy(): { dir: string; from: string } {
  if (process.env.MOEC_CACHE) return { dir: resolve(process.env.MOEC_CACHE), from: 'MOEC_CACHE' };
  const xdg = process.env.XDG_CACHE_HOME;
  if (xdg && isAbsolute(xdg)) return { dir: join(xdg, 'moec'), from: 'XDG_CACHE_HOME' };
  return { dir: join(homedir(), '.cache', 'moec'), from: 'the default (~/.cache/moec)' };
}

export interface ManifestFile {
  sha256: string;
  bytes: number;
}

export interface Manifest {
  /** What the entry is (free-form, for people reading the cache). */
  key: Record<string, unknown>;
  files: Record<string, ManifestFile>;
  /** Entry-specific facts (package checksums, counts, ...). */
  meta: Record<string, unknown>;
  created: string;
}

export const MANIFEST = 'manifest.json';

async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export type EntryCheck = { ok: true; manifest: Manifest } | { ok: false; reason: string };

/** Whether the entry at `dir` is complete and matches its manifest. */
export async function checkEntry(dir: string): Promise<EntryCheck> {
  if (!existsSync(dir)) return { ok: false, reason: 'missing' };
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as Manifest;
    if (!manifest || typeof manifest.files !== 'object') return { ok: false, reason: 'manifest without a file list' };
  } catch (e) {
    return { ok: false, reason: `no readable manifest (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  }
  for (const [name, want] of Object.entries(manifest.files)) {
    const path = join(dir, name);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch {
      return { ok: false, reason: `${name} is missing` };
    }
    if (size !== want.bytes) return { ok: false, reason: `${name} has ${size} bytes, the manifest says ${want.bytes}` };
    if ((await fileSha256(path)) !== want.sha256) return { ok: false, reason: `${name} does not match its checksum` };
  }
  return { ok: true, manifest };
}

export interface EntryWriter {
  /** The temporary folder to write files into. */
  dir: string;
  /** Write one file and record its checksum. */
  write(name: string, data: string | Uint8Array): Promise<void>;
  /** Record a file written into `dir` by other means (an extracted package). */
  record(name: string): Promise<void>;
}

/**
 * The entry at `dir`: returned as is when it checks out; otherwise (missing, partial, corrupt) it is
 * removed and `build` writes a fresh one into a temporary folder that is renamed into place.
 * `onRebuild` hears why an existing entry was thrown away.
 */
export async function cachedEntry(
  dir: string,
  key: Record<string, unknown>,
  build: (w: EntryWriter) => Promise<Record<string, unknown>>,
  onRebuild?: (reason: string) => void,
): Promise<{ dir: string; manifest: Manifest; built: boolean }> {
  const check = await checkEntry(dir);
  if (check.ok) return { dir, manifest: check.manifest, built: false };
  if (check.reason !== 'missing') {
    onRebuild?.(check.reason);
    await rm(dir, { recursive: true, force: true });
  }
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await mkdir(tmp, { recursive: true });
  const files: Record<string, ManifestFile> = {};
  const writer: EntryWriter = {
    dir: tmp,
    async write(name, data) {
      await writeFile(join(tmp, name), data);
      files[name] = { sha256: createHash('sha256').update(data).digest('hex'), bytes: typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength };
    },
    async record(name) {
      const path = join(tmp, name);
      files[name] = { sha256: await fileSha256(path), bytes: (await stat(path)).size };
    },
  };
  try {
    const meta = await build(writer);
    const manifest: Manifest = { key, files, meta, created: new Date().toISOString() };
    // The manifest goes last: a folder without one is an interrupted write.
    await writeFile(join(tmp, MANIFEST), JSON.stringify(manifest, null, 1));
    try {
      await rename(tmp, dir);
    } catch (e) {
      // Another process finished the same entry first; keep theirs if it checks out.
      const theirs = await checkEntry(dir);
      if (!theirs.ok) throw e;
      await rm(tmp, { recursive: true, force: true });
      return { dir, manifest: theirs.manifest, built: false };
    }
    return { dir, manifest, built: true };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Remove temporary folders left by interrupted writes in `parent` (older than an hour, so a running writer is spared). */
export async function sweepTemporaries(parent: string): Promise<void> {
  if (!existsSync(parent)) return;
  for (const name of await readdir(parent)) {
    if (!name.includes('.tmp-')) continue;
    const path = join(parent, name);
    const s = await stat(path).catch(() => null);
    if (s && Date.now() - s.mtimeMs > 3600_000) await rm(path, { recursive: true, force: true });
  }
}
