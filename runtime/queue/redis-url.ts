// A --queue URL (redis:// or rediss://, with an optional user and password) as ioredis connection
// options, and the form of it that may be shown or stored: host and port only, never the password.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { UserError } from '../../grammar/user-error.js';

export interface RedisTarget {
  /** For BullMQ/ioredis: maxRetriesPerRequest null so commands wait out a Redis restart instead of failing. */
  connection: {
    host: string; port: number; db: number; username?: string; password?: string;
    tls?: { servername?: string; ca?: Buffer };
    maxRetriesPerRequest: null; enableOfflineQueue: true; retryStrategy: (times: number) => number;
  };
  /** scheme://host:port/db, without credentials: what logs, the view and the run store name. */
  display: string;
}

/**
 * Parses `url` given with `flag`. For rediss://, MOEC_REDIS_CA names a PEM file of the CA that
 * signed the server's certificate (a private CA or a self-signed server); otherwise the system's CAs.
 */
export function parseRedisUrl(url: string, flag = '--queue', env: NodeJS.ProcessEnv = process.env): RedisTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // Not echoed: a value that does not parse may still hold a password.
    throw new UserError('the value is not a URL', { where: flag, hint: 'write redis://HOST:PORT, redis://:PASSWORD@HOST:PORT or rediss://HOST:PORT (TLS)' });
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new UserError(`'${u.protocol}' is not a Redis URL scheme`, { where: flag, hint: 'write redis://HOST:PORT, or rediss://HOST:PORT for TLS' });
  }
  if (!u.hostname) throw new UserError('the URL names no host', { where: flag, hint: 'write redis://HOST:PORT' });
  const port = u.port ? Number(u.port) : 6379;
  const dbText = u.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0) throw new UserError(`'/${dbText}' is not a Redis database number`, { where: flag, hint: 'write redis://HOST:PORT/0, or leave the database out' });
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const connection: RedisTarget['connection'] = {
    host, port, db, maxRetriesPerRequest: null, enableOfflineQueue: true,
    // Reconnect for ever, at most every 2 s: a restarted redis-server is found again.
    retryStrategy: (times) => Math.min(200 * times, 2000),
  };
  if (u.username) connection.username = decodeURIComponent(u.username);
  if (u.password) connection.password = decodeURIComponent(u.password);
  // A password in the URL shows in `ps` on this machine; MOEC_REDIS_PASSWORD keeps it out of the command line.
  else if (env.MOEC_REDIS_PASSWORD) connection.password = env.MOEC_REDIS_PASSWORD;
  if (u.protocol === 'rediss:') {
    // SNI carries host names only (an IP address there is refused by RFC 6066); the certificate is checked either way.
    connection.tls = isIP(host) ? {} : { servername: host };
    const caFile = env.MOEC_REDIS_CA;
    if (caFile) {
      try {
        connection.tls.ca = readFileSync(caFile);
      } catch (e) {
        throw new UserError(`cannot read the CA certificate (${(e as { code?: string }).code ?? String(e)})`, { where: `MOEC_REDIS_CA=${caFile}`, hint: 'name a PEM file, or unset MOEC_REDIS_CA to use the system CAs' });
      }
    }
  }
  return { connection, display: `${u.protocol}//${u.host}${db ? `/${db}` : ''}` };
}

/** The URL with any user and password replaced, for messages about a URL that did not parse. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/)[^@/]*@/i, '$1***@');
}

/**
 * Replaces `url` in this process's argv with its credential-free form: lock files record the command
 * line of their holder (runtime/store/lock.ts), and they live in the run store.
 */
export function scrubArgv(url: string, target: RedisTarget): void {
  if (!/@/.test(url)) return;
  process.argv = process.argv.map((a) => (a === url ? target.display : a.startsWith('--queue=') && a.slice(8) === url ? `--queue=${target.display}` : a));
}
