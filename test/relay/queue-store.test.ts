/**
 * One suite for every QueueStore backend. Each backend registers a factory;
 * today that is SQLite (file-backed), alone and behind the cache of queue
 * records the relay puts in front of it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { randomBytes } from '../../src/crypto/random.js';
import { SqliteQueueStore } from '../../src/relay/sqlite-store.js';
import { CachedQueueStore } from '../../src/relay/cached-store.js';
import { MigrationError } from '../../src/schema/migrations.js';
import { DuplicateIdError, type LogEntry, type QueueStore, type StoredEntry, type StoredMessage } from '../../src/relay/queue-store.js';
import { RELAY_SCHEMA } from '../../src/relay/sqlite-store.js';
import { tempDir } from '../helpers/relay-process.js';

interface Backend {
  readonly name: string;
  open(): { store: QueueStore; files: () => Buffer; checkpoint: () => void; reopen: () => QueueStore };
}

/** A file-backed SQLite store in a fresh directory; `wrap` puts what the relay puts in front of it, if anything. */
function sqliteBackend(name: string, wrap: (s: SqliteQueueStore) => QueueStore): Backend {
  return {
    name,
    open() {
      const dir = tempDir('nightjar-store-');
      const path = join(dir, 'relay.sqlite');
      const sqlite = new SqliteQueueStore(path);
      return {
        store: wrap(sqlite),
        files: () => Buffer.concat(readdirSync(dir).map((f) => readFileSync(join(dir, f)))),
        checkpoint: () => sqlite.checkpoint(),
        reopen: () => wrap(new SqliteQueueStore(path)),
      };
    },
  };
}

const backends: Backend[] = [
  sqliteBackend('sqlite', (s) => s),
  // As the relay runs it: queue records kept in memory in front of SQLite (cached-store.ts).
  sqliteBackend('sqlite behind CachedQueueStore', (s) => new CachedQueueStore(s)),
];

const newQueue = () => ({
  recipientId: randomBytes(24),
  senderId: randomBytes(24),
  recipientKey: randomBytes(32),
  queueKey: randomBytes(32),
  mode: 'messaging' as const,
});
const linkId = (): Uint8Array => randomBytes(24);
const linkData = (n = 300): Uint8Array => randomBytes(n);
const message = (createdAt = Date.now()): StoredMessage => ({ msgId: randomBytes(24), sealed: randomBytes(200), createdAt });
const opts = { quota: 10, unsecured: false, notBefore: 0 };
const newLog = () => ({ ...newQueue(), mode: 'log' as const });
const entry = (createdAt = Date.now()): StoredEntry => ({ entryId: randomBytes(24), sealed: randomBytes(200), createdAt });
const logOpts = { quota: 100 };
/** The positions `entries` were read at. */
const positions = (entries: readonly LogEntry[]): number[] => entries.map((e) => e.position);

/** Appends `n` fresh entries one after another; their positions. */
async function appendMany(store: QueueStore, log: Uint8Array, n: number, quota = logOpts.quota): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await store.appendEntry(log, entry(), { quota });
    assert.notEqual(r, 'auth');
    out.push(r === 'auth' ? 0 : r.position);
  }
  return out;
}

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

    test('peekMessages reads the oldest k after a position, in order, skipping expired and deleted ones', async () => {
      const { store } = backend.open();
      const q = newQueue();
      const other = newQueue();
      await store.createQueue(q);
      await store.createQueue(other);
      const now = Date.now();
      const ms = [message(now), message(now - 60_000), message(now), message(now), message(now)];
      for (const m of ms) assert.equal(await store.addMessage(q.recipientId, m, opts), 'ok');
      await store.addMessage(other.recipientId, message(), opts);
      const notBefore = now - 30_000;
      const first = await store.peekMessages(q.recipientId, notBefore, undefined, 2);
      assert.deepEqual(
        first.map(({ position: _, ...m }) => m),
        [ms[0], ms[2]],
        'oldest first, the expired one left out',
      );
      assert.ok(first[0]!.position < first[1]!.position);
      const next = await store.peekMessages(q.recipientId, notBefore, first[1]!.position, 10);
      assert.deepEqual(next.map((m) => m.msgId), [ms[3]!.msgId, ms[4]!.msgId], 'continues after the position; no other queue');
      assert.deepEqual(await store.peekMessages(q.recipientId, notBefore, next[1]!.position, 10), []);
      assert.ok(await store.deleteMessage(q.recipientId, next[0]!.position, ms[3]!.msgId, notBefore));
      assert.deepEqual((await store.peekMessages(q.recipientId, notBefore, first[1]!.position, 10)).map((m) => m.msgId), [ms[4]!.msgId]);
      await store.close();
    });

    test('deleteMessage deletes exactly the message named, not the oldest, and nothing on a mismatch', async () => {
      const { store } = backend.open();
      const q = newQueue();
      const other = newQueue();
      await store.createQueue(q);
      await store.createQueue(other);
      const ms = [message(), message(), message()];
      for (const m of ms) await store.addMessage(q.recipientId, m, opts);
      const [a, b, c] = await store.peekMessages(q.recipientId, 0, undefined, 3);
      assert.equal(await store.deleteMessage(q.recipientId, b!.position, ms[0]!.msgId, 0), false, 'position and ID must agree');
      assert.equal(await store.deleteMessage(other.recipientId, b!.position, b!.msgId, 0), false, 'another queue cannot delete it');
      assert.equal(await store.deleteMessage(q.recipientId, b!.position, b!.msgId, Date.now() + 1000), false, 'an expired message is not deleted by ACK');
      assert.equal((await store.stats()).messages, 3, 'the refusals changed nothing');
      assert.equal(await store.deleteMessage(q.recipientId, b!.position, b!.msgId, 0), true);
      assert.equal(await store.deleteMessage(q.recipientId, b!.position, b!.msgId, 0), false, 'only once');
      assert.deepEqual((await store.peekMessages(q.recipientId, 0, undefined, 3)).map((m) => m.msgId), [a!.msgId, c!.msgId]);
      assert.deepEqual(await store.peekMessage(q.recipientId, 0), ms[0], 'the oldest stays the oldest');
      await store.close();
    });

    test('group commit: concurrent adds each get their own answer', async () => {
      const { store } = backend.open();
      const q = newQueue();
      await store.createQueue(q);
      const results = await Promise.all(Array.from({ length: 15 }, () => store.addMessage(q.recipientId, message(), opts)));
      assert.equal(results.filter((r) => r === 'ok').length, 10);
      assert.equal(results.filter((r) => r === 'quota').length, 5);
      assert.deepEqual(await store.stats(), { queues: 1, messages: 10, entries: 0, links: 0 });
      await store.close();
    });

    test('group commit: sends and deletions of one turn apply in arrival order, each with its own answer', async () => {
      const { store } = backend.open();
      const q = newQueue();
      await store.createQueue(q);
      for (let i = 0; i < 3; i++) await store.addMessage(q.recipientId, message(), opts);
      const held = await store.peekMessages(q.recipientId, 0, undefined, 3);
      const late = message();
      // One turn: the oldest acknowledged (GET mode), the second deleted by position, a send, the third deleted twice.
      const answers = await Promise.all([
        store.ackMessage(q.recipientId, held[0]!.msgId, 0),
        store.deleteMessage(q.recipientId, held[1]!.position, held[1]!.msgId, 0),
        store.addMessage(q.recipientId, late, opts),
        store.deleteMessage(q.recipientId, held[2]!.position, held[2]!.msgId, 0),
        store.deleteMessage(q.recipientId, held[2]!.position, held[2]!.msgId, 0),
        store.ackMessage(q.recipientId, held[0]!.msgId, 0),
      ]);
      assert.deepEqual(answers, [true, true, 'ok', true, false, false]);
      assert.deepEqual((await store.peekMessages(q.recipientId, 0, undefined, 5)).map((m) => m.msgId), [late.msgId]);
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
      assert.deepEqual(await store.stats(), { queues: 0, messages: 0, entries: 0, links: 0 });
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
      const ackedInWindow = message();
      for (const m of [acked, expired, kept, ackedInWindow]) await store.addMessage(q.recipientId, m, opts);
      checkpoint();
      const before = files();
      for (const m of [acked, expired, kept, ackedInWindow]) assert.ok(before.includes(Buffer.from(m.sealed)), 'the disk check can see messages');
      assert.ok(await store.ackMessage(q.recipientId, acked.msgId, 0));
      const last = (await store.peekMessages(q.recipientId, 0, undefined, 4)).at(-1)!;
      assert.ok(await store.deleteMessage(q.recipientId, last.position, ackedInWindow.msgId, 0));
      assert.equal(await store.deleteExpired(Date.now() - 30_000), 1);
      checkpoint();
      const after = files();
      assert.ok(!after.includes(Buffer.from(acked.sealed)), 'acknowledged message is gone from disk');
      assert.ok(!after.includes(Buffer.from(ackedInWindow.sealed)), 'a message acknowledged out of order is gone from disk');
      assert.ok(!after.includes(Buffer.from(expired.sealed)), 'expired message is gone from disk');
      assert.ok(after.includes(Buffer.from(kept.sealed)));
      await store.close();
    });

    test('link data: set, get by link ID, replace; an unknown link ID finds nothing', async () => {
      const { store } = backend.open();
      const q = newQueue();
      await store.createQueue(q);
      const id = linkId();
      const first = linkData();
      assert.equal(await store.linkByLinkId(id), undefined, 'nothing before LSET');
      assert.equal(await store.setLinkData(q.recipientId, id, first), 'ok');
      assert.deepEqual(await store.linkByLinkId(id), { linkData: first, status: 'active' });
      assert.equal(await store.linkByLinkId(linkId()), undefined, 'an unknown link ID');
      assert.equal(await store.linkByLinkId(q.recipientId), undefined, 'queue IDs are not link IDs');
      // Replacing the data under the same ID, then moving the queue's link to another ID.
      const second = linkData(40);
      assert.equal(await store.setLinkData(q.recipientId, id, second), 'ok');
      assert.deepEqual((await store.linkByLinkId(id))?.linkData, second);
      const moved = linkId();
      assert.equal(await store.setLinkData(q.recipientId, moved, first), 'ok');
      assert.equal(await store.linkByLinkId(id), undefined, 'a queue has one link: the old ID is gone');
      assert.deepEqual((await store.linkByLinkId(moved))?.linkData, first);
      assert.equal((await store.stats()).links, 1);
      await store.close();
    });

    test('link data: a link ID held by another queue is refused and changes nothing', async () => {
      const { store } = backend.open();
      const a = newQueue();
      const b = newQueue();
      await store.createQueue(a);
      await store.createQueue(b);
      const id = linkId();
      const data = linkData();
      assert.equal(await store.setLinkData(a.recipientId, id, data), 'ok');
      assert.equal(await store.setLinkData(b.recipientId, id, linkData()), 'duplicate');
      assert.deepEqual((await store.linkByLinkId(id))?.linkData, data);
      assert.equal(await store.setLinkData(randomBytes(24), linkId(), linkData()), 'auth', 'no such queue');
      await store.close();
    });

    test('link data goes with its queue (DEL), and with KEY on a messaging queue; a contact queue keeps it', async () => {
      const { store } = backend.open();
      const deleted = newQueue();
      const messaging = newQueue();
      const contact = { ...newQueue(), mode: 'contact' as const };
      const suspended = newQueue();
      const ids = [linkId(), linkId(), linkId(), linkId()] as const;
      for (const [i, q] of [deleted, messaging, contact, suspended].entries()) {
        await store.createQueue(q);
        assert.equal(await store.setLinkData(q.recipientId, ids[i]!, linkData()), 'ok');
      }
      assert.equal(await store.deleteQueue(deleted.recipientId), true);
      assert.equal(await store.linkByLinkId(ids[0]), undefined, 'deleted with its queue');

      const key = randomBytes(32);
      assert.equal(await store.secureQueue(messaging.recipientId, key), 'ok');
      assert.equal(await store.linkByLinkId(ids[1]), undefined, 'a secured messaging queue has no link data');
      assert.equal(await store.setLinkData(messaging.recipientId, ids[1], linkData()), 'auth', 'and takes none afterwards');
      assert.equal(await store.secureQueue(messaging.recipientId, key), 'ok', 'KEY stays idempotent');

      assert.equal(await store.secureQueue(contact.recipientId, randomBytes(32)), 'auth');
      assert.ok(await store.linkByLinkId(ids[2]), 'a refused KEY deletes nothing');

      assert.equal(await store.suspendQueue(suspended.recipientId), true);
      assert.equal((await store.linkByLinkId(ids[3]))?.status, 'suspended', 'the store reports the queue\'s state');
      assert.equal((await store.stats()).links, 2);
      await store.close();
    });

    test('replaced and deleted link data leaves no trace on disk', async () => {
      const { store, files, checkpoint } = backend.open();
      const [replaced, secured, deleted, kept] = [newQueue(), newQueue(), newQueue(), { ...newQueue(), mode: 'contact' as const }];
      const old = linkData(1500);
      const data = { secured: linkData(1500), deleted: linkData(1500), kept: linkData(1500) };
      for (const q of [replaced, secured, deleted, kept]) await store.createQueue(q);
      await store.setLinkData(replaced.recipientId, linkId(), old);
      await store.setLinkData(secured.recipientId, linkId(), data.secured);
      await store.setLinkData(deleted.recipientId, linkId(), data.deleted);
      await store.setLinkData(kept.recipientId, linkId(), data.kept);
      checkpoint();
      const before = files();
      for (const d of [old, data.secured, data.deleted, data.kept]) assert.ok(before.includes(Buffer.from(d)), 'the disk check can see link data');
      await store.setLinkData(replaced.recipientId, linkId(), linkData(10));
      await store.secureQueue(secured.recipientId, randomBytes(32));
      await store.deleteQueue(deleted.recipientId);
      checkpoint();
      const after = files();
      assert.ok(!after.includes(Buffer.from(old)), 'replaced link data is gone from disk');
      assert.ok(!after.includes(Buffer.from(data.secured)), 'link data of a secured queue is gone from disk');
      assert.ok(!after.includes(Buffer.from(data.deleted)), 'link data of a deleted queue is gone from disk');
      assert.ok(after.includes(Buffer.from(data.kept)));
      await store.close();
    });

    test('logs: appends take positions 1, 2, 3, ...; reads go from a position, in order, up to a limit, this log only', async () => {
      const { store } = backend.open();
      const log = newLog();
      const other = newLog();
      await store.createQueue(log);
      await store.createQueue(other);
      assert.equal((await store.byRecipientId(log.recipientId))?.mode, 'log');
      const es = [entry(), entry(), entry(), entry()];
      for (const [i, e] of es.entries()) assert.deepEqual(await store.appendEntry(log.recipientId, e, logOpts), { position: i + 1 });
      assert.deepEqual(await store.appendEntry(other.recipientId, entry(), logOpts), { position: 1 }, 'each log counts its own');
      assert.deepEqual(await store.readEntries(log.recipientId, 1, 0, 10), es.map((e, i) => ({ ...e, position: i + 1 })));
      assert.deepEqual(positions(await store.readEntries(log.recipientId, 3, 0, 10)), [3, 4]);
      assert.deepEqual(positions(await store.readEntries(log.recipientId, 2, 0, 2)), [2, 3]);
      assert.deepEqual(await store.readEntries(log.recipientId, 5, 0, 10), [], 'nothing beyond the last');
      assert.deepEqual(await store.readEntries(randomBytes(24), 1, 0, 10), []);
      assert.equal((await store.stats()).entries, 5);
      await store.close();
    });

    test('logs take entries and nothing else; other queues take no entries; a suspended or deleted log takes none', async () => {
      const { store } = backend.open();
      const log = newLog();
      const queue = newQueue();
      const contact = { ...newQueue(), mode: 'contact' as const };
      for (const q of [log, queue, contact]) await store.createQueue(q);
      assert.equal(await store.appendEntry(queue.recipientId, entry(), logOpts), 'auth');
      assert.equal(await store.appendEntry(contact.recipientId, entry(), logOpts), 'auth');
      assert.equal(await store.appendEntry(randomBytes(24), entry(), logOpts), 'auth');
      assert.equal(await store.addMessage(log.recipientId, message(), opts), 'auth');
      assert.equal(await store.addMessage(log.recipientId, message(), { ...opts, unsecured: true }), 'auth');
      assert.equal(await store.setLinkData(log.recipientId, linkId(), linkData()), 'auth', 'a log has no link data');
      assert.deepEqual(await appendMany(store, log.recipientId, 2), [1, 2]);
      assert.equal(await store.suspendQueue(log.recipientId), true);
      assert.equal(await store.appendEntry(log.recipientId, entry(), logOpts), 'auth');
      assert.deepEqual(positions(await store.readEntries(log.recipientId, 1, 0, 10)), [1, 2], 'a suspended log is still readable');
      assert.equal(await store.deleteQueue(log.recipientId), true);
      assert.equal(await store.appendEntry(log.recipientId, entry(), logOpts), 'auth');
      assert.deepEqual(await store.readEntries(log.recipientId, 1, 0, 10), [], 'deleted with its log');
      assert.deepEqual(await store.stats(), { queues: 2, messages: 0, entries: 0, links: 0 });
      await store.close();
    });

    test('logs are secured like messaging queues: once, the same key again, another key refused', async () => {
      const { store } = backend.open();
      const log = newLog();
      await store.createQueue(log);
      assert.equal((await store.bySenderId(log.senderId))?.senderKey, null, 'read (and, behind the cache, kept) before KEY');
      await appendMany(store, log.recipientId, 1);
      const key = randomBytes(32);
      assert.equal(await store.secureQueue(log.recipientId, key), 'ok');
      assert.equal(await store.secureQueue(log.recipientId, key), 'ok');
      assert.equal(await store.secureQueue(log.recipientId, randomBytes(32)), 'auth');
      assert.deepEqual((await store.byRecipientId(log.recipientId))?.senderKey, key);
      assert.deepEqual((await store.bySenderId(log.senderId))?.senderKey, key);
      await store.close();
    });

    test('the log quota keeps the newest entries; positions go on increasing', async () => {
      const { store } = backend.open();
      const log = newLog();
      await store.createQueue(log);
      assert.deepEqual(await appendMany(store, log.recipientId, 7, 3), [1, 2, 3, 4, 5, 6, 7]);
      assert.deepEqual(positions(await store.readEntries(log.recipientId, 1, 0, 10)), [5, 6, 7]);
      assert.equal((await store.stats()).entries, 3);
      // A larger quota later keeps more from then on; what was dropped stays dropped.
      assert.deepEqual(await appendMany(store, log.recipientId, 2, 10), [8, 9]);
      assert.deepEqual(positions(await store.readEntries(log.recipientId, 1, 0, 10)), [5, 6, 7, 8, 9]);
      await store.close();
    });

    test('trimLog deletes below a position, idempotently; beyond the end it trims everything; positions are not reused', async () => {
      const { store } = backend.open();
      const log = newLog();
      const other = newLog();
      await store.createQueue(log);
      await store.createQueue(other);
      await appendMany(store, log.recipientId, 5);
      await appendMany(store, other.recipientId, 2);
      assert.equal(await store.trimLog(log.recipientId, 3), 2);
      assert.equal(await store.trimLog(log.recipientId, 3), 0, 'again: nothing more');
      assert.equal(await store.trimLog(log.recipientId, 1), 0, 'below what is left: nothing');
      assert.deepEqual(positions(await store.readEntries(log.recipientId, 1, 0, 10)), [3, 4, 5], 'a read from below the trim gets the next one there is');
      assert.equal(await store.trimLog(log.recipientId, 1000), 3);
      assert.deepEqual(await store.readEntries(log.recipientId, 1, 0, 10), []);
      assert.deepEqual(await appendMany(store, log.recipientId, 1), [6], 'the next position, not 1');
      assert.deepEqual(positions(await store.readEntries(other.recipientId, 1, 0, 10)), [1, 2], 'another log is untouched');
      await store.close();
    });

    test('group commit: concurrent appends, with sends and trims, each get their own answer and consecutive positions', async () => {
      const { store } = backend.open();
      const log = newLog();
      const q = newQueue();
      await store.createQueue(log);
      await store.createQueue(q);
      const answers = await Promise.all([
        store.appendEntry(log.recipientId, entry(), logOpts),
        store.addMessage(q.recipientId, message(), opts),
        store.appendEntry(log.recipientId, entry(), logOpts),
        store.trimLog(log.recipientId, 2),
        store.appendEntry(log.recipientId, entry(), logOpts),
      ]);
      assert.deepEqual(answers, [{ position: 1 }, 'ok', { position: 2 }, 1, { position: 3 }]);
      assert.deepEqual(positions(await store.readEntries(log.recipientId, 1, 0, 10)), [2, 3]);
      await store.close();
    });

    test('expired entries are never read, and are deleted by the sweep with the expired messages', async () => {
      const { store } = backend.open();
      const log = newLog();
      const q = newQueue();
      await store.createQueue(log);
      await store.createQueue(q);
      const now = Date.now();
      for (const createdAt of [now - 60_000, now - 60_000, now]) await store.appendEntry(log.recipientId, entry(createdAt), logOpts);
      await store.addMessage(q.recipientId, message(now - 60_000), opts);
      assert.deepEqual(positions(await store.readEntries(log.recipientId, 1, now - 30_000, 10)), [3]);
      assert.equal(await store.deleteExpired(now - 30_000), 3, 'two entries and a message');
      assert.deepEqual(positions(await store.readEntries(log.recipientId, 1, 0, 10)), [3]);
      assert.deepEqual(await appendMany(store, log.recipientId, 1), [4]);
      await store.close();
    });

    test('trimmed, dropped, expired and deleted log entries leave no trace on disk', async () => {
      const { store, files, checkpoint } = backend.open();
      const [log, gone] = [newLog(), newLog()];
      await store.createQueue(log);
      await store.createQueue(gone);
      const es = [entry(), entry(), entry(), entry(), entry()];
      for (const e of es) await store.appendEntry(log.recipientId, e, { quota: 4 }); // the first is dropped at the fifth
      const deleted = entry();
      await store.appendEntry(gone.recipientId, deleted, logOpts);
      checkpoint();
      const before = files();
      for (const e of [...es.slice(1), deleted]) assert.ok(before.includes(Buffer.from(e.sealed)), 'the disk check can see entries');
      // es[0] went with the quota; es[1] is trimmed now, es[2..4] stay until the sweep below.
      await store.trimLog(log.recipientId, 3);
      await store.deleteQueue(gone.recipientId);
      checkpoint();
      const after = files();
      assert.ok(!after.includes(Buffer.from(es[0]!.sealed)), 'an entry dropped by the quota is gone from disk');
      assert.ok(!after.includes(Buffer.from(es[1]!.sealed)), 'a trimmed entry is gone from disk');
      assert.ok(!after.includes(Buffer.from(deleted.sealed)), 'an entry of a deleted log is gone from disk');
      assert.ok(after.includes(Buffer.from(es[2]!.sealed)));
      assert.equal(await store.deleteExpired(Date.now() + 1000), 3, 'every entry left has expired by then');
      checkpoint();
      const swept = files();
      for (const e of es.slice(2)) assert.ok(!swept.includes(Buffer.from(e.sealed)), 'an expired entry is gone from disk');
      await store.close();
    });

    test('everything survives closing and reopening', async () => {
      const { store, reopen } = backend.open();
      const q = newQueue();
      await store.createQueue(q);
      const m = message();
      await store.addMessage(q.recipientId, m, opts);
      const id = linkId();
      const data = linkData();
      await store.setLinkData(q.recipientId, id, data);
      const log = newLog();
      await store.createQueue(log);
      const e = entry();
      await appendMany(store, log.recipientId, 2);
      await store.appendEntry(log.recipientId, e, logOpts);
      await store.trimLog(log.recipientId, 4); // every entry: the next position is all that is left
      await store.close();
      const again = reopen();
      assert.deepEqual(await again.peekMessage(q.recipientId, 0), m);
      assert.deepEqual(await again.linkByLinkId(id), { linkData: data, status: 'active' });
      assert.deepEqual(await appendMany(again, log.recipientId, 1), [4], 'a reopened log goes on from its next position');
      await again.close();
    });
  });
}

describe('SQLite relay database upgrades', () => {
  // The schema as the first relay release wrote it (user_version 1): such databases are on operators' disks.
  const VERSION_1 = `
    CREATE TABLE queues (
      recipient_id BLOB PRIMARY KEY, sender_id BLOB NOT NULL UNIQUE, recipient_key BLOB NOT NULL, queue_key BLOB NOT NULL,
      sender_key BLOB, status INTEGER NOT NULL DEFAULT 0, unsecured_sent INTEGER NOT NULL DEFAULT 0, mode INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE TABLE messages (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      recipient_id BLOB NOT NULL REFERENCES queues(recipient_id) ON DELETE CASCADE,
      msg_id BLOB NOT NULL, sealed BLOB NOT NULL, created_at INTEGER NOT NULL
    );
    CREATE INDEX messages_by_queue ON messages(recipient_id, seq);
    CREATE INDEX messages_by_age ON messages(created_at);
    PRAGMA user_version = 1;
  `;

  test('this relay writes schema version 3', () => {
    assert.equal(RELAY_SCHEMA.version, 3);
  });

  test('a version 1 database is upgraded in place: its queues and messages stay, links and logs work', async () => {
    const path = join(tempDir('nightjar-store-'), 'relay.sqlite');
    const q = newQueue();
    const m = message();
    const old = new Database(path);
    old.pragma('journal_mode = WAL');
    old.exec(VERSION_1);
    old.prepare('INSERT INTO queues (recipient_id, sender_id, recipient_key, queue_key, mode) VALUES (?, ?, ?, ?, 0)').run(q.recipientId, q.senderId, q.recipientKey, q.queueKey);
    old.prepare('INSERT INTO messages (recipient_id, msg_id, sealed, created_at) VALUES (?, ?, ?, ?)').run(q.recipientId, m.msgId, m.sealed, m.createdAt);
    old.close();

    const store = new SqliteQueueStore(path);
    assert.deepEqual((await store.byRecipientId(q.recipientId))?.senderId, q.senderId);
    assert.deepEqual(await store.peekMessage(q.recipientId, 0), m);
    const id = linkId();
    const data = linkData();
    assert.equal(await store.setLinkData(q.recipientId, id, data), 'ok');
    assert.deepEqual((await store.linkByLinkId(id))?.linkData, data);
    const log = newLog();
    await store.createQueue(log);
    assert.deepEqual(await appendMany(store, log.recipientId, 2), [1, 2]);
    assert.deepEqual(await store.stats(), { queues: 2, messages: 1, entries: 2, links: 1 });
    await store.close();

    const check = new Database(path, { readonly: true });
    assert.deepEqual(check.prepare('SELECT store, version FROM schema_versions').all(), [{ store: 'relay', version: 3 }], 'the upgrade is recorded');
    assert.equal(check.pragma('user_version', { simple: true }), 3, 'and kept in step where the release before the runner reads it');
    check.close();
    const again = new SqliteQueueStore(path);
    assert.deepEqual((await again.linkByLinkId(id))?.linkData, data, 'reopening an upgraded database changes nothing');
    await again.close();
  });

  test('a version 2 database (links, recorded by the runner) is upgraded in place to 3: queues, messages and links stay, logs work', async () => {
    const path = join(tempDir('nightjar-store-'), 'relay.sqlite');
    const q = newQueue();
    const m = message();
    const id = linkId();
    const data = linkData();
    const old = new Database(path);
    old.pragma('journal_mode = WAL');
    old.exec(VERSION_1);
    old.exec(`
      CREATE TABLE links (
        recipient_id BLOB PRIMARY KEY REFERENCES queues(recipient_id) ON DELETE CASCADE,
        link_id BLOB NOT NULL UNIQUE,
        link_data BLOB NOT NULL
      );
      CREATE TABLE schema_versions (store TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;
      INSERT INTO schema_versions VALUES ('relay', 2);
      PRAGMA user_version = 2;
    `);
    old.prepare('INSERT INTO queues (recipient_id, sender_id, recipient_key, queue_key, mode) VALUES (?, ?, ?, ?, 1)').run(q.recipientId, q.senderId, q.recipientKey, q.queueKey);
    old.prepare('INSERT INTO messages (recipient_id, msg_id, sealed, created_at) VALUES (?, ?, ?, ?)').run(q.recipientId, m.msgId, m.sealed, m.createdAt);
    old.prepare('INSERT INTO links (recipient_id, link_id, link_data) VALUES (?, ?, ?)').run(q.recipientId, id, data);
    old.close();

    const store = new SqliteQueueStore(path);
    assert.equal((await store.byRecipientId(q.recipientId))?.mode, 'contact');
    assert.deepEqual(await store.peekMessage(q.recipientId, 0), m);
    assert.deepEqual(await store.linkByLinkId(id), { linkData: data, status: 'active' });
    assert.equal(await store.appendEntry(q.recipientId, entry(), logOpts), 'auth', 'an old queue does not become a log');
    const log = newLog();
    await store.createQueue(log);
    assert.deepEqual(await appendMany(store, log.recipientId, 3), [1, 2, 3]);
    await store.close();
    const check = new Database(path, { readonly: true });
    assert.deepEqual(check.prepare('SELECT store, version FROM schema_versions').all(), [{ store: 'relay', version: 3 }]);
    assert.equal(check.pragma('user_version', { simple: true }), 3);
    check.close();
  });

  test('a database from a newer relay is refused', async () => {
    const path = join(tempDir('nightjar-store-'), 'relay.sqlite');
    const future = new Database(path);
    future.pragma('user_version = 99');
    future.close();
    assert.throws(() => new SqliteQueueStore(path), (e) => e instanceof MigrationError && e.code === 'NEWER' && e.store === 'relay' && e.version === 99);
    const recorded = join(tempDir('nightjar-store-'), 'relay.sqlite');
    await new SqliteQueueStore(recorded).close();
    const later = new Database(recorded);
    later.prepare("UPDATE schema_versions SET version = 4 WHERE store = 'relay'").run();
    later.close();
    assert.throws(() => new SqliteQueueStore(recorded), /relay database has schema version 4, newer than this Nightjar's \(3\)/);
  });
});
