/** The Chat class over a real SQLite database and a fake agent: contacts, messages, receipts, timers, requests. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3-multiple-ciphers';
import { decodeBody, encodeBody, encodePeerInfo, type ChatBody } from '../../src/chat/body.js';
import { Chat } from '../../src/chat/chat.js';
import { ChatError, type ChatErrorCode } from '../../src/chat/errors.js';
import type { ChatEvent } from '../../src/chat/incoming.js';
import { FakeAgent } from './fake-agent.js';

const code = (c: ChatErrorCode) => (e: unknown) => e instanceof ChatError && e.code === c;

function setup(name = 'Alice') {
  const db = new Database(':memory:');
  let now = 1_700_000_000;
  const clock = { tick: (s: number) => (now += s), now: () => now };
  Chat.initialize(db, name, clock.now);
  const chat = Chat.open(db, clock.now);
  const agent = new FakeAgent(db);
  chat.attach(agent);
  return { db, chat, agent, clock };
}

/** An invitation that someone used: a ready contact named `name`. */
async function readyContact(chat: Chat, agent: FakeAgent, name: string) {
  const { contact } = await chat.invite();
  agent.status.set(contact.connectionId, 'ready');
  chat.onConnected(contact.connectionId, encodePeerInfo({ name }));
  return chat.store.contact(contact.id)!;
}

const incoming = (seq: number, body: ChatBody, sentAt = 1_700_000_000) => ({ seq, body: encodeBody(body), sentAt });
const lastSent = (agent: FakeAgent) => decodeBody(agent.sent.at(-1)!.body);

test('an invitation is a pending contact until the handshake brings the peer name', async () => {
  const { chat, agent } = setup();
  const { contact, link } = await chat.invite();
  assert.match(link, /^nightjar:invite#/);
  assert.equal(contact.status, 'pending');
  assert.equal(contact.origin, 'invite');
  await assert.rejects(chat.send(contact, 'too early'), code('CONTACT_NOT_READY'));
  agent.status.set(contact.connectionId, 'ready');
  chat.onConnected(contact.connectionId, encodePeerInfo({ name: 'Bob' }));
  const bob = chat.find('bob');
  assert.equal(bob.status, 'ready');
  assert.equal(bob.displayName, 'Bob');
  const unread = chat.unread(bob);
  assert.deepEqual(
    unread.map((m) => [m.kind, m.text]),
    [['event', 'connected']],
  );
  // a repeated onConnected adds nothing
  chat.onConnected(contact.connectionId, encodePeerInfo({ name: 'Bob' }));
  assert.equal(chat.history(bob).length, 1);
});

test('our profile goes to the agent as peer info', async () => {
  const { chat, db } = setup('Alice Liddell');
  const seen: Uint8Array[] = [];
  const agent = new FakeAgent(db);
  agent.prepareInvitation = async (myInfo: Uint8Array) => {
    seen.push(myInfo);
    return { prepared: new TextEncoder().encode('invited c1'), link: 'nightjar:invite#x' };
  };
  chat.attach(agent);
  await chat.invite();
  assert.equal(new TextDecoder().decode(seen[0]), '{"v":1,"name":"Alice Liddell"}');
});

test('sending stores the message with the agent seq; sent, delivered and read marks follow', async () => {
  const { chat, agent, clock } = setup();
  const bob = await readyContact(chat, agent, 'Bob');
  const m1 = await chat.send(bob, 'hello');
  const m2 = await chat.send(bob, 'second');
  assert.equal(m1.seq, 1);
  assert.equal(m2.seq, 2);
  assert.equal(m1.status, 'queued');
  assert.deepEqual(lastSent(agent), { type: 'text', text: 'second' });
  clock.tick(1);
  chat.onSent(bob.connectionId, 1);
  assert.equal(chat.message(m1.id)!.status, 'sent');
  chat.onDelivered(bob.connectionId, 1);
  chat.onDelivered(bob.connectionId, 2); // delivery before the relay's OK was seen implies it
  assert.equal(chat.message(m1.id)!.status, 'delivered');
  assert.equal(chat.message(m2.id)!.status, 'delivered');
  assert.notEqual(chat.message(m2.id)!.relayAt, null);
  chat.onMessage(bob.connectionId, incoming(1, { type: 'read', upTo: 1 }));
  assert.equal(chat.message(m1.id)!.status, 'read');
  assert.equal(chat.message(m2.id)!.status, 'delivered');
  // receipts for seqs that are not chat messages (our own receipts) are ignored
  chat.onSent(bob.connectionId, 99);
  chat.onDelivered('no-such-connection', 1);
});

test('empty and oversized messages are refused before reaching the agent', async () => {
  const { chat, agent } = setup();
  const bob = await readyContact(chat, agent, 'Bob');
  await assert.rejects(chat.send(bob, '   '), code('BAD_INPUT'));
  agent.maxBodyLength = 100;
  await assert.rejects(chat.send(bob, 'x'.repeat(200)), code('BAD_INPUT'));
  assert.equal(agent.sent.length, 0);
  assert.equal(chat.history(bob).filter((m) => m.kind === 'text').length, 0);
});

test('incoming messages are stored once, shown as unread, and reading them sends one receipt', async () => {
  const { chat, agent } = setup();
  const bob = await readyContact(chat, agent, 'Bob');
  await chat.markRead(chat.unread(bob)); // the "connected" event
  chat.onMessage(bob.connectionId, incoming(1, { type: 'text', text: 'one' }));
  chat.onMessage(bob.connectionId, incoming(2, { type: 'text', text: 'two' }));
  chat.onMessage(bob.connectionId, incoming(2, { type: 'text', text: 'two' })); // duplicate seq
  const unread = chat.unread();
  assert.deepEqual(
    unread.map((m) => m.text),
    ['one', 'two'],
  );
  await chat.markRead(unread);
  assert.deepEqual(lastSent(agent), { type: 'read', upTo: 2 });
  assert.equal(chat.unread().length, 0);
  assert.equal(chat.history(bob).at(-1)!.status, 'read');
  const receipts = agent.sent.length;
  await chat.markRead(chat.history(bob)); // nothing new: no second receipt
  assert.equal(agent.sent.length, receipts);
});

test('a disappearing timer is sent to the contact and applies to both sides', async () => {
  const { chat, agent, clock } = setup();
  const bob = await readyContact(chat, agent, 'Bob');
  const updated = await chat.setTimer(bob, 60);
  assert.equal(updated.ttlSeconds, 60);
  assert.deepEqual(lastSent(agent), { type: 'timer', ttl: 60 });
  const mine = await chat.send(updated, 'self-destructs');
  assert.deepEqual(lastSent(agent), { type: 'text', text: 'self-destructs', ttl: 60 });
  assert.equal(mine.expiresAt, mine.sentAt + 60);
  chat.onMessage(bob.connectionId, incoming(1, { type: 'text', text: 'theirs', ttl: 30 }, clock.now()));
  chat.onMessage(bob.connectionId, incoming(2, { type: 'text', text: 'forever' }, clock.now()));
  assert.equal(chat.nextExpiry(), clock.now() + 30);
  clock.tick(29);
  assert.equal(chat.deleteExpired(), 0);
  clock.tick(1);
  assert.equal(chat.deleteExpired(), 1); // theirs
  clock.tick(30);
  assert.equal(chat.deleteExpired(), 1); // mine
  assert.deepEqual(
    chat.history(bob).filter((m) => m.kind === 'text').map((m) => m.text),
    ['forever'],
  );
  // a sender clock ahead of ours does not extend the lifetime
  chat.onMessage(bob.connectionId, incoming(3, { type: 'text', text: 'future', ttl: 10 }, clock.now() + 10_000));
  clock.tick(10);
  assert.equal(chat.deleteExpired(), 1);
});

test('timer changes from the contact update the contact and show as events', async () => {
  const { chat, agent } = setup();
  const bob = await readyContact(chat, agent, 'Bob');
  chat.onMessage(bob.connectionId, incoming(1, { type: 'timer', ttl: 3600 }));
  assert.equal(chat.find('Bob').ttlSeconds, 3600);
  chat.onMessage(bob.connectionId, incoming(2, { type: 'timer', ttl: null }));
  assert.equal(chat.find('Bob').ttlSeconds, null);
  assert.deepEqual(
    chat.unread(bob).map((m) => m.text),
    ['connected', 'Bob set disappearing messages to 1h', 'Bob turned disappearing messages off'],
  );
  chat.onMessage(bob.connectionId, { seq: 3, body: new TextEncoder().encode('{"v":9}'), sentAt: 1 });
  assert.equal(chat.unread(bob).at(-1)!.text, 'a message this version of Nightjar cannot show');
});

test('a time from a contact that is no sane number is stored as the time it arrived; history still converts', async () => {
  const { chat, agent, clock } = setup();
  const bob = await readyContact(chat, agent, 'Bob');
  const hostile = [2 ** 64 - 1, Number.MAX_SAFE_INTEGER, 2 ** 40, -5, Number.NaN, 1.5];
  hostile.forEach((sentAt, i) => chat.onMessage(bob.connectionId, { seq: i + 1, body: encodeBody({ type: 'text', text: `m${i}`, ttl: 60 }), sentAt }));
  const texts = chat.history(bob).filter((m) => m.kind === 'text');
  assert.deepEqual(texts.map((m) => [m.sentAt, m.expiresAt]), hostile.map(() => [clock.now(), clock.now() + 60]));
  for (const m of texts) assert.ok(!Number.isNaN(new Date(m.sentAt * 1000).getTime()));
});

test('messages the agent gave up on show as one event line where they were missing', async () => {
  const { chat, agent } = setup();
  const bob = await readyContact(chat, agent, 'Bob');
  chat.onMessage(bob.connectionId, incoming(1, { type: 'text', text: 'one' }));
  chat.onMessagesLost(bob.connectionId, { fromSeq: 2, toSeq: 2 });
  chat.onMessage(bob.connectionId, incoming(3, { type: 'text', text: 'three' }));
  chat.onMessagesLost(bob.connectionId, { fromSeq: 4, toSeq: 6 });
  chat.onMessage(bob.connectionId, incoming(7, { type: 'text', text: 'seven' }));
  assert.deepEqual(
    chat.unread(bob).map((m) => [m.kind, m.text]),
    [
      ['event', 'connected'],
      ['text', 'one'],
      ['event', '1 message could not be delivered'],
      ['text', 'three'],
      ['event', '3 messages could not be delivered'],
      ['text', 'seven'],
    ],
  );
  chat.onMessagesLost('no such connection', { fromSeq: 1, toSeq: 1 }); // nothing to show it on: ignored
});

test('contacts are found by #id, alias, display name or unique prefix', async () => {
  const { chat, agent } = setup();
  const bob = await readyContact(chat, agent, 'Bob');
  const bobby = await readyContact(chat, agent, 'Bobby Tables');
  const carol = await readyContact(chat, agent, 'Carol');
  assert.equal(chat.find('bob').id, bob.id); // exact name beats a prefix of another
  assert.equal(chat.find('bobby').id, bobby.id);
  assert.equal(chat.find('CAR').id, carol.id);
  assert.equal(chat.find(`#${carol.id}`).id, carol.id);
  assert.throws(() => chat.find('bo'), code('AMBIGUOUS_CONTACT'));
  assert.throws(() => chat.find('dave'), code('UNKNOWN_CONTACT'));
  assert.throws(() => chat.find('#99'), code('UNKNOWN_CONTACT'));
  assert.throws(() => chat.find(''), code('UNKNOWN_CONTACT'));
  await chat.setAlias(bobby, 'Little Bob');
  assert.equal(chat.find('little').id, bobby.id);
  assert.equal(chat.find('Bobby Tables').id, bobby.id); // the display name still works
  await assert.rejects(chat.setAlias(bob, 'little bob'), code('BAD_INPUT'));
  await assert.rejects(chat.setAlias(bob, '#2'), code('BAD_INPUT'));
  assert.equal((await chat.setAlias(bobby, null)).alias, null);
});

test('contact requests: stored with the name, accepted into a contact or rejected', async () => {
  const { chat, agent } = setup();
  const events: ChatEvent[] = [];
  chat.listen((e) => events.push(e));
  const { addressId } = await chat.createAddress();
  chat.onRequest({ requestId: 'r1', addressId, peerInfo: encodePeerInfo({ name: 'Dave' }), receivedAt: 5 });
  chat.onRequest({ requestId: 'r1', addressId, peerInfo: encodePeerInfo({ name: 'Dave' }), receivedAt: 5 }); // again: ignored
  chat.onRequest({ requestId: 'r2', addressId, peerInfo: new Uint8Array([1, 2]), receivedAt: 6 });
  assert.deepEqual(
    chat.requests().map((r) => [r.n, r.displayName]),
    [
      [1, 'Dave'],
      [2, null],
    ],
  );
  const dave = await chat.accept(1);
  assert.equal(dave.displayName, 'Dave');
  assert.equal(dave.status, 'pending');
  assert.equal(dave.origin, 'request');
  assert.equal((await chat.reject(2)).requestId, 'r2');
  assert.deepEqual(agent.rejected, ['r2']);
  assert.deepEqual(chat.requests(), []);
  await assert.rejects(chat.accept(1), code('UNKNOWN_REQUEST'));
  await assert.rejects(chat.reject(7), code('UNKNOWN_REQUEST'));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(
    events.filter((e) => e.type === 'request'),
    [
      { type: 'request', n: 1 },
      { type: 'request', n: 2 },
    ],
  );
  // deleting the address drops its pending requests, not the contacts
  chat.onRequest({ requestId: 'r3', addressId, peerInfo: encodePeerInfo({ name: 'Eve' }), receivedAt: 7 });
  await chat.deleteAddress(addressId);
  assert.deepEqual(chat.requests(), []);
  assert.equal(chat.find('dave').id, dave.id);
});

test('deleting a contact deletes the connection and the whole history', async () => {
  const { chat, agent, db } = setup();
  const bob = await readyContact(chat, agent, 'Bob');
  await chat.send(bob, 'hello');
  chat.onMessage(bob.connectionId, incoming(1, { type: 'text', text: 'hi' }));
  await chat.deleteContact(bob);
  assert.deepEqual(agent.deleted, [bob.connectionId]);
  assert.throws(() => chat.find('bob'), code('UNKNOWN_CONTACT'));
  assert.equal(db.prepare('SELECT count(*) FROM chat_messages').pluck().get(), 0);
});

test('when the contact deletes us, the contact stays readable but cannot be written to', async () => {
  const { chat, agent } = setup();
  const bob = await readyContact(chat, agent, 'Bob');
  chat.onDeleted(bob.connectionId);
  chat.onDeleted(bob.connectionId);
  const gone = chat.find('bob');
  assert.equal(gone.status, 'left');
  assert.equal(chat.unread(gone).at(-1)!.text, 'Bob deleted this contact');
  await assert.rejects(chat.send(gone, 'hello?'), code('CONTACT_NOT_READY'));
  await chat.markRead(chat.unread(gone)); // no receipt to a contact that left
  assert.equal(agent.sent.length, 0);
});

test('handler writes roll back with the agent transaction, and listeners hear only committed changes', async () => {
  const { chat, agent, db } = setup();
  const bob = await readyContact(chat, agent, 'Bob');
  const events: ChatEvent[] = [];
  const seen: string[] = [];
  chat.listen((e) => {
    events.push(e);
    const m = e.type === 'message' ? chat.message(e.messageId) : undefined;
    if (m) seen.push(m.text); // listeners re-read the row: a rolled-back one is simply not there
  });
  assert.throws(
    db.transaction(() => {
      chat.onMessage(bob.connectionId, incoming(1, { type: 'text', text: 'rolled back' }));
      throw new Error('ratchet step failed');
    }),
    /ratchet step failed/,
  );
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(seen, []); // the rolled-back row is not announced
  assert.throws(
    db.transaction(() => {
      chat.onMessage(bob.connectionId, incoming(1, { type: 'text', text: 'rolled back' }));
      throw new Error('ratchet step failed');
    }),
    /ratchet step failed/,
  );
  db.transaction(() => chat.onMessage(bob.connectionId, incoming(1, { type: 'text', text: 'committed' })))(); // same row ID again
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(seen, ['committed']);
  assert.deepEqual(
    chat.unread(bob).map((m) => m.text),
    ['connected', 'committed'],
  );
});

test('rotate asks the agent, only for contacts that can carry messages', async () => {
  const { chat, agent } = setup();
  const bob = await readyContact(chat, agent, 'Bob');
  await chat.rotate(bob, 'nightjar://x@h:1');
  assert.deepEqual(agent.rotated, [{ connectionId: bob.connectionId, relay: 'nightjar://x@h:1' }]);
  const { contact } = await chat.invite();
  await assert.rejects(chat.rotate(contact), code('CONTACT_NOT_READY'));
});

test('an unused invitation is withdrawn when it expires, and stays out of contacts unless asked for', async () => {
  const { chat, agent, clock } = setup();
  const { contact } = await chat.invite(60);
  assert.equal(contact.expiresAt, clock.now() + 60);
  assert.deepEqual(chat.contacts(), []);
  assert.deepEqual(chat.contacts({ all: true }).map((c) => c.id), [contact.id]);
  clock.tick(59);
  assert.equal(await chat.expireInvitations(), 0);
  clock.tick(2);
  assert.equal(await chat.expireInvitations(), 1);
  assert.deepEqual(chat.contacts({ all: true }), []);
  assert.deepEqual(agent.deleted, [contact.connectionId], 'its queue is deleted through the agent');
  // the default is 7 days
  const { contact: week } = await chat.invite();
  assert.equal(week.expiresAt, clock.now() + 7 * 24 * 3600);
});

test('a name that arrives during the handshake shows the contact, lets messages be queued, and stops the invitation expiring', async () => {
  const { chat, agent, clock } = setup();
  const { contact } = await chat.invite(60);
  agent.status.set(contact.connectionId, 'accepting'); // Bob's join arrived; the handshake is not finished
  chat.onPeerInfo(contact.connectionId, encodePeerInfo({ name: 'Bob' }));
  const bob = chat.find('bob');
  assert.deepEqual([bob.status, bob.displayName, bob.expiresAt], ['pending', 'Bob', null]);
  assert.deepEqual(chat.contacts().map((c) => c.displayName), ['Bob'], 'listed without --all');
  assert.equal(chat.isConnected(bob), false);
  const m = await chat.send(bob, 'written early');
  assert.equal(m.status, 'queued');
  assert.equal(agent.sent.length, 1);
  clock.tick(3600);
  assert.equal(await chat.expireInvitations(), 0, 'someone used it: it does not expire');
  // A contact whose side has not answered at all cannot be written to.
  const { contact: unused } = await chat.invite();
  await assert.rejects(chat.send(unused, 'hello?'), code('CONTACT_NOT_READY'));
});

test('a read mark carries its receipts: where the operation lands, a message that already disappeared on that device still gets the same receipt', async () => {
  const { chat, agent, db } = setup();
  const bob = await readyContact(chat, agent, 'Bob');
  chat.onMessage(bob.connectionId, incoming(1, { type: 'text', text: 'gone soon', ttl: 5 }));
  chat.onMessage(bob.connectionId, incoming(2, { type: 'text', text: 'gone soon too', ttl: 5 }));
  const shown = chat.unread(bob);
  // Another device's clock deleted them before this device applied the read mark it proposed.
  db.prepare('DELETE FROM chat_messages WHERE contact_id = ?').run(bob.id);
  const before = agent.sent.length;
  await chat.markRead(shown);
  assert.equal(agent.sent.length, before + 1);
  assert.deepEqual(lastSent(agent), { type: 'read', upTo: 2 });
  assert.equal(chat.store.contact(bob.id)!.readSentUpTo, 2);
});
