/** Abuse resistance without identity: proof of work for queue creation, load shedding. */
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { RelayClient } from '../../src/client/relay-client.js';
import { openTransport } from '../../src/transport/session.js';
import { generateDhKeyPair, generateSigningKeyPair, sign } from '../../src/crypto/keys.js';
import { decodeBatch, encodeBatch } from '../../src/protocol/block.js';
import { decodeResponse, encodeCommand, type Response } from '../../src/protocol/commands.js';
import { parseAddress } from '../../src/protocol/address.js';
import { solvePow, verifyPow } from '../../src/protocol/pow.js';
import { decodeTransmission, encodeTransmission, encodeTransmissionBody, signedData } from '../../src/protocol/transmission.js';
import { startRelayProcess } from '../helpers/relay-process.js';

test('proof of work: a solution verifies only for its session and key', () => {
  const binding = new Uint8Array(32).fill(1);
  const key = new Uint8Array(32).fill(2);
  const nonce = solvePow(binding, key, 12);
  assert.ok(verifyPow(binding, key, nonce, 12));
  // Inputs are fixed, so these outcomes are deterministic.
  assert.ok(!verifyPow(new Uint8Array(32).fill(3), key, nonce, 12), 'not for another session');
  assert.ok(!verifyPow(binding, new Uint8Array(32).fill(4), nonce, 12), 'not for another key');
  assert.ok(verifyPow(binding, key, new Uint8Array(0), 0), 'zero bits needs nothing');
  assert.ok(!verifyPow(binding, key, new Uint8Array(0), 1));
});

test('a flood of queue creations without proof of work is refused; a legitimate client gets through', async () => {
  const relay = await startRelayProcess({ args: ['--pow-bits', '8', '--rate', '100000'] });
  const flood = await openTransport(parseAddress(relay.address), 5000);
  const legit = await RelayClient.connect(relay.address);
  try {
    assert.equal(flood.powBits, 8, 'the hello announces the price');
    const answers: Response[] = [];
    flood.socket.on('data', (chunk: Buffer) => {
      for (const block of flood.reader.push(chunk)) for (const t of decodeBatch(block)) answers.push(decodeResponse(decodeTransmission(t).command));
    });
    const rounds = 20;
    const perBlock = 50;
    for (let r = 0; r < rounds; r++) {
      const batch: Uint8Array[] = [];
      for (let i = 0; i < perBlock; i++) {
        const auth = generateSigningKeyPair();
        const cmd = encodeCommand({ type: 'NEW', recipientAuthKey: auth.publicKey, recipientDhKey: generateDhKeyPair().publicKey, basicAuth: new Uint8Array(0), queueMode: 'messaging', powNonce: new Uint8Array(0) });
        const body = encodeTransmissionBody(Uint8Array.of(r, i), new Uint8Array(0), cmd);
        batch.push(encodeTransmission(sign(auth.privateKey, signedData(flood.binding, body)), body));
      }
      flood.socket.write(encodeBatch(batch));
    }
    // Meanwhile a client that does the work creates queues and uses them.
    const q = await legit.createQueue();
    await legit.send({ relay: q.relay, senderId: q.senderId }, new TextEncoder().encode('still served'));
    assert.equal(new TextDecoder().decode((await legit.get(q))!.body), 'still served');
    const deadline = Date.now() + 10_000;
    while (answers.length < rounds * perBlock && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(answers.length, rounds * perBlock);
    assert.equal(answers.filter((a) => a.type === 'IDS').length, 0, 'no queue was created without work');
    const bits = answers.map((a) => (a.type === 'POW' ? a.bits : -1));
    assert.ok(bits.every((b) => b >= 8), 'every refusal names the work due');
    assert.ok(Math.max(...bits) > 8, `the price rose under the flood (max ${Math.max(...bits)} bits)`);
    // The legitimate client pays the raised price and still gets through.
    const q2 = await legit.createQueue();
    assert.equal(q2.recipientId.length, 24);
  } finally {
    flood.socket.destroy();
    await legit.close();
    await relay.stop();
  }
});

test('a relay with a password asks for no proof of work', async () => {
  const relay = await startRelayProcess({ args: ['--password', 'pw', '--pow-bits', '20'] });
  const t = await openTransport(parseAddress(relay.address), 5000);
  assert.equal(t.powBits, 0);
  t.socket.destroy();
  const c = await RelayClient.connect(relay.address, { password: 'pw' });
  await c.createQueue();
  await c.close();
  await relay.stop();
});

test('a client that does not read its answers cannot make the relay buffer without bound', async () => {
  const relay = await startRelayProcess({ args: ['--rate', '100000'] });
  const owner = await RelayClient.connect(relay.address);
  const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${relay.process.pid}/status`, 'utf8'))![1]) * 1024;
  try {
    const q = await owner.createQueue();
    await owner.send({ relay: q.relay, senderId: q.senderId }, new Uint8Array(15 * 1024).fill(7));
    const t = await openTransport(parseAddress(relay.address), 5000);
    t.socket.pause(); // never reads an answer
    const before = rss();
    // 6000 GETs of a 15 KiB message: about 96 MB of answers if the relay buffered them all.
    for (let b = 0; b < 40; b++) {
      const batch: Uint8Array[] = [];
      for (let i = 0; i < 150; i++) {
        const body = encodeTransmissionBody(Uint8Array.of(b, i), q.recipientId, encodeCommand({ type: 'GET' }));
        batch.push(encodeTransmission(sign(q.recipientKey, signedData(t.binding, body)), body));
      }
      t.socket.write(encodeBatch(batch));
    }
    await new Promise((r) => setTimeout(r, 3000));
    const grown = rss() - before;
    assert.ok(grown < 40 * 1024 * 1024, `relay memory grew by ${(grown / 1048576).toFixed(1)} MiB`);
    // The relay still serves everyone else.
    await owner.ping();
    t.socket.destroy();
  } finally {
    await owner.close();
    await relay.stop();
  }
});

test('a subscriber that does not read cannot make the relay buffer a message per queue', async () => {
  const relay = await startRelayProcess({ args: ['--rate', '1000000', '--pow-bits', '0'] });
  const owner = await RelayClient.connect(relay.address);
  const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${relay.process.pid}/status`, 'utf8'))![1]) * 1024;
  try {
    // 3000 queues, each holding a 15 KiB message: about 48 MB of pushes if the relay buffered them all.
    const queues = [];
    for (let i = 0; i < 30; i++) queues.push(...(await Promise.all(Array.from({ length: 100 }, () => owner.createQueue()))));
    const t = await openTransport(parseAddress(relay.address), 5000);
    t.socket.pause(); // subscribes to everything, never reads
    for (let i = 0; i < queues.length; i += 100) {
      const batch = queues.slice(i, i + 100).map((q, j) => {
        const b = encodeTransmissionBody(Uint8Array.of(i >> 8, i & 255, j), q.recipientId, encodeCommand({ type: 'SUB' }));
        return encodeTransmission(sign(q.recipientKey, signedData(t.binding, b)), b);
      });
      t.socket.write(encodeBatch(batch));
    }
    await new Promise((r) => setTimeout(r, 1000));
    const before = rss();
    // Messages arrive from elsewhere while the subscriber still reads nothing.
    const body = new Uint8Array(15 * 1024).fill(9);
    for (let i = 0; i < queues.length; i += 100) {
      await Promise.all(queues.slice(i, i + 100).map((q) => owner.send({ relay: q.relay, senderId: q.senderId }, body)));
    }
    await new Promise((r) => setTimeout(r, 2000));
    const grown = rss() - before;
    // Storing 48 MB of messages costs the relay some memory by itself (about 40 MiB seen);
    // buffering every push as well came to about 100 MiB before pushes waited for room.
    assert.ok(grown < 64 * 1024 * 1024, `relay memory grew by ${(grown / 1048576).toFixed(1)} MiB`);
    await owner.ping();
    t.socket.destroy();
  } finally {
    await owner.close();
    await relay.stop();
  }
});
