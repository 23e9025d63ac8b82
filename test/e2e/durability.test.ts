/**
 * A relay that answered OK has the message on disk: send many messages,
 * kill -9 the relay mid-stream, restart it, and every message that got OK
 * is delivered exactly once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RelayClient } from '../../src/client/relay-client.js';
import { generateSigningKeyPair } from '../../src/crypto/keys.js';
import { sendUntilKilled, startRelayProcess } from '../helpers/relay-process.js';
import { Inbox, str, text } from '../helpers/inbox.js';

test('every message that got OK survives kill -9 and is delivered exactly once', async () => {
  const total = 400;
  const relay = await startRelayProcess({ args: ['--quota', String(total)] });
  const setup = await RelayClient.connect(relay.address, { reconnect: false });
  const queue = await setup.createQueue();
  const keys = generateSigningKeyPair();
  await setup.secureQueue(queue, keys.publicKey);
  await setup.close();

  const sender = await RelayClient.connect(relay.address, { reconnect: false, commandTimeoutMs: 5000 });
  const sq = { relay: queue.relay, senderId: queue.senderId, senderKey: keys.privateKey };
  // Kill the relay while sends are still in flight.
  const { acknowledged, killed } = await sendUntilKilled(relay, total, total / 4, (i) => `msg-${i}`, (label) => sender.send(sq, text(label)));
  await relay.stop();
  assert.ok(killed, 'relay was killed mid-stream');
  assert.ok(acknowledged.length >= total / 4 && acknowledged.length < total, `some but not all sends got OK (${acknowledged.length})`);

  const restarted = await startRelayProcess({ dataDir: relay.dataDir, port: relay.port, args: ['--quota', String(total)] });
  const recipient = await RelayClient.connect(restarted.address);
  const inbox = new Inbox(recipient);
  recipient.on('message', (q, m) => void recipient.ack(q, m.msgId));
  try {
    await recipient.subscribe(queue);
    await inbox.waitForCount(acknowledged.length, 20_000);
    // Anything beyond the OK'd set is a message committed just before the kill; wait to see none repeats.
    await new Promise((r) => setTimeout(r, 500));
    const delivered = inbox.all.map((d) => str(d.message.body));
    assert.equal(new Set(delivered).size, delivered.length, 'no message delivered twice');
    const missing = acknowledged.filter((l) => !delivered.includes(l));
    assert.deepEqual(missing, [], 'every OK was delivered');
    // Order is preserved: delivery order is the send order.
    const indices = delivered.map((l) => Number(l.slice(4)));
    assert.deepEqual(indices, [...indices].sort((a, b) => a - b));
    assert.equal(await recipient.get(queue), null, 'queue is empty after ACKs');
  } finally {
    await recipient.close();
    await restarted.stop();
  }
});
