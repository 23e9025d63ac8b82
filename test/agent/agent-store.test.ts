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
  assert.deepEqual(db.prepare('SELECT store, version FROM schema_versions').all(), [{ store: 'agent', version: 8 }], 'recorded by the migration runner');
  assert.equal((db.prepare("SELECT value FROM agent_meta WHERE key = 'schema'").get() as { value: string }).value, '8', 'and where the release before it reads it');
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

/** A store with one connection `c1` that has one current sending queue and one receiving queue. */
function withConnection(): { db: Database.Database; store: AgentStore; row: () => Record<string, unknown> } {
  const db = new Database(':memory:');
  const store = new AgentStore(db);
  store.insertConnection({ id: 'c1', status: 'ready', role: 'inviter', my_info: Buffer.from('me') });
  store.insertSndQueue({ connection_id: 'c1', relay: 'r', sender_id: Buffer.alloc(24, 1), sender_key: Buffer.alloc(32, 2), status: 'active', current: 1, first_seq: 1 });
  store.insertRcvQueue({ connection_id: 'c1', address_id: null, relay: 'r', recipient_id: Buffer.alloc(24, 3), sender_id: Buffer.alloc(24, 4), recipient_key: Buffer.alloc(32, 5), queue_key: Buffer.alloc(32, 6) });
  return { db, store, row: () => db.prepare("SELECT * FROM agent_connections WHERE id = 'c1'").get() as Record<string, unknown> };
}

test('rows kept in memory are what the database holds, after writes, deferred writes and rollbacks', () => {
  const { store, row } = withConnection();
  assert.equal(store.connection('c1')?.next_seq, 1);
  store.updateConnection('c1', { next_seq: 2, ratchet: Buffer.from([1, 2, 3]) });
  assert.deepEqual({ ...store.connection('c1') }, row(), 'written at once outside a transaction');
  store.tx(() => {
    store.updateConnection('c1', { next_seq: 3 });
    store.updateConnection('c1', { rcpt_pending: 4 });
    assert.equal(store.connection('c1')?.next_seq, 3, 'a deferred write is seen by connection() at once');
    assert.deepEqual(store.receiptsOwed(), [{ id: 'c1', rcpt_pending: 4 }], 'and by SQL that reads the table: written before it');
    store.updateConnection('c1', { rcpt_sent: 4 });
  });
  assert.deepEqual({ ...store.connection('c1') }, row(), 'the transaction wrote every deferred field');
  assert.equal(row().rcpt_sent, 4);
  assert.throws(() =>
    store.tx(() => {
      store.updateConnection('c1', { next_seq: 99, status: 'deleted' });
      throw new Error('rolled back');
    }),
  );
  assert.equal(store.connection('c1')?.next_seq, 3, 'a failed transaction leaves nothing of its writes in memory');
  assert.deepEqual({ ...store.connection('c1') }, row());
  assert.throws(() => ((store.connection('c1') as { next_seq: number }).next_seq = 7), TypeError, 'a kept row cannot be changed in place');
});

test('a failed savepoint drops its own deferred writes and keeps the ones before it', () => {
  const { store, row } = withConnection();
  store.tx(() => {
    store.updateConnection('c1', { next_seq: 5 });
    assert.throws(() =>
      store.tx(() => {
        store.updateConnection('c1', { rcpt_pending: 9 });
        store.receiptsOwed(); // a read of the table writes what is deferred first, inside the savepoint
        throw new Error('this message only');
      }),
    );
    assert.equal(store.connection('c1')?.rcpt_pending, 0);
    assert.equal(store.connection('c1')?.next_seq, 5, 'the update from before the savepoint is still there');
    store.updateConnection('c1', { rcpt_sent: 1 });
  });
  assert.equal(row().next_seq, 5, 'deferred before the savepoint opened, written at the end');
  assert.equal(row().rcpt_sent, 1);
  assert.equal(row().rcpt_pending, 0);
});

test('inside a transaction someone else began, nothing is kept: its rollback leaves no stale row', () => {
  const { db, store, row } = withConnection();
  store.connection('c1');
  assert.throws(() =>
    db.transaction(() => {
      store.tx(() => store.updateConnection('c1', { next_seq: 42 }));
      assert.equal(store.connection('c1')?.next_seq, 42);
      throw new Error('the chat rolls back');
    })(),
  );
  assert.equal(store.connection('c1')?.next_seq, 1);
  assert.deepEqual({ ...store.connection('c1') }, row());
});

test('queues, queries found empty and queued envelopes follow every write', () => {
  const { store } = withConnection();
  const rid = Buffer.alloc(24, 3);
  assert.equal(store.rcvQueueByRecipientId(rid)?.secured, 0);
  assert.deepEqual(store.rcvQueuesToSecure(), []);
  store.updateRcvQueue(store.rcvQueueByRecipientId(rid)!.id, { key_to_set: Buffer.alloc(32, 7) });
  assert.equal(store.rcvQueuesToSecure().length, 1, 'found empty before, asked again after the write');
  assert.ok(store.rcvQueueByRecipientId(rid)?.key_to_set, 'the kept queue row follows');
  assert.deepEqual(store.rcvQueuesToRetire(), []);
  store.deleteConnectionRows('c1');
  assert.equal(store.rcvQueueByRecipientId(rid), undefined);
  assert.deepEqual(store.currentSndQueues('c1'), []);
  assert.equal(store.connection('c1')?.status, 'deleted');

  const { store: s2 } = withConnection();
  const snd = s2.currentSndQueues('c1')[0]!;
  assert.deepEqual(s2.outboxConnections(), []);
  const envelope = (b: number): Omit<Parameters<AgentStore['enqueue']>[0], never> => ({ connection_id: 'c1', snd_queue_id: snd.id, seq: 1, envelope: Buffer.alloc(8, b), signed: 1, wait_rcv_queue: null, after_sent: null });
  s2.enqueue(envelope(1));
  assert.deepEqual(s2.outboxConnections(), ['c1']);
  const [first] = s2.outboxOf('c1');
  assert.deepEqual(s2.envelopeOf(first!.id), Buffer.alloc(8, 1));
  s2.deleteOutboxOf(snd.id);
  assert.equal(s2.envelopeOf(first!.id), undefined, 'no envelope of a deleted row');
  s2.enqueue(envelope(2)); // SQLite may give the deleted row's ID again
  assert.deepEqual(s2.envelopeOf(s2.outboxOf('c1')[0]!.id), Buffer.alloc(8, 2));
  assert.equal(s2.bufferState('c1'), undefined);
  s2.bufferMessage('c1', 5, 1, Buffer.from('x'), 1000);
  assert.equal(s2.bufferState('c1')?.first, 5, 'the empty buffer is asked again after a message is held');
});
