// test-file-timeout: 240
/**
 * The push window (protocol version 4, docs/protocol.md §9.5) over real TLS
 * on loopback: a relay in-process for the window's rules, a relay process
 * killed and restarted for durability, raw connections that negotiate
 * version 3 or send bytes the client would refuse to encode, and a
 * version 3 stand-in to check what the client sends to an older relay.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RelayClient } from '../../src/client/relay-client.js';
import { RelayError } from '../../src/client/errors.js';
import type { RecipientQueue, SenderQueue } from '../../src/client/queues.js';
import { generateSigningKeyPair, sign } from '../../src/crypto/keys.js';
import { randomBytes } from '../../src/crypto/random.js';
import type { RelayAddress } from '../../src/protocol/address.js';
import { encodeBatch } from '../../src/protocol/block.js';
import { encodeCommand, type Response } from '../../src/protocol/commands.js';
import { encodeTransmission, encodeTransmissionBody, signedData } from '../../src/protocol/transmission.js';
import { LINK_DATA_VERSION, PUSH_WINDOW_VERSION } from '../../src/protocol/version.js';
import { DATABASE_FILE } from '../../src/relay/server.js';
import Database from 'better-sqlite3-multiple-ciphers';
import { join } from 'node:path';
import { Inbox, str, text } from '../helpers/inbox.js';
import { startRelayProcess, type RelayProcess } from '../helpers/relay-process.js';
import { startVersion2Relay } from '../helpers/version2-relay.js';
import { rawConnection } from '../helpers/raw-session.js';
import { inProcessRelay } from '../helpers/in-process-relay.js';

/** Long enough for pushes the relay should not make to arrive if it made them. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 250));
const bodies = (inbox: Inbox, from = 0): string[] => inbox.all.slice(from).map((d) => str(d.message.body));
const noMsg = (e: unknown): boolean => e instanceof RelayError && e.code === 'NO_MSG';

/** A recipient client with a secured queue, and a sender client that sends "m0", "m1", ... in order. */
async function pair(address: string | RelayAddress, clients: RelayClient[]) {
  const recipient = await RelayClient.connect(address);
  const sender = await RelayClient.connect(address);
  clients.push(recipient, sender);
  const inbox = new Inbox(recipient);
  const queue = await recipient.createQueue();
  const keys = generateSigningKeyPair();
  await recipient.secureQueue(queue, keys.publicKey);
  const sq: SenderQueue = { relay: queue.relay, senderId: queue.senderId, senderKey: keys.privateKey };
  let next = 0;
  const send = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await sender.send(sq, text(`m${next++}`));
  };
  const ackBody = (body: string): Promise<void> => {
    const d = inbox.all.find((x) => str(x.message.body) === body);
    assert.ok(d, `${body} was pushed`);
    return recipient.ack(queue, d.message.msgId);
  };
  return { recipient, sender, inbox, queue, send, ackBody };
}

/**
 * A connection that speaks the handshake itself, so that it can negotiate
 * any version and send bytes that encodeCommand refuses.
 */
async function rawSession(address: RelayAddress, version: number) {
  const { socket, binding, received, more } = await rawConnection(address, version);
  let corr = 0;
  return {
    received,
    pushes: (): Response[] => received.filter((r) => r.corrId.length === 0).map((r) => r.response),
    /** Sends `command` (raw bytes) on `queue`, signed by its key; resolves with the answer. */
    async request(queue: RecipientQueue, command: Uint8Array): Promise<Response> {
      const corrId = Uint8Array.of(++corr);
      const body = encodeTransmissionBody(corrId, queue.recipientId, command);
      socket.write(encodeBatch([encodeTransmission(sign(queue.recipientKey, signedData(binding, body)), body)]));
      for (;;) {
        const answer = received.find((r) => r.corrId.length === 1 && r.corrId[0] === corrId[0]);
        if (answer) return answer.response;
        await more();
      }
    },
    close: () => socket.destroy(),
  };
}

describe('push window, relay in-process', () => {
  const fixture = inProcessRelay();
  const { clients } = fixture;

  test('the window fills to W in order and no further until an ACK; each ACK tops it up', async () => {
    const p = await pair(fixture.relay.address, clients);
    await p.recipient.subscribe(p.queue, { window: 4 });
    await p.send(10);
    await p.inbox.waitForCount(4);
    await settle();
    assert.deepEqual(bodies(p.inbox), ['m0', 'm1', 'm2', 'm3'], 'four pushed, oldest first, none beyond the window');
    await p.ackBody('m0');
    await p.inbox.waitForCount(5);
    await settle();
    assert.deepEqual(bodies(p.inbox), ['m0', 'm1', 'm2', 'm3', 'm4'], 'one ACK, one more push');
    await Promise.all(['m1', 'm2', 'm3', 'm4'].map((b) => p.ackBody(b)));
    await p.inbox.waitForCount(9);
    await settle();
    assert.deepEqual(bodies(p.inbox, 5), ['m5', 'm6', 'm7', 'm8']);
    await Promise.all(['m5', 'm6', 'm7', 'm8'].map((b) => p.ackBody(b)));
    await p.inbox.waitForCount(10);
    await p.ackBody('m9');
    assert.equal(await p.recipient.get(p.queue), null, 'every message acknowledged is deleted');
    assert.equal(p.inbox.all.length, 10, 'each pushed once');
  });

  test('an ACK out of order deletes exactly that message and tops up; a new SUB redelivers the rest from the oldest', async () => {
    const p = await pair(fixture.relay.address, clients);
    await p.recipient.subscribe(p.queue, { window: 3 });
    await p.send(5);
    await p.inbox.waitForCount(3);
    await p.ackBody('m1');
    await p.inbox.waitForCount(4);
    await settle();
    assert.deepEqual(bodies(p.inbox), ['m0', 'm1', 'm2', 'm3']);
    await assert.rejects(p.ackBody('m1'), noMsg, 'deleted once, not again');
    const oldest = await p.recipient.get(p.queue);
    assert.equal(str(oldest!.body), 'm0', 'the oldest is untouched');

    await p.recipient.subscribe(p.queue, { window: 3 }); // a repeated SUB starts again from the oldest
    await p.inbox.waitForCount(7);
    await settle();
    assert.deepEqual(bodies(p.inbox, 4), ['m0', 'm2', 'm3'], 'every unacknowledged one again, in order; not the acknowledged one');
    // ACKs in reverse order within the window.
    for (const b of ['m3', 'm2', 'm0']) await p.ackBody(b);
    await p.inbox.waitForCount(8);
    assert.deepEqual(bodies(p.inbox, 7), ['m4']);
    await p.ackBody('m4');
    assert.equal(await p.recipient.get(p.queue), null);
  });

  test('GET and an ACK after GET keep their meaning on a subscribed queue', async () => {
    const p = await pair(fixture.relay.address, clients);
    await p.recipient.subscribe(p.queue, { window: 2 });
    await p.send(3);
    await p.inbox.waitForCount(2);
    const got = await p.recipient.get(p.queue);
    assert.equal(str(got!.body), 'm0', 'GET returns the oldest, whatever is in flight');
    await p.recipient.ack(p.queue, got!.msgId);
    await p.inbox.waitForCount(3);
    assert.deepEqual(bodies(p.inbox), ['m0', 'm1', 'm2']);
    await assert.rejects(p.recipient.ack(p.queue, randomBytes(24)), noMsg, 'an ACK of a message not in flight and not the oldest is NO_MSG');
  });

  test('a subscription without a window, and a version 3 connection, get one message at a time as before', async () => {
    const p = await pair(fixture.relay.address, clients);
    await p.recipient.subscribe(p.queue); // the default: bare SUB
    await p.send(3);
    await p.inbox.waitForCount(1);
    await settle();
    assert.deepEqual(bodies(p.inbox), ['m0']);
    await p.ackBody('m0');
    await p.inbox.waitForCount(2);
    await settle();
    assert.deepEqual(bodies(p.inbox), ['m0', 'm1']);

    // The same queue from a connection that negotiated version 3: a window is a syntax error there.
    const v3 = await rawSession(fixture.relay.address, LINK_DATA_VERSION);
    try {
      assert.deepEqual(await v3.request(p.queue, encodeCommand({ type: 'SUB', window: 8 })), { type: 'ERR', code: 'CMD_SYNTAX' });
      assert.deepEqual(await v3.request(p.queue, encodeCommand({ type: 'SUB' })), { type: 'OK' });
      await settle();
      const pushed = v3.pushes().filter((r) => r.type === 'MSG');
      assert.equal(pushed.length, 1, 'one in flight on version 3');
      await p.send(2);
      await settle();
      assert.equal(v3.pushes().filter((r) => r.type === 'MSG').length, 1, 'still one');
      const first = pushed[0]!;
      assert.equal(first.type, 'MSG');
      assert.deepEqual(await v3.request(p.queue, encodeCommand({ type: 'ACK', msgId: first.type === 'MSG' ? first.msgId : new Uint8Array(24) })), { type: 'OK' });
      await settle();
      assert.equal(v3.pushes().filter((r) => r.type === 'MSG').length, 2, 'the next after the ACK');
    } finally {
      v3.close();
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(p.inbox.all.length, 2, 'the first subscriber got END and no more pushes');
  });

  test('a window outside 1..32 is refused with a typed error and subscribes nothing', async () => {
    const p = await pair(fixture.relay.address, clients);
    for (const window of [0, 33, 1.5]) {
      await assert.rejects(p.recipient.subscribe(p.queue, { window }), RangeError, `client refuses window ${window}`);
    }
    assert.equal(p.recipient.subscriptionCount, 0);
    const v4 = await rawSession(fixture.relay.address, PUSH_WINDOW_VERSION);
    try {
      for (const w of [0, 33, 255]) {
        assert.deepEqual(await v4.request(p.queue, Uint8Array.from([...Buffer.from('SUB '), w])), { type: 'ERR', code: 'CMD_SYNTAX' }, `window ${w}`);
      }
      assert.deepEqual(await v4.request(p.queue, Buffer.from('SUB ')), { type: 'ERR', code: 'CMD_SYNTAX' }, 'no window after the space');
      await p.send(1);
      await settle();
      assert.deepEqual(v4.pushes(), [], 'no subscription was made');
      assert.deepEqual(await v4.request(p.queue, Uint8Array.from([...Buffer.from('SUB '), 32])), { type: 'OK' }, 'and 32 is allowed');
      await settle();
      assert.equal(v4.pushes().length, 1);
    } finally {
      v4.close();
    }
  });
});

test('the client subscribes a version 3 relay without a window', async () => {
  const old = await startVersion2Relay('127.0.0.1', LINK_DATA_VERSION);
  const c = await RelayClient.connect(old.address, { reconnect: false });
  try {
    const queue: RecipientQueue = { relay: old.address, recipientId: randomBytes(24), senderId: randomBytes(24), recipientKey: generateSigningKeyPair().privateKey, queueKey: randomBytes(32) };
    await c.subscribe(queue, { window: 8 });
    assert.deepEqual(old.commands, [{ type: 'SUB' }], 'a bare SUB, the only one version 3 knows');
  } finally {
    await c.close();
    await old.close();
  }
});

test('messages in flight survive a relay restart and are pushed again, in order, after the client resubscribes', async () => {
  let relay: RelayProcess = await startRelayProcess();
  const clients: RelayClient[] = [];
  try {
    const p = await pair(relay.address, clients);
    await p.recipient.subscribe(p.queue, { window: 4 });
    await p.send(6);
    await p.inbox.waitForCount(4);
    await p.ackBody('m1'); // one acknowledged out of order before the crash
    await p.inbox.waitForCount(5);
    const reconnected = new Promise<void>((resolve) => p.recipient.once('reconnected', resolve));
    await relay.stop('SIGKILL');
    relay = await startRelayProcess({ dataDir: relay.dataDir, port: relay.port });
    await reconnected;
    await p.inbox.waitForCount(9);
    await settle();
    assert.deepEqual(bodies(p.inbox, 5), ['m0', 'm2', 'm3', 'm4'], 'the four in flight again, oldest first; m1 stayed deleted');
    for (const b of ['m4', 'm0', 'm2', 'm3']) await p.recipient.ack(p.queue, p.inbox.all.slice(5).find((d) => str(d.message.body) === b)!.message.msgId);
    await p.inbox.waitForCount(10);
    assert.deepEqual(bodies(p.inbox, 9), ['m5']);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await relay.stop();
  }
});

test('after a reconnection the client keeps up the subscriptions the relay takes again, and drops one it refuses', async () => {
  let relay: RelayProcess = await startRelayProcess();
  const client = await RelayClient.connect(relay.address);
  try {
    const kept = await client.createQueue();
    const gone = await client.createQueue();
    await client.subscribe(kept, { window: 4 });
    await client.subscribe(gone, { window: 4 });
    assert.ok(client.isSubscribed(kept) && client.isSubscribed(gone));
    const reconnected = new Promise<void>((resolve) => client.once('reconnected', resolve));
    await relay.stop();
    // While the relay is down, one of the queues disappears from its store.
    const db = new Database(join(relay.dataDir, DATABASE_FILE));
    db.prepare('DELETE FROM queues WHERE recipient_id = ?').run(Buffer.from(gone.recipientId));
    db.close();
    relay = await startRelayProcess({ dataDir: relay.dataDir, port: relay.port });
    await reconnected;
    assert.equal(client.isSubscribed(kept), true, 'taken again by the relay');
    assert.equal(client.isSubscribed(gone), false, 'refused (AUTH): no longer kept up, so the agent knows to look again');
  } finally {
    await client.close();
    await relay.stop();
  }
});
