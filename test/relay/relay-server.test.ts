/**
 * The relay in-process over real TLS: malformed input, limits that the
 * command line does not expose, and the cost of an AUTH failure.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { RelayClient } from '../../src/client/relay-client.js';
import { RelayError } from '../../src/client/errors.js';
import { openTransport, type RelayTransport } from '../../src/transport/session.js';
import { generateSigningKeyPair, sign } from '../../src/crypto/keys.js';
import { randomBytes } from '../../src/crypto/random.js';
import { BLOCK_SIZE, decodeBatch, encodeBatch, padBlock } from '../../src/protocol/block.js';
import { decodeResponse, encodeCommand, type Response } from '../../src/protocol/commands.js';
import { decodeTransmission, encodeTransmission, encodeTransmissionBody, signedData } from '../../src/protocol/transmission.js';
import { Dispatcher, type ClientSession } from '../../src/relay/dispatcher.js';
import { resolveConfig } from '../../src/relay/config.js';
import { SqliteQueueStore } from '../../src/relay/sqlite-store.js';
import { startRelay, type RunningRelay } from '../../src/relay/server.js';
import { tempDir } from '../helpers/relay-process.js';

/** Reads the next block's responses from a raw transport. */
function nextResponses(t: RelayTransport): Promise<Response[]> {
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      const blocks = t.reader.push(chunk);
      if (blocks.length === 0) return;
      t.socket.off('data', onData);
      try {
        resolve(decodeBatch(blocks[0]!).map((b) => decodeResponse(decodeTransmission(b).command)));
      } catch (e) {
        reject(e);
      }
    };
    t.socket.on('data', onData);
  });
}

const ping = (): Uint8Array => encodeBatch([encodeTransmission(new Uint8Array(0), encodeTransmissionBody(Uint8Array.of(1), new Uint8Array(0), encodeCommand({ type: 'PING' })))]);

describe('relay server in-process', () => {
  let relay: RunningRelay;
  before(async () => {
    relay = await startRelay({ dataDir: tempDir(), port: 0, logLevel: 'silent', maxMessageLength: 100, maxConnections: 20, powBits: 0 });
  });
  after(() => relay.close());

  test('malformed blocks get ERR BLOCK and the connection stays usable', async () => {
    const t = await openTransport(relay.address, 5000);
    const garbage = [
      randomBytes(BLOCK_SIZE),
      padBlock(Uint8Array.of(0)), // empty batch
      padBlock(Uint8Array.of(2, 0, 5, 1, 2)), // truncated batch
      (() => {
        const b = new Uint8Array(BLOCK_SIZE);
        b[0] = 0xff; // content length beyond the block
        b[1] = 0xff;
        return b;
      })(),
    ];
    for (const block of garbage) {
      t.socket.write(block);
      const [r] = await nextResponses(t);
      // Random bytes may by chance parse as a batch; then each bad transmission is answered instead.
      assert.ok(r?.type === 'ERR', `expected ERR, got ${r?.type}`);
      t.socket.write(ping());
      assert.deepEqual(await nextResponses(t), [{ type: 'PONG' }], 'still usable after a bad block');
    }
    // Syntax errors inside a good block are answered per transmission.
    const bad = encodeBatch([Uint8Array.of(70, 1, 2), encodeTransmission(new Uint8Array(0), encodeTransmissionBody(Uint8Array.of(9), new Uint8Array(0), Buffer.from('NOPE')))]);
    t.socket.write(bad);
    const rs = await nextResponses(t);
    assert.deepEqual(rs.map((r) => (r.type === 'ERR' ? r.code : r.type)).sort(), ['CMD_SYNTAX', 'CMD_UNKNOWN']);
    t.socket.destroy();
  });

  test('a command signed for another TLS session is refused (channel binding)', async () => {
    const a = await openTransport(relay.address, 5000);
    const b = await openTransport(relay.address, 5000);
    const keys = generateSigningKeyPair();
    const body = encodeTransmissionBody(Uint8Array.of(1), new Uint8Array(0), encodeCommand({ type: 'NEW', recipientAuthKey: keys.publicKey, recipientDhKey: generateSigningKeyPair().publicKey, basicAuth: new Uint8Array(0), queueMode: 'messaging', powNonce: new Uint8Array(0) }));
    const signedForA = sign(keys.privateKey, signedData(a.binding, body));
    b.socket.write(encodeBatch([encodeTransmission(signedForA, body)]));
    const [onB] = await nextResponses(b);
    assert.deepEqual(onB, { type: 'ERR', code: 'AUTH' });
    a.socket.write(encodeBatch([encodeTransmission(signedForA, body)]));
    const [onA] = await nextResponses(a);
    assert.equal(onA?.type, 'IDS');
    a.socket.destroy();
    b.socket.destroy();
  });

  test('a bad handshake closes the connection', async () => {
    const socket = tlsConnect({ host: relay.address.host, port: relay.address.port, rejectUnauthorized: false, minVersion: 'TLSv1.3' });
    await new Promise((r) => socket.once('secureConnect', r));
    socket.resume(); // read (and drop) the relay's hello, so the close is seen
    socket.write(padBlock(Buffer.from('NJC\x00\x63')));
    await new Promise((r) => socket.once('close', r));
    assert.ok(socket.destroyed);
  });

  test('a message over the relay limit gets LARGE_MSG and is not stored', async () => {
    const c = await RelayClient.connect(relay.address);
    const q = await c.createQueue();
    await assert.rejects(c.send({ relay: q.relay, senderId: q.senderId }, new Uint8Array(101)), (e: unknown) => e instanceof RelayError && e.code === 'LARGE_MSG');
    assert.equal(await c.get(q), null);
    await c.send({ relay: q.relay, senderId: q.senderId }, new Uint8Array(100));
    await c.close();
  });

  test('connections over the limit are refused while the others go on', async () => {
    const full = await startRelay({ dataDir: tempDir(), port: 0, logLevel: 'silent', maxConnections: 2 });
    const a = await RelayClient.connect(full.address);
    const b = await RelayClient.connect(full.address);
    await assert.rejects(RelayClient.connect(full.address, { connectTimeoutMs: 2000 }));
    await a.ping();
    await b.ping();
    await a.close();
    await b.close();
    await full.close();
  });
});

test('an AUTH failure costs the same whether or not the queue exists', async () => {
  const store = new SqliteQueueStore(':memory:');
  const dispatcher = new Dispatcher(store, resolveConfig({ dataDir: '/unused' }));
  const session: ClientSession = { binding: randomBytes(32), push: () => undefined };
  const owner = generateSigningKeyPair();
  const recipientId = randomBytes(24);
  await store.createQueue({ recipientId, senderId: randomBytes(24), recipientKey: owner.publicKey, queueKey: randomBytes(32), mode: 'messaging' });
  const wrong = generateSigningKeyPair();
  const getFor = (id: Uint8Array) => {
    const body = encodeTransmissionBody(Uint8Array.of(1), id, encodeCommand({ type: 'GET' }));
    const bytes = encodeTransmission(sign(wrong.privateKey, signedData(session.binding, body)), body);
    return decodeTransmission(bytes);
  };
  const existing = getFor(recipientId);
  const missing = getFor(randomBytes(24));
  const time = async (t: ReturnType<typeof getFor>): Promise<number> => {
    const start = process.hrtime.bigint();
    const r = await dispatcher.handle(session, t);
    assert.deepEqual(r, { type: 'ERR', code: 'AUTH' });
    return Number(process.hrtime.bigint() - start);
  };
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < 400; i++) {
    a.push(await time(existing));
    b.push(await time(missing));
  }
  const median = (xs: number[]): number => xs.sort((x, y) => x - y)[xs.length >> 1]!;
  const ratio = median(a) / median(b);
  // Without the dummy-key verification the missing case skips the signature check and is several times faster.
  assert.ok(ratio > 0.6 && ratio < 1.6, `median AUTH time ratio existing/missing = ${ratio.toFixed(2)}`);
  await store.close();
});
