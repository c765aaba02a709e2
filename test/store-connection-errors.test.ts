/** A database connection failure at start says why: host not found, refused, authentication, missing database. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openConfigStore } from '../src/storage/index.ts';

const opening = (pg: Record<string, unknown>) => openConfigStore({ database: 'postgres', pg: { connectTimeoutMs: 5000, ...pg } });

test('PostgreSQL connection failures name the reason', async () => {
  await assert.rejects(opening({ host: 'no-such-host.invalid', port: 5432 }), /PostgreSQL at no-such-host\.invalid:5432: host not found/);
  await assert.rejects(opening({ host: '127.0.0.1', port: 1 }), /PostgreSQL at 127\.0\.0\.1:1: connection refused/);
  await assert.rejects(opening({ host: '127.0.0.1', port: 5432, user: 'no_such_user_portcullis', database: 'test' }), /authentication failed for user "no_such_user_portcullis"/);
  await assert.rejects(opening({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'no_such_db_portcullis' }), /database "no_such_db_portcullis" does not exist/);
});
