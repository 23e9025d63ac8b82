/** `devices join --history`: a new device gets old messages' rows without their text, and no view shows them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3-multiple-ciphers';
import { AgentStore } from '../../src/agent/agent-store.js';
import { restoreSnapshot, takeSnapshot } from '../../src/agent/devices/snapshot.js';
import { Chat } from '../../src/chat/chat.js';
import { pruneHistoryBefore } from '../../src/chat/history-prune.js';

function profile(): Database.Database {
  const db = new Database(':memory:');
  Chat.initialize(db, 'Alice', () => 1_800_000_000);
  Chat.open(db);
  new AgentStore(db);
  return db;
}

test('messages sent before the cutoff keep their rows (IDs, seqs, marks) and lose their text; the views show only the rest', () => {
  const from = profile();
  from.prepare("INSERT INTO chat_contacts (id, connection_id, origin, status, display_name, created_at) VALUES (3, 'c1', 'invite', 'ready', 'Bob', 1800000000)").run();
  const add = from.prepare("INSERT INTO chat_messages (contact_id, direction, kind, seq, text, sent_at, received_at) VALUES (3, ?, ?, ?, ?, ?, ?)");
  add.run('in', 'event', null, 'connected', 1_000, 1_000);
  for (let i = 1; i <= 10; i++) add.run(i % 2 ? 'in' : 'out', 'text', i, `message ${i}`, 1_000 + i * 100, i % 2 ? 1_000 + i * 100 : null);
  const cutoff = 1_000 + 6 * 100; // messages 1..5 are older
  const to = profile();
  restoreSnapshot(to, takeSnapshot(from, 1, 12_000, pruneHistoryBefore(cutoff)));

  const rows = (db: Database.Database): { id: number; seq: number | null; text: string; pruned: number; read_at: number | null }[] =>
    db.prepare('SELECT id, seq, text, pruned, read_at FROM chat_messages ORDER BY id').all() as never;
  const before = rows(from);
  const after = rows(to);
  assert.deepEqual(after.map((r) => [r.id, r.seq, r.read_at]), before.map((r) => [r.id, r.seq, r.read_at]), 'every row is there, with its ID, seq and marks');
  assert.deepEqual(after.filter((r) => r.pruned === 1).map((r) => r.seq), [1, 2, 3, 4, 5]);
  assert.ok(after.filter((r) => r.pruned === 1).every((r) => r.text === ''), 'their text is not on the new device');
  assert.equal(after[0]!.text, 'connected', 'events are kept');

  const chat = Chat.open(to);
  const bob = chat.contacts()[0]!;
  assert.deepEqual(chat.history(bob, 100).filter((m) => m.kind === 'text').map((m) => m.text), ['message 6', 'message 7', 'message 8', 'message 9', 'message 10']);
  assert.deepEqual(chat.unread().map((m) => m.text), ['connected', 'message 7', 'message 9'], 'an old unread message is not shown as unread either');
  // Without a rewrite the snapshot carries every text.
  const whole = profile();
  restoreSnapshot(whole, takeSnapshot(from, 1, 12_000));
  assert.deepEqual(rows(whole), before);
});
