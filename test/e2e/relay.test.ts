/**
 * The relay protocol end to end: a real relay process, real TLS clients.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RelayClient } from '../../src/client/relay-client.js';
import { ConnectionError, RelayError } from '../../src/client/errors.js';
import type { RecipientQueue } from '../../src/client/queues.js';
import { generateSigningKeyPair } from '../../src/crypto/keys.js';
import { formatAddress, parseAddress } from '../../src/protocol/address.js';
import { startRelayProcess, type RelayProcess } from '../helpers/relay-process.js';
import { Inbox, str, text } from '../helpers/inbox.js';

function rejectsWith(code: string): (e: unknown) => boolean {
  return (e) => e instanceof RelayError && e.code === code;
}

describe('relay end to end', () => {
  let relay: RelayProcess;
  const clients: RelayClient[] = [];
  const connect = async (address = relay.address): Promise<RelayClient> => {
    const c = await RelayClient.connect(address);
    clients.push(c);
    return c;
  };

  before(async () => {
    relay = await startRelayProcess();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await relay.stop();
  });

  test('create, secure, send, subscribe, receive, acknowledge', async () => {
    const recipient = await connect();
    const sender = await connect();
    const inbox = new Inbox(recipient);
    const queue = await recipient.createQueue();
    assert.equal(queue.recipientId.length, 24);
    assert.equal(queue.senderId.length, 24);
    assert.notDeepEqual(queue.recipientId, queue.senderId);

    // The sender's one unsigned confirmation carries its key; the recipient then secures the queue with it.
    const senderKeys = generateSigningKeyPair();
    await sender.send({ relay: queue.relay, senderId: queue.senderId }, senderKeys.publicKey);
    await recipient.subscribe(queue);
    const [confirmation] = await inbox.waitForCount(1);
    assert.deepEqual(confirmation!.message.body, senderKeys.publicKey);
    await recipient.secureQueue(queue, confirmation!.message.body);
    await recipient.ack(queue, confirmation!.message.msgId);

    const secured = { relay: queue.relay, senderId: queue.senderId, senderKey: senderKeys.privateKey };
    for (let i = 0; i < 5; i++) await sender.send(secured, text(`hello ${i}`));
    const received: string[] = [];
    while (received.length < 5) {
      const all = await inbox.waitForCount(received.length + 2);
      const m = all[received.length + 1]!.message;
      received.push(str(m.body));
      assert.ok(Math.abs(m.timestamp - Date.now() / 1000) < 60);
      await recipient.ack(queue, m.msgId);
    }
    assert.deepEqual(received, ['hello 0', 'hello 1', 'hello 2', 'hello 3', 'hello 4']);
    assert.equal(await recipient.get(queue), null);
  });

  test('only one message is pushed until it is acknowledged', async () => {
    const c = await connect();
    const inbox = new Inbox(c);
    const queue = await c.createQueue({ subscribe: true });
    const keys = generateSigningKeyPair();
    await c.secureQueue(queue, keys.publicKey);
    const sq = { relay: queue.relay, senderId: queue.senderId, senderKey: keys.privateKey };
    await Promise.all([c.send(sq, text('a')), c.send(sq, text('b'))]);
    await inbox.waitForCount(1);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(inbox.all.length, 1, 'second message waits for the ACK');
    // GET sees the same oldest message.
    const got = await c.get(queue);
    assert.deepEqual(got?.msgId, inbox.all[0]!.message.msgId);
    await c.ack(queue, inbox.all[0]!.message.msgId);
    await inbox.waitForCount(2);
    assert.deepEqual(inbox.all.map((d) => str(d.message.body)), ['a', 'b']);
    // ACK of a message that is not the oldest changes nothing.
    await assert.rejects(c.ack(queue, inbox.all[0]!.message.msgId), rejectsWith('NO_MSG'));
    await c.ack(queue, inbox.all[1]!.message.msgId);
  });

  test('several queues and several clients at once, each in order', async () => {
    const recipients = await Promise.all([connect(), connect(), connect()]);
    const senders = await Promise.all([connect(), connect(), connect()]);
    const perQueue = 20;
    const setups = await Promise.all(
      recipients.map(async (r) => {
        const inbox = new Inbox(r);
        const queues: RecipientQueue[] = [];
        for (let i = 0; i < 3; i++) {
          const q = await r.createQueue({ subscribe: true });
          queues.push(q);
        }
        return { r, inbox, queues };
      }),
    );
    // Recipients ACK as they go, so each queue streams.
    const seen = new Map<string, string[]>();
    for (const { r, queues } of setups) {
      r.on('message', (q, m) => {
        const key = Buffer.from(q.recipientId).toString('hex');
        seen.set(key, [...(seen.get(key) ?? []), str(m.body)]);
        void r.ack(q, m.msgId);
      });
      void queues;
    }
    const sendJobs: Promise<void>[] = [];
    setups.forEach(({ queues }, ri) =>
      queues.forEach((q, qi) => {
        const sender = senders[(ri + qi) % senders.length]!;
        sendJobs.push(
          (async () => {
            // Unsecured queues take one unsigned message; secure with a sender key first.
            const keys = generateSigningKeyPair();
            await setups[ri]!.r.secureQueue(q, keys.publicKey);
            for (let i = 0; i < perQueue; i++) {
              await sender.send({ relay: q.relay, senderId: q.senderId, senderKey: keys.privateKey }, text(`${ri}.${qi}.${i}`));
            }
          })(),
        );
      }),
    );
    await Promise.all(sendJobs);
    await Promise.all(setups.map((s) => s.inbox.waitForCount(3 * perQueue)));
    for (const [ri, { queues }] of setups.entries()) {
      for (const [qi, q] of queues.entries()) {
        const got = seen.get(Buffer.from(q.recipientId).toString('hex'));
        assert.deepEqual(got, Array.from({ length: perQueue }, (_, i) => `${ri}.${qi}.${i}`));
      }
    }
  });

  test('a wrong key gets AUTH and changes nothing', async () => {
    const owner = await connect();
    const attacker = await connect();
    const queue = await owner.createQueue();
    const keys = generateSigningKeyPair();
    await owner.secureQueue(queue, keys.publicKey);
    const sq = { relay: queue.relay, senderId: queue.senderId, senderKey: keys.privateKey };
    await owner.send(sq, text('kept'));

    const forged: RecipientQueue = { ...queue, recipientKey: generateSigningKeyPair().privateKey };
    await assert.rejects(attacker.get(forged), rejectsWith('AUTH'));
    await assert.rejects(attacker.deleteQueue(forged), rejectsWith('AUTH'));
    await assert.rejects(attacker.secureQueue(forged, generateSigningKeyPair().publicKey), rejectsWith('AUTH'));
    await assert.rejects(attacker.suspend(forged), rejectsWith('AUTH'));
    await assert.rejects(attacker.send({ ...sq, senderKey: generateSigningKeyPair().privateKey }, text('forged')), rejectsWith('AUTH'));
    await assert.rejects(attacker.send({ relay: sq.relay, senderId: sq.senderId }, text('unsigned')), rejectsWith('AUTH'));
    // A queue that does not exist answers exactly the same.
    const missing: RecipientQueue = { ...queue, recipientId: new Uint8Array(24).fill(7) };
    await assert.rejects(attacker.get(missing), rejectsWith('AUTH'));
    // Re-securing with another key is refused; the original sender still works.
    await assert.rejects(owner.secureQueue(queue, generateSigningKeyPair().publicKey), rejectsWith('AUTH'));
    await owner.secureQueue(queue, keys.publicKey);

    const m = await owner.get(queue);
    assert.equal(str(m!.body), 'kept');
    await owner.ack(queue, m!.msgId);
    assert.equal(await owner.get(queue), null, 'nothing forged was stored');
  });

  test('an unsecured queue accepts its first message once only', async () => {
    const c = await connect();
    const queue = await c.createQueue();
    const unsigned = { relay: queue.relay, senderId: queue.senderId };
    await c.send(unsigned, text('confirmation'));
    await assert.rejects(c.send(unsigned, text('second')), rejectsWith('AUTH'));
    const keys = generateSigningKeyPair();
    await c.secureQueue(queue, keys.publicKey);
    await assert.rejects(c.send(unsigned, text('unsigned after KEY')), rejectsWith('AUTH'));
    await c.send({ ...unsigned, senderKey: keys.privateKey }, text('signed'));
    const first = await c.get(queue);
    assert.equal(str(first!.body), 'confirmation');
    await c.ack(queue, first!.msgId);
    assert.equal(str((await c.get(queue))!.body), 'signed');
  });

  test('a contact queue takes many unsigned messages, never signed ones, and cannot be secured', async () => {
    const c = await connect();
    const queue = await c.createQueue({ mode: 'contact' });
    const unsigned = { relay: queue.relay, senderId: queue.senderId };
    for (const t of ['request 1', 'request 2', 'request 3']) await c.send(unsigned, text(t));
    const keys = generateSigningKeyPair();
    await assert.rejects(c.send({ ...unsigned, senderKey: keys.privateKey }, text('signed')), rejectsWith('AUTH'));
    await assert.rejects(c.secureQueue(queue, keys.publicKey), rejectsWith('AUTH'));
    for (const t of ['request 1', 'request 2', 'request 3']) {
      const m = await c.get(queue);
      assert.equal(str(m!.body), t);
      await c.ack(queue, m!.msgId);
    }
  });

  test('a second subscriber takes over and the first gets END', async () => {
    const a = await connect();
    const b = await connect();
    const queue = await a.createQueue({ subscribe: true });
    const ended = new Promise<RecipientQueue>((resolve) => a.once('end', resolve));
    const inboxB = new Inbox(b);
    await b.subscribe(queue);
    assert.deepEqual((await ended).recipientId, queue.recipientId);
    await a.send({ relay: queue.relay, senderId: queue.senderId }, text('to b'));
    const [d] = await inboxB.waitForCount(1);
    assert.equal(str(d!.message.body), 'to b');
  });

  test('suspend stops senders; delete removes everything', async () => {
    const c = await connect();
    const queue = await c.createQueue();
    const keys = generateSigningKeyPair();
    await c.secureQueue(queue, keys.publicKey);
    const sq = { relay: queue.relay, senderId: queue.senderId, senderKey: keys.privateKey };
    await c.send(sq, text('before'));
    await c.suspend(queue);
    await assert.rejects(c.send(sq, text('after')), rejectsWith('AUTH'));
    assert.equal(str((await c.get(queue))!.body), 'before', 'recipient still reads a suspended queue');
    await c.deleteQueue(queue);
    await assert.rejects(c.get(queue), rejectsWith('AUTH'));
    await assert.rejects(c.send(sq, text('gone')), rejectsWith('AUTH'));
  });

  test('ping', async () => {
    const c = await connect();
    await c.ping();
  });

  test('a client with the wrong fingerprint refuses to talk', async () => {
    const real = parseAddress(relay.address);
    const wrong = formatAddress({ ...real, fingerprint: new Uint8Array(32).fill(1) });
    await assert.rejects(RelayClient.connect(wrong), (e: unknown) => e instanceof ConnectionError && e.reason === 'FINGERPRINT' && !e.retryable);
  });
});

describe('relay limits', () => {
  test('quota: a full queue answers QUOTA until a message is acknowledged', async () => {
    const relay = await startRelayProcess({ args: ['--quota', '3'] });
    const c = await RelayClient.connect(relay.address);
    try {
      const queue = await c.createQueue();
      const keys = generateSigningKeyPair();
      await c.secureQueue(queue, keys.publicKey);
      const sq = { relay: queue.relay, senderId: queue.senderId, senderKey: keys.privateKey };
      for (let i = 0; i < 3; i++) await c.send(sq, text(`m${i}`));
      await assert.rejects(c.send(sq, text('over')), rejectsWith('QUOTA'));
      const m = await c.get(queue);
      await c.ack(queue, m!.msgId);
      await c.send(sq, text('fits again'));
    } finally {
      await c.close();
      await relay.stop();
    }
  });

  test('TTL: an undelivered message expires', async () => {
    const relay = await startRelayProcess({ args: ['--ttl', '1'] });
    const c = await RelayClient.connect(relay.address);
    try {
      const queue = await c.createQueue();
      await c.send({ relay: queue.relay, senderId: queue.senderId }, text('short-lived'));
      assert.equal(str((await c.get(queue))!.body), 'short-lived');
      await new Promise((r) => setTimeout(r, 1300));
      assert.equal(await c.get(queue), null);
    } finally {
      await c.close();
      await relay.stop();
    }
  });

  test('password: only clients with the relay password create queues', async () => {
    const relay = await startRelayProcess({ args: ['--password', 's3cret'] });
    const without = await RelayClient.connect(relay.address);
    const wrong = await RelayClient.connect(relay.address, { password: 'guess' });
    const right = await RelayClient.connect(relay.address, { password: 's3cret' });
    try {
      await assert.rejects(without.createQueue(), rejectsWith('AUTH'));
      await assert.rejects(wrong.createQueue(), rejectsWith('AUTH'));
      const q = await right.createQueue();
      // Sending needs no password: a private relay still receives from anyone with the queue's address.
      await without.send({ relay: q.relay, senderId: q.senderId }, text('hi'));
    } finally {
      await Promise.all([without.close(), wrong.close(), right.close()]);
      await relay.stop();
    }
  });

  test('rate: a connection over its command rate gets BUSY with a retry hint, others are served', async () => {
    const relay = await startRelayProcess({ args: ['--rate', '20'] });
    const flooder = await RelayClient.connect(relay.address);
    const polite = await RelayClient.connect(relay.address);
    try {
      const results = await Promise.allSettled(Array.from({ length: 200 }, () => flooder.ping()));
      const limited = results.filter((r) => r.status === 'rejected' && rejectsWith('BUSY')(r.reason) && (r.reason as RelayError).retryAfterMs === 1000).length;
      const served = results.filter((r) => r.status === 'fulfilled').length;
      assert.ok(limited > 100, `expected most pings limited, got ${limited}`);
      assert.ok(served >= 20 && served <= 60, `burst of about 40 served, got ${served}`);
      await polite.ping();
    } finally {
      await Promise.all([flooder.close(), polite.close()]);
      await relay.stop();
    }
  });

  test('reconnects with backoff and resubscribes after the relay restarts', async () => {
    const relay = await startRelayProcess();
    const c = await RelayClient.connect(relay.address, { backoffMs: { initial: 100, max: 500 } });
    const inbox = new Inbox(c);
    let restarted: RelayProcess | undefined;
    try {
      const queue = await c.createQueue({ subscribe: true });
      const reconnected = new Promise<void>((resolve) => c.once('reconnected', resolve));
      await relay.stop('SIGKILL');
      restarted = await startRelayProcess({ dataDir: relay.dataDir, port: relay.port });
      assert.equal(restarted.address, relay.address, 'same data directory and port give the same address');
      await reconnected;
      const sender = await RelayClient.connect(restarted.address);
      await sender.send({ relay: queue.relay, senderId: queue.senderId }, text('after restart'));
      await sender.close();
      const [d] = await inbox.waitForCount(1);
      assert.equal(str(d!.message.body), 'after restart');
    } finally {
      await c.close();
      await restarted?.stop();
    }
  });
});
