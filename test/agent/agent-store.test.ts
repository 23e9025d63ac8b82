/** The agent's tables: a profile made by an older version upgrades in place, keeping what it holds. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3-multiple-ciphers';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentStore } from '../../src/agent/agent-store.js';

const V2 = readFileSync(join(import.meta.dirname, 'agent-schema-v2.sql'), 'utf8');

function version2(): Database.Database {
  const db = new Database(':memory:');
  db.exec(V2);
  db.prepare("INSERT INTO agent_addresses (id, rcv_queue_id, secrets, link, stamp_bits, created_at) VALUES ('a1', 1, x'0102', 'nightjar:address#x', 16, 5)").run();
  // A message held back behind a gap by a version that never closed gaps.
  db.prepare("INSERT INTO agent_recv_buffer (connection_id, seq, sent_at, body) VALUES ('c1', 3, 7, x'00')").run();
  return db;
}

test('version 2 tables upgrade to the current version in one transaction; opening again changes nothing', () => {
  const db = version2();
  const store = new AgentStore(db);
  assert.deepEqual(db.prepare('SELECT store, version FROM schema_versions').all(), [{ store: 'agent', version: 5 }], 'recorded by the migration runner');
  assert.equal((db.prepare("SELECT value FROM agent_meta WHERE key = 'schema'").get() as { value: string }).value, '5', 'and where the release before it reads it');
  const indexes = (d: Database.Database): unknown[] => d.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name").all();
  const fresh = new Database(':memory:');
  new AgentStore(fresh);
  assert.deepEqual(indexes(db), indexes(fresh), 'with the indexes a new profile has');
  assert.ok(indexes(db).length >= 8, 'the hot path ones among them');
  assert.equal(store.address('a1')?.stamp_bits, 16, 'the address is kept');
  assert.equal('secrets' in store.address('a1')!, false, 'its secrets moved out of agent_addresses');
  assert.deepEqual(
    store.addressKeys('a1').map((k) => [k.secrets, k.published_at, k.retired_at]),
    [[Buffer.from([1, 2]), 5, null]],
    'into its first key, current since the address was made',
  );
  const held = store.bufferState('c1');
  assert.ok(held && held.first === 3 && Math.abs(held.since - Date.now()) < 60_000, 'a gap left by an older version counts from the upgrade');
  assert.equal(store.requestSeen('a1', new Uint8Array(32)), false);
  store.markRequestSeen('a1', new Uint8Array(32), null);
  assert.equal(store.requestSeen('a1', new Uint8Array(32)), true);
  const before = db.prepare("SELECT sql FROM sqlite_master ORDER BY name").all();
  new AgentStore(db);
  assert.deepEqual(db.prepare("SELECT sql FROM sqlite_master ORDER BY name").all(), before);
});

test('a new database has the same tables and columns as an upgraded one', () => {
  const columns = (db: Database.Database): Record<string, string[]> =>
    Object.fromEntries(
      (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[]).map((t) => [
        t,
        (db.prepare(`SELECT name FROM pragma_table_info(?) ORDER BY name`).pluck().all(t) as string[]),
      ]),
    );
  const upgraded = version2();
  new AgentStore(upgraded);
  const fresh = new Database(':memory:');
  new AgentStore(fresh);
  assert.deepEqual(columns(upgraded), columns(fresh));
});

test('a setting written in a transaction that fails is not remembered: meta() reads what the database holds', () => {
  const db = new Database(':memory:');
  const store = new AgentStore(db);
  store.setMeta('routing', 'private');
  assert.throws(() =>
    store.tx(() => {
      store.setMeta('routing', 'direct');
      assert.equal(store.meta('routing'), 'direct');
      throw new Error('rolled back');
    }),
  );
  assert.equal(store.meta('routing'), 'private');
});

test('txUnflushed commits without flushing and puts the profile back to flushing every commit', () => {
  const db = new Database(':memory:');
  db.pragma('synchronous = FULL');
  const store = new AgentStore(db);
  const level = (): unknown => db.pragma('synchronous', { simple: true });
  let inside: unknown;
  store.txUnflushed(() => {
    inside = level();
    store.setMeta('k', 'v');
  });
  assert.equal(inside, 1, 'NORMAL while it runs');
  assert.equal(level(), 2, 'FULL again after it');
  assert.equal(db.prepare("SELECT value FROM agent_meta WHERE key = 'k'").pluck().get(), 'v');
  assert.throws(() => store.txUnflushed(() => { throw new Error('no'); }));
  assert.equal(level(), 2, 'FULL again after one that failed');
  store.tx(() => store.txUnflushed(() => (inside = level())));
  assert.equal(inside, 2, 'inside a transaction it is part of it, flushed with it');
});
