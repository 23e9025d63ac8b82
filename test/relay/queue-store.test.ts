/**
 * One suite for every QueueStore backend. Each backend registers a factory;
 * today that is SQLite (file-backed, as the relay runs it).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from '../../src/crypto/random.js';
import { SqliteQueueStore } from '../../src/relay/sqlite-store.js';
import { DuplicateIdError, type QueueStore, type StoredMessage } from '../../src/relay/queue-store.js';
import { tempDir } from '../helpers/relay-process.js';

interface Backend {
  readonly name: string;
  open(): { store: QueueStore; files: () => Buffer; checkpoint: () => void; reopen: () => QueueStore };
}

const backends: Backend[] = [
  {
    name: 'sqlite',
    open() {
      const dir = tempDir('nightjar-store-');
      const path = join(dir, 'relay.sqlite');
      const store = new SqliteQueueStore(path);
      return {
        store,
        files: () => Buffer.concat(readdirSync(dir).map((f) => readFileSync(join(dir, f)))),
        checkpoint: () => store.checkpoint(),
        reopen: () => new SqliteQueueStore(path),
      };
    },
  },
];

const newQueue = () => ({
  recipientId: randomBytes(24),
  senderId: randomBytes(24),
  recipientKey: randomBytes(32),
  queueKey: randomBytes(32),
  mode: 'messaging' as const,
});
const message = (createdAt = Date.now()): StoredMessage => ({ msgId: randomBytes(24), sealed: randomBytes(200), createdAt });
const opts = { quota: 10, unsecured: false, notBefore: 0 };

for (const backend of backends) {
  describe(`QueueStore: ${backend.name}`, () => {
    test('creates and finds a queue by either ID; IDs are unique', async () => {
      const { store } = backend.open();
      const q = newQueue();
      await store.createQueue(q);
      const byR = await store.byRecipientId(q.recipientId);
      const byS = await store.bySenderId(q.senderId);
      assert.deepEqual(byR, byS);
      assert.deepEqual(byR?.recipientKey, q.recipientKey);
      assert.equal(byR?.senderKey, null);
      assert.equal(byR?.status, 'active');
      assert.equal(await store.byRecipientId(q.senderId), undefined, 'IDs are not interchangeable');
      await assert.rejects(store.createQueue({ ...newQueue(), recipientId: q.recipientId }), DuplicateIdError);
      await assert.rejects(store.createQueue({ ...newQueue(), senderId: q.senderId }), DuplicateIdError);
      await store.close();
    });

    test('secures once; the same key again is fine, another key is refused', async () => {
      const { store } = backend.open();
      const q = newQueue();
      await store.createQueue(q);
      const key = randomBytes(32);
      assert.equal(await store.secureQueue(q.recipientId, key), 'ok');
      assert.equal(await store.secureQueue(q.recipientId, key), 'ok');
      assert.equal(await store.secureQueue(q.recipientId, randomBytes(32)), 'auth');
      assert.deepEqual((await store.byRecipientId(q.recipientId))?.senderKey, key);
      await store.close();
    });

    test('messages come out in order; ACK must name the oldest', async () => {
      const { store } = backend.open();
      const q = newQueue();
      await store.createQueue(q);
      const ms = [message(), message(), message()];
      for (const m of ms) assert.equal(await store.addMessage(q.recipientId, m, opts), 'ok');
      assert.deepEqual(await store.peekMessage(q.recipientId, 0), ms[0]);
      assert.equal(await store.ackMessage(q.recipientId, ms[1]!.msgId, 0), false);
      assert.equal(await store.ackMessage(q.recipientId, ms[0]!.msgId, 0), true);
      assert.deepEqual(await store.peekMessage(q.recipientId, 0), ms[1]);
      await store.close();
    });

    test('group commit: concurrent adds each get their own answer', async () => {
      const { store } = backend.open();
      const q = newQueue();
      await store.createQueue(q);
      const results = await Promise.all(Array.from({ length: 15 }, () => store.addMessage(q.recipientId, message(), opts)));
      assert.equal(results.filter((r) => r === 'ok').length, 10);
      assert.equal(results.filter((r) => r === 'quota').length, 5);
      assert.deepEqual(await store.stats(), { queues: 1, messages: 10 });
      await store.close();
    });

    test('the unsecured send is one-shot, and a refused one does not use it up', async () => {
      const { store } = backend.open();
      const q = newQueue();
      await store.createQueue(q);
      assert.equal(await store.addMessage(q.recipientId, message(), { ...opts, quota: 0, unsecured: true }), 'quota');
      assert.equal(await store.addMessage(q.recipientId, message(), { ...opts, unsecured: true }), 'ok');
      assert.equal(await store.addMessage(q.recipientId, message(), { ...opts, unsecured: true }), 'auth');
      await store.close();
    });

    test('a contact queue takes any number of unsigned messages and cannot be secured', async () => {
      const { store } = backend.open();
      const q = { ...newQueue(), mode: 'contact' as const };
      await store.createQueue(q);
      assert.equal((await store.byRecipientId(q.recipientId))?.mode, 'contact');
      for (let i = 0; i < 3; i++) assert.equal(await store.addMessage(q.recipientId, message(), { ...opts, unsecured: true }), 'ok');
      assert.equal(await store.secureQueue(q.recipientId, randomBytes(32)), 'auth');
      await store.close();
    });

    test('suspended and deleted queues take no messages', async () => {
      const { store } = backend.open();
      const q = newQueue();
      await store.createQueue(q);
      await store.addMessage(q.recipientId, message(), opts);
      assert.equal(await store.suspendQueue(q.recipientId), true);
      assert.equal(await store.addMessage(q.recipientId, message(), opts), 'auth');
      assert.ok(await store.peekMessage(q.recipientId, 0), 'a suspended queue is still readable');
      assert.equal(await store.deleteQueue(q.recipientId), true);
      assert.equal(await store.byRecipientId(q.recipientId), undefined);
      assert.equal(await store.addMessage(q.recipientId, message(), opts), 'auth');
      assert.deepEqual(await store.stats(), { queues: 0, messages: 0 });
      await store.close();
    });

    test('expired messages are invisible, free the quota and are deleted', async () => {
      const { store } = backend.open();
      const q = newQueue();
      await store.createQueue(q);
      const now = Date.now();
      await store.addMessage(q.recipientId, message(now - 10_000), { ...opts, quota: 1 });
      assert.equal(await store.peekMessage(q.recipientId, now - 5000), undefined);
      assert.equal(await store.addMessage(q.recipientId, message(now), { ...opts, quota: 1, notBefore: now - 5000 }), 'ok');
      assert.equal(await store.deleteExpired(now - 5000), 1);
      assert.equal((await store.stats()).messages, 1);
      await store.close();
    });

    test('acknowledged and expired messages leave no trace on disk', async () => {
      const { store, files, checkpoint } = backend.open();
      const q = newQueue();
      await store.createQueue(q);
      const acked = message();
      const expired = message(Date.now() - 60_000);
      const kept = message();
      for (const m of [acked, expired, kept]) await store.addMessage(q.recipientId, m, opts);
      checkpoint();
      const before = files();
      for (const m of [acked, expired, kept]) assert.ok(before.includes(Buffer.from(m.sealed)), 'the disk check can see messages');
      assert.ok(await store.ackMessage(q.recipientId, acked.msgId, 0));
      assert.equal(await store.deleteExpired(Date.now() - 30_000), 1);
      checkpoint();
      const after = files();
      assert.ok(!after.includes(Buffer.from(acked.sealed)), 'acknowledged message is gone from disk');
      assert.ok(!after.includes(Buffer.from(expired.sealed)), 'expired message is gone from disk');
      assert.ok(after.includes(Buffer.from(kept.sealed)));
      await store.close();
    });

    test('everything survives closing and reopening', async () => {
      const { store, reopen } = backend.open();
      const q = newQueue();
      await store.createQueue(q);
      const m = message();
      await store.addMessage(q.recipientId, m, opts);
      await store.close();
      const again = reopen();
      assert.deepEqual(await again.peekMessage(q.recipientId, 0), m);
      await again.close();
    });
  });
}
