/**
 * What an observer of both sides of a relay sees: the blocks a sender
 * sent, the blocks the recipient received, the relay's database and the
 * TLS records on the wire. No queue ID crosses sides, no ciphertext byte
 * string is shared, and every record carrying data has the same size.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { RelayClient } from '../../src/client/relay-client.js';
import { generateSigningKeyPair } from '../../src/crypto/keys.js';
import { randomBytes } from '../../src/crypto/random.js';
import { BLOCK_SIZE } from '../../src/protocol/block.js';
import { formatAddress, parseAddress } from '../../src/protocol/address.js';
import { startRelayProcess } from '../helpers/relay-process.js';
import { startTcpTap, tlsRecords } from '../helpers/tcp-tap.js';
import { Inbox } from '../helpers/inbox.js';

const WINDOW = 12;

/** All distinct `WINDOW`-byte strings of a capture, skipping all-zero padding. */
function windowsOf(haystack: Buffer): Set<string> {
  const set = new Set<string>();
  const zero = '\0'.repeat(WINDOW);
  const text = haystack.toString('latin1');
  for (let i = 0; i + WINDOW <= text.length; i++) {
    const w = text.slice(i, i + WINDOW);
    if (w !== zero) set.add(w);
  }
  return set;
}

/** How many `WINDOW`-byte strings of `needle` occur in the indexed capture. */
function sharedWindows(needle: Uint8Array, index: Set<string>): number {
  const text = Buffer.from(needle).toString('latin1');
  let shared = 0;
  for (let i = 0; i + WINDOW <= text.length; i++) if (index.has(text.slice(i, i + WINDOW))) shared++;
  return shared;
}

// TLS 1.3 application-data record for one full block: block + content type + 16-byte AEAD tag.
const DATA_RECORD_LENGTH = BLOCK_SIZE + 1 + 16;
const APPLICATION_DATA = 23;

test('no ID or ciphertext is shared between the two sides of a relay, and every record has one size', async () => {
  const relay = await startRelayProcess();
  const senderTap = await startTcpTap('127.0.0.1', relay.port);
  const recipientTap = await startTcpTap('127.0.0.1', relay.port);
  const via = (port: number): string => formatAddress({ ...parseAddress(relay.address), port });
  const senderBlocks: Uint8Array[] = [];
  const recipientBlocks: Uint8Array[] = [];
  const recipient = await RelayClient.connect(via(recipientTap.port), { trace: (d, b) => d === 'in' && recipientBlocks.push(b.slice()) });
  const sender = await RelayClient.connect(via(senderTap.port), { trace: (d, b) => d === 'out' && senderBlocks.push(b.slice()) });
  const inbox = new Inbox(recipient);
  recipient.on('message', (q, m) => void recipient.ack(q, m.msgId));

  // The queue is created beforehand (its IDS answer necessarily names both IDs to the recipient);
  // the captured recipient session sets the queue's link data, which the sender fetches by its
  // link ID, then secures the queue, subscribes and receives.
  const setup = await RelayClient.connect(relay.address);
  const queue = await setup.createQueue();
  await setup.close();
  const linkId = randomBytes(24);
  const linkData = randomBytes(2048);
  await recipient.setLinkData(queue, linkId, linkData);
  assert.deepEqual(await sender.getLinkData(linkId), linkData);
  const keys = generateSigningKeyPair();
  await recipient.secureQueue(queue, keys.publicKey);
  await recipient.subscribe(queue);
  const bodies = Array.from({ length: 20 }, (_, i) => randomBytes(100 + i * 500));
  for (const body of bodies) await sender.send({ relay: queue.relay, senderId: queue.senderId, senderKey: keys.privateKey }, body);
  await inbox.waitForCount(bodies.length);
  // One undelivered message stays in the database for the storage check.
  const resting = randomBytes(4000);
  await sender.send({ relay: queue.relay, senderId: queue.senderId, senderKey: keys.privateKey }, resting);
  await inbox.waitForCount(bodies.length + 1);
  await new Promise((r) => setTimeout(r, 200));
  await sender.close();
  await recipient.close();
  await new Promise((r) => setTimeout(r, 200));

  const sentSide = Buffer.concat(senderBlocks);
  const receivedSide = Buffer.concat(recipientBlocks);
  assert.ok(sentSide.includes(Buffer.from(queue.senderId)), 'the capture works: sender blocks carry the sender ID');
  assert.ok(receivedSide.includes(Buffer.from(queue.recipientId)), 'the capture works: recipient blocks carry the recipient ID');
  assert.ok(!receivedSide.includes(Buffer.from(queue.senderId)), 'sender ID never reaches the recipient side');
  assert.ok(!sentSide.includes(Buffer.from(queue.recipientId)), 'recipient ID never reaches the sender side');
  assert.ok(sentSide.includes(Buffer.from(linkId)), 'the capture works: the sender fetched by the link ID');
  assert.ok(!receivedSide.includes(Buffer.from(linkId)), 'the link ID never reaches the recipient side');
  const receivedIndex = windowsOf(receivedSide);
  const sentIndex = windowsOf(sentSide);
  for (const [i, body] of [...bodies, resting].entries()) {
    assert.ok(sharedWindows(body, sentIndex) > 0, `capture works for body ${i}`);
    assert.equal(sharedWindows(body, receivedIndex), 0, `body ${i}: no 12-byte string sent appears on the recipient side`);
  }
  const delivered = inbox.all.map((d) => d.message.body);
  assert.deepEqual(delivered, [...bodies, resting]);

  // At rest the relay holds only what the recipient will receive, never the sender's bytes.
  await relay.stop('SIGKILL');
  const files = readdirSync(relay.dataDir).filter((f) => f.startsWith('relay.sqlite'));
  const disk = Buffer.concat(files.map((f) => readFileSync(join(relay.dataDir, f))));
  assert.ok(disk.includes(Buffer.from(queue.recipientId)), 'the database capture works');
  const diskIndex = windowsOf(disk);
  assert.equal(sharedWindows(resting, diskIndex), 0, 'an undelivered message is not stored as sent');
  for (const body of bodies) assert.equal(sharedWindows(body, diskIndex), 0, 'sent bytes never reach the disk');

  // On the wire: after the TLS handshake, every record is one block.
  for (const tap of [senderTap, recipientTap]) {
    for (const conn of tap.connections) {
      for (const stream of [Buffer.concat(conn.toServer), Buffer.concat(conn.toClient)]) {
        const records = tlsRecords(stream).filter((r) => r.type === APPLICATION_DATA);
        const firstBlock = records.findIndex((r) => r.length === DATA_RECORD_LENGTH);
        assert.ok(firstBlock >= 0);
        // Before the first block: the encrypted handshake (at most 4 records); after it, only blocks.
        assert.ok(firstBlock <= 4, `handshake records before the first block: ${firstBlock}`);
        const odd = records.slice(firstBlock).filter((r) => r.length !== DATA_RECORD_LENGTH);
        // The sole exception allowed is the close_notify alert when a client closes (19 bytes, last).
        assert.ok(odd.length <= 1 && (odd.length === 0 || records.at(-1)!.length === 19), `odd records: ${JSON.stringify(odd)}`);
      }
    }
  }
  await senderTap.close();
  await recipientTap.close();
});
