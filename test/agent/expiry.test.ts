/**
 * Disappearing messages the agent holds itself: one held back behind a gap,
 * and one we sent kept for resending, are erased when their timer runs out,
 * from every file of the profile, and the held-back one still counts as
 * received (no gap opens where it was). Run on an unencrypted file with the
 * profile's own settings, so the test can search the bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3-multiple-ciphers';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentStore } from '../../src/agent/agent-store.js';
import { Sequencer } from '../../src/agent/gaps.js';
import { Outbox } from '../../src/agent/outbox.js';
import { Resender } from '../../src/agent/resend.js';
import { decodeBody, encodeBody } from '../../src/chat/body.js';
import { configureProfileDatabase, eraseOldVersions } from '../../src/chat/profile-db.js';
import { tempDir } from '../helpers/relay-process.js';
import { recorder } from '../helpers/agent-harness.js';

const onDisk = (dir: string, text: string): string[] => readdirSync(dir).filter((f) => readFileSync(join(dir, f)).includes(Buffer.from(text)));
const text = (t: string, ttl?: number): Uint8Array => encodeBody(ttl === undefined ? { type: 'text', text: t } : { type: 'text', text: t, ttl });

function setup() {
  const dir = tempDir('nightjar-expiry-');
  const db = new Database(join(dir, 'nightjar.db'));
  configureProfileDatabase(db);
  let ms = 1_800_000_000_000;
  const clock = (): number => ms;
  const store = new AgentStore(db, clock);
  store.insertConnection({ id: 'c1', status: 'ready', role: 'inviter', my_info: Buffer.alloc(0) });
  const events = recorder();
  // As the chat layer does it (Chat.expiryOf): the sender's timer from when it was sent.
  const handlers = { ...events, expiryOf: (body: Uint8Array, sentAt: number) => { const b = decodeBody(body); return b.type === 'text' && b.ttl !== undefined ? sentAt + b.ttl : undefined; } };
  const outbox = new Outbox(store);
  return { dir, db, store, events, sequencer: new Sequencer(store, handlers, outbox, clock), resender: new Resender(store, outbox, clock, handlers.expiryOf), tick: (s: number) => (ms += s * 1000), now: () => Math.floor(ms / 1000) };
}

test('a disappearing message held back behind a gap is erased when its time is up, and its seq still counts as received', () => {
  const t = setup();
  const secret = 'held back and meant to vanish';
  t.store.tx(() => t.sequencer.receive(t.store.connection('c1')!, 2, t.now(), text(secret, 30)));
  t.store.tx(() => t.sequencer.receive(t.store.connection('c1')!, 3, t.now(), text('no timer')));
  assert.ok(onDisk(t.dir, secret).length > 0, 'held on disk while it waits');
  t.tick(31);
  t.store.tx(() => t.resender.forgetOld());
  eraseOldVersions(t.db);
  assert.deepEqual(onDisk(t.dir, secret), []);
  // The missing seq 1 arrives: 1 and 3 reach the chat layer, 2 had disappeared, and nothing waits any more.
  t.store.tx(() => t.sequencer.receive(t.store.connection('c1')!, 1, t.now(), text('first')));
  assert.deepEqual(t.events.messages.get('c1')?.map((b) => JSON.parse(b).text), ['first', 'no timer']);
  assert.equal(t.store.connection('c1')!.recv_floor, 3);
  assert.equal(t.store.bufferState('c1'), undefined);
  t.db.close();
});

test('a disappearing message we sent is not kept for resending past its timer', () => {
  const t = setup();
  const secret = 'sent, kept, and meant to vanish';
  t.store.tx(() => t.resender.remember('c1', 1, t.now(), text(secret, 60)));
  t.store.tx(() => t.resender.remember('c1', 2, t.now(), text('kept longer')));
  t.tick(61);
  t.store.tx(() => t.resender.forgetOld());
  eraseOldVersions(t.db);
  assert.deepEqual(t.store.sentBetween('c1', 1, 2).map((r) => r.seq), [2]);
  assert.deepEqual(onDisk(t.dir, secret), []);
  t.db.close();
});
