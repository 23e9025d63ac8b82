/** Retries back off by the outbox's attempt count, with jitter; what leaves is on disk first (src/agent/delivery.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3-multiple-ciphers';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { AgentStore } from '../../src/agent/agent-store.js';
import { formatAddress } from '../../src/protocol/address.js';
import { Delivery, retryDelay, RETRY_BASE_MS, RETRY_MAX_MS } from '../../src/agent/delivery.js';
import type { RelayDirectory } from '../../src/agent/relays.js';
import type { Router } from '../../src/agent/routing.js';
import { recorder } from '../helpers/agent-harness.js';

test('a failed message waits half to all of 500 ms doubled per attempt, at most 5 minutes', () => {
  assert.equal(retryDelay(1, () => 0), RETRY_BASE_MS / 2);
  assert.equal(retryDelay(1, () => 0.999999), RETRY_BASE_MS);
  assert.equal(retryDelay(3, () => 0.999999), RETRY_BASE_MS * 4);
  assert.equal(retryDelay(4, () => 0.5), Math.round(RETRY_BASE_MS * 8 * 0.75));
  assert.equal(retryDelay(40, () => 0.999999), RETRY_MAX_MS);
  assert.equal(retryDelay(40, () => 0), RETRY_MAX_MS / 2);
  // Jitter: two agents failing together do not retry together.
  const spread = new Set(Array.from({ length: 50 }, () => retryDelay(5)));
  assert.ok(spread.size > 10);
  for (const d of spread) assert.ok(d >= RETRY_BASE_MS * 8 && d <= RETRY_BASE_MS * 16);
});

test('what send() committed without a flush of its own is flushed to disk before it leaves, once per round however many were sent', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nightjar-flush-'));
  const db = new Database(join(dir, 'profile.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  const store = new AgentStore(db);
  store.insertConnection({ id: 'c1', status: 'ready', role: 'inviter', my_info: Buffer.alloc(0) });
  const snd = store.insertSndQueue({ connection_id: 'c1', relay: formatAddress({ fingerprint: new Uint8Array(32), host: 'relay.example', port: 5223 }), sender_id: Buffer.alloc(24, 1), sender_key: Buffer.alloc(32, 2), status: 'active', current: 1, first_seq: 1 });
  const flushedAt = (): unknown => db.prepare("SELECT value FROM agent_meta WHERE key = 'flushed_at'").pluck().get();
  const queue = (seq: number): void =>
    store.txUnflushed(() => store.enqueue({ connection_id: 'c1', snd_queue_id: snd, seq, envelope: Buffer.alloc(40, seq), signed: 1, wait_rcv_queue: null, after_sent: null }), { beforeSending: true });
  const seen: unknown[] = [];
  // The edge: a relay that takes everything, noting what was on disk at that moment.
  const router = { send: async () => void seen.push(flushedAt()) } as unknown as Router;
  let clock = 1000;
  const delivery = new Delivery(store, router, {} as RelayDirectory, recorder(), () => clock++, pino({ level: 'silent' }), { unreachable: () => undefined, linkSpent: async () => undefined });
  for (let seq = 1; seq <= 3; seq++) queue(seq);
  assert.equal(flushedAt(), undefined, 'nothing flushed while the sends are queued');
  await delivery.flush('c1');
  assert.equal(seen.length, 3);
  assert.ok(seen.every((v) => v !== undefined && v === seen[0]), 'one flush before the first left, none more for the same round');
  queue(4);
  await delivery.flush('c1');
  assert.notEqual(seen[3], seen[0], 'a send after that is flushed again before it leaves');
  assert.equal(store.pendingCount('c1'), 0);
  queue(5);
  assert.throws(() => store.tx(() => store.flushToDisk()), /inside a transaction/, 'a flush inside a transaction would come only with its commit');
  db.close();
});

test('a long outbox goes out in order, read twice per pass (once, and once more for what came meanwhile), not once per batch', async () => {
  const db = new Database(':memory:');
  const store = new AgentStore(db);
  store.insertConnection({ id: 'c1', status: 'ready', role: 'inviter', my_info: Buffer.alloc(0) });
  const relay = formatAddress({ fingerprint: new Uint8Array(32), host: 'relay.example', port: 5223 });
  const snd = store.insertSndQueue({ connection_id: 'c1', relay, sender_id: Buffer.alloc(24, 1), sender_key: Buffer.alloc(32, 2), status: 'active', current: 1, first_seq: 1 });
  const queue = (seq: number): void => store.enqueue({ connection_id: 'c1', snd_queue_id: snd, seq, envelope: Buffer.from([seq]), signed: 1, wait_rcv_queue: null, after_sent: null });
  for (let seq = 1; seq <= 40; seq++) queue(seq);
  let reads = 0;
  const outboxOf = store.outboxOf.bind(store);
  store.outboxOf = (id: string) => (reads++, outboxOf(id));
  const sent: number[] = [];
  let queuedMeanwhile = false;
  const router = {
    send: async (_c: string, _relay: string, _q: unknown, envelope: Uint8Array) => {
      sent.push(envelope[0]!);
      if (!queuedMeanwhile) (queuedMeanwhile = true), queue(41);
    },
  } as unknown as Router;
  const delivery = new Delivery(store, router, {} as RelayDirectory, recorder(), () => 0, pino({ level: 'silent' }), { unreachable: () => undefined, linkSpent: async () => undefined });
  await delivery.flush('c1');
  assert.deepEqual(sent, Array.from({ length: 41 }, (_, i) => i + 1), 'in order, and the one queued while the first batch was out goes too');
  assert.equal(store.pendingCount('c1'), 0);
  assert.equal(reads, 3, 'read at the start, when the rows read ran out, and once more to find nothing new');
  db.close();
});
