import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../../../grammar/user-error.js';
import { parseRedisUrl, redactUrl } from '../../../runtime/queue/redis-url.js';
import { MOEC_VERSION, PLAN_SCHEMA_VERSION, type TrialJobData } from '../../../runtime/queue/job.js';
import { refusal } from '../../../runtime/queue/worker.js';

test('a Redis URL: host, port, database, user and password; shown without the credentials', () => {
  const r = parseRedisUrl('redis://alice:p%40ss@10.0.0.5:6380/2', '--queue', {});
  assert.deepEqual([r.connection.host, r.connection.port, r.connection.db, r.connection.username, r.connection.password], ['10.0.0.5', 6380, 2, 'alice', 'p@ss']);
  assert.equal(r.connection.tls, undefined);
  assert.equal(r.display, 'redis://10.0.0.5:6380/2');
  assert.equal(r.connection.maxRetriesPerRequest, null, 'commands wait out a Redis restart');
  const d = parseRedisUrl('redis://queue-host', '--queue', {});
  assert.deepEqual([d.connection.port, d.connection.db, d.display], [6379, 0, 'redis://queue-host']);
});

test('rediss:// is TLS (SNI for host names only); MOEC_REDIS_PASSWORD supplies a password the URL leaves out', () => {
  const h = parseRedisUrl('rediss://queue.example:6390', '--queue', { MOEC_REDIS_PASSWORD: 'pw' });
  assert.deepEqual(h.connection.tls, { servername: 'queue.example' });
  assert.equal(h.connection.password, 'pw');
  assert.deepEqual(parseRedisUrl('rediss://127.0.0.1:6390', '--queue', {}).connection.tls, {});
  assert.throws(() => parseRedisUrl('rediss://127.0.0.1', '--queue', { MOEC_REDIS_CA: '/no/such/ca.pem' }), (e: unknown) => e instanceof UserError && /MOEC_REDIS_CA/.test(e.format()));
});

test('a bad --queue value is a user error naming the flag, and never echoes the password', () => {
  for (const bad of ['http://h:1', 'redis://h:1/x', 'not a url :pw@']) {
    assert.throws(() => parseRedisUrl(bad, '--queue', {}), (e: unknown) => e instanceof UserError && e.format().includes('--queue') && !e.format().includes('pw@'));
  }
  assert.equal(redactUrl('redis://u:secret@h:1'), 'redis://***@h:1');
});

test('a worker refuses a job of another moec version or plan schema, and takes its own', () => {
  const data = { moec: MOEC_VERSION, planSchema: PLAN_SCHEMA_VERSION } as TrialJobData;
  assert.equal(refusal(data), null);
  assert.match(refusal({ ...data, moec: '9.9.9' })!, /compiled by moec 9\.9\.9 .* this worker is moec/);
  assert.match(refusal({ ...data, planSchema: 99 })!, /plan schema 99/);
});
