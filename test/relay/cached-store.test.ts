/**
 * CachedQueueStore (src/relay/cached-store.ts): queue records kept in
 * memory in front of the store. The shared suite (queue-store.test.ts) runs
 * against it too; these tests read before and after every change, so that
 * a kept record that was not dropped would show.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomBytes } from '../../src/crypto/random.js';
import { CachedQueueStore } from '../../src/relay/cached-store.js';
import { SqliteQueueStore } from '../../src/relay/sqlite-store.js';
import type { QueueRecord, QueueStore } from '../../src/relay/queue-store.js';
import { tempDir } from '../helpers/relay-process.js';

const newQueue = () => ({ recipientId: randomBytes(24), senderId: randomBytes(24), recipientKey: randomBytes(32), queueKey: randomBytes(32), mode: 'messaging' as const });

/** A real SQLite store whose two lookups are counted, and can be held at a gate. */
function countedStore(): { store: SqliteQueueStore; reads: () => number; hold: () => () => void } {
  const store = new SqliteQueueStore(join(tempDir('nightjar-cache-'), 'relay.sqlite'));
  let reads = 0;
  let gate: Promise<void> | undefined;
  for (const name of ['byRecipientId', 'bySenderId'] as const) {
    const original = store[name].bind(store);
    store[name] = async (id: Uint8Array): Promise<QueueRecord | undefined> => {
      reads++;
      const record = await original(id);
      if (gate) await gate;
      return record;
    };
  }
  return {
    store,
    reads: () => reads,
    hold: () => {
      let open!: () => void;
      gate = new Promise((r) => (open = r));
      return () => {
        gate = undefined;
        open();
      };
    },
  };
}

test('a kept record answers both lookups without the store; every change through the cache is seen by the next read', async () => {
  const { store: sqlite, reads } = countedStore();
  const store: QueueStore = new CachedQueueStore(sqlite);
  const q = newQueue();
  await store.createQueue(q);
  assert.equal((await store.byRecipientId(q.recipientId))?.status, 'active');
  assert.equal((await store.bySenderId(q.senderId))?.status, 'active');
  assert.equal((await store.byRecipientId(q.recipientId))?.senderKey, null);
  assert.equal(reads(), 1, 'one read of the store for three lookups');

  const opts = { quota: 10, notBefore: 0 };
  assert.equal(await store.addMessage(q.recipientId, { msgId: randomBytes(24), sealed: randomBytes(50), createdAt: Date.now() }, { ...opts, unsecured: true }), 'ok');
  assert.equal((await store.bySenderId(q.senderId))?.unsecuredSendUsed, true, 'the one unsigned message is used up');

  const key = randomBytes(32);
  assert.equal(await store.secureQueue(q.recipientId, key), 'ok');
  assert.deepEqual((await store.bySenderId(q.senderId))?.senderKey, key);
  assert.deepEqual((await store.byRecipientId(q.recipientId))?.senderKey, key);

  assert.equal(await store.suspendQueue(q.recipientId), true);
  assert.equal((await store.bySenderId(q.senderId))?.status, 'suspended');

  assert.equal(await store.deleteQueue(q.recipientId), true);
  assert.equal(await store.byRecipientId(q.recipientId), undefined);
  assert.equal(await store.bySenderId(q.senderId), undefined);
  await store.close();
});

test('a read that a change overtakes is not kept: the next read goes to the store', async () => {
  const { store: sqlite, reads, hold } = countedStore();
  const store = new CachedQueueStore(sqlite);
  const q = newQueue();
  await store.createQueue(q);
  const release = hold();
  const stale = store.bySenderId(q.senderId); // reads 'active', then waits at the gate
  await new Promise((r) => setImmediate(r));
  assert.equal(await store.suspendQueue(q.recipientId), true);
  release();
  assert.equal((await stale)?.status, 'active', 'the read was answered before the change');
  assert.equal((await store.bySenderId(q.senderId))?.status, 'suspended');
  assert.equal(reads(), 2);
  await store.close();
});

test('at most `capacity` records are kept, the least recently used dropped first', async () => {
  const { store: sqlite, reads } = countedStore();
  const store = new CachedQueueStore(sqlite, 3);
  const queues = [newQueue(), newQueue(), newQueue(), newQueue()];
  for (const q of queues) await store.createQueue(q);
  for (const q of queues.slice(0, 3)) await store.byRecipientId(q.recipientId);
  await store.bySenderId(queues[0]!.senderId); // queue 0 is now the most recently used
  assert.equal(reads(), 3);
  await store.byRecipientId(queues[3]!.recipientId); // drops queue 1
  assert.equal(store.size, 3);
  await store.bySenderId(queues[0]!.senderId);
  await store.byRecipientId(queues[2]!.recipientId);
  assert.equal(reads(), 4, 'queues 0 and 2 were kept');
  await store.bySenderId(queues[1]!.senderId);
  assert.equal(reads(), 5, 'queue 1 was dropped');
  await store.close();
});
