// test-file-timeout: 180
/**
 * Logs through the RelayClient (docs/protocol.md §9.15): several devices
 * reading one log, trimming, reading again from a position, a relay
 * process killed and restarted under a subscribed reader, and relays that
 * cannot or must not be trusted to do it right: a version 5 stand-in, and
 * one that pushes positions out of order.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RelayClient } from '../../src/client/relay-client.js';
import { ConnectionError, PushError, RelayError } from '../../src/client/errors.js';
import type { LogEntry } from '../../src/client/logs.js';
import type { RecipientQueue, SenderQueue } from '../../src/client/queues.js';
import { CryptoError } from '../../src/crypto/errors.js';
import { generateSigningKeyPair } from '../../src/crypto/keys.js';
import { randomBytes } from '../../src/crypto/random.js';
import type { Response } from '../../src/protocol/commands.js';
import { sealMessage } from '../../src/protocol/queue-crypto.js';
import { LOG_QUEUE_VERSION, SESSION_MAC_VERSION } from '../../src/protocol/version.js';
import { inProcessRelay } from '../helpers/in-process-relay.js';
import { startRelayProcess, type RelayProcess } from '../helpers/relay-process.js';
import { startVersion2Relay } from '../helpers/version2-relay.js';
import { str, text } from '../helpers/inbox.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const settle = (): Promise<void> => sleep(250);
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Collects what a subscribeLog handler is given, so a test can wait for it. */
class Entries {
  readonly all: LogEntry[] = [];
  readonly handler = (e: LogEntry): void => void this.all.push(e);
  get positions(): number[] {
    return this.all.map((e) => e.position);
  }
  get bodies(): string[] {
    return this.all.map((e) => str(e.body));
  }
  async waitFor(n: number, ms = 15_000): Promise<LogEntry[]> {
    const deadline = Date.now() + ms;
    while (this.all.length < n) {
      if (Date.now() > deadline) throw new Error(`expected ${n} entries, got ${this.all.length}: ${this.positions.join(',')}`);
      await sleep(10);
    }
    return this.all;
  }
}

/** A log made by `owner` and secured under a fresh sender key. */
async function newLog(owner: RelayClient): Promise<{ queue: RecipientQueue; writer: SenderQueue }> {
  const queue = await owner.createQueue({ mode: 'log' });
  const keys = generateSigningKeyPair();
  await owner.secureQueue(queue, keys.publicKey);
  return { queue, writer: { relay: queue.relay, senderId: queue.senderId, senderKey: keys.privateKey } };
}

/** Every 'messageError' of `client`. */
function errorsOf(client: RelayClient): Error[] {
  const errors: Error[] = [];
  client.on('messageError', (_q, e) => errors.push(e));
  return errors;
}

describe('logs through the client', () => {
  const fixture = inProcessRelay({ commandRate: 100_000, commandBurst: 100_000 });
  const connect = async (): Promise<RelayClient> => {
    const c = await RelayClient.connect(fixture.relay.address);
    fixture.clients.push(c);
    return c;
  };

  test('two devices read one log, each from its own position, in order, opened with the queue key; trimLog deletes below', async () => {
    const [phone, laptop] = [await connect(), await connect()];
    const { queue, writer } = await newLog(phone);
    for (let i = 1; i <= 5; i++) await phone.send(writer, text(`e${i}`), i);
    const [a, b] = [new Entries(), new Entries()];
    await phone.subscribeLog(queue, 1, a.handler);
    await laptop.subscribeLog(queue, 3, b.handler);
    assert.ok(phone.isSubscribed(queue) && laptop.isSubscribed(queue));
    assert.equal(phone.subscriptionCount, 1);
    await laptop.send(writer, text('e6'), 6); // any device with the sender key appends
    await a.waitFor(6);
    await b.waitFor(4);
    assert.deepEqual(a.positions, range(1, 6));
    assert.deepEqual(b.positions, range(3, 6));
    assert.deepEqual(a.bodies, range(1, 6).map((i) => `e${i}`));
    assert.deepEqual(a.all.map((e) => e.flags), range(1, 6));
    assert.ok(a.all.every((e) => e.entryId.length === 24 && Math.abs(e.timestamp - Date.now() / 1000) < 60));
    assert.deepEqual(b.all.map((e) => e.entryId), a.all.slice(2).map((e) => e.entryId), 'the same entries');

    await phone.trimLog(queue, 5);
    await phone.trimLog(queue, 5);
    const fresh = await connect();
    const c = new Entries();
    await fresh.subscribeLog(queue, 1, c.handler);
    assert.deepEqual((await c.waitFor(2)).map((e) => e.position), [5, 6], 'a reader from 1 sees the gap');
    await phone.trimLog(queue, 2 ** 53 - 1);
    const later = new Entries();
    const another = await connect();
    await another.subscribeLog(queue, 1, later.handler);
    await settle();
    assert.deepEqual(later.all, []);
    await phone.send(writer, text('e7'));
    assert.deepEqual((await later.waitFor(1)).map((e) => e.position), [7]);
  });

  test('positions must be safe integers from 1, and the commands suit logs only', async () => {
    const client = await connect();
    const { queue } = await newLog(client);
    const entries = new Entries();
    for (const p of [0, -1, 1.5, 2 ** 53, Number.NaN]) {
      await assert.rejects(client.subscribeLog(queue, p, entries.handler), RangeError, `subscribeLog from ${p}`);
      await assert.rejects(client.trimLog(queue, p), RangeError, `trimLog ${p}`);
    }
    assert.equal(client.isSubscribed(queue), false, 'nothing was subscribed');
    await assert.rejects(client.createQueue({ mode: 'log', subscribe: true }), RangeError);
    await assert.rejects(client.subscribe(queue), (e) => e instanceof RelayError && e.code === 'CMD_PROHIBITED');
    const plain = await client.createQueue();
    await assert.rejects(client.subscribeLog(plain, 1, entries.handler), (e) => e instanceof RelayError && e.code === 'CMD_PROHIBITED');
    assert.equal(client.isSubscribed(plain), false, 'a refused LSUB is not kept');
    await assert.rejects(client.trimLog(plain, 1), (e) => e instanceof RelayError && e.code === 'CMD_PROHIBITED');
  });

  test('subscribing again moves the reader: the new handler gets everything from the new position once, in order, while the old cursor\'s pushes are still arriving', async () => {
    const client = await connect();
    const { queue, writer } = await newLog(client);
    const writes = await connect();
    for (let i = 0; i < 600; i += 100) await Promise.all(range(i + 1, i + 100).map((n) => writes.send(writer, text(`e${n}`.padEnd(2000, '.')))));
    const errors = errorsOf(client);
    const first = new Entries();
    await client.subscribeLog(queue, 1, first.handler);
    await first.waitFor(50);
    const second = new Entries();
    await client.subscribeLog(queue, 10, second.handler);
    const moved = first.all.length;
    await second.waitFor(591);
    await settle();
    assert.deepEqual(second.positions, range(10, 600), 'from the new position, each once');
    assert.equal(first.all.length, moved, 'the first handler got nothing after the move');
    assert.deepEqual(first.positions, range(1, moved));
    assert.deepEqual(errors, [], 'the old cursor\'s pushes are not taken for a relay\'s error');
    assert.equal(client.subscriptionCount, 1);
    client.forget(queue);
    await writes.send(writer, text('after forget'));
    await settle();
    assert.equal(second.all.length, 591, 'a forgotten log delivers nothing more');
  });

  test('DEL of a log stops its reading here', async () => {
    const client = await connect();
    const { queue } = await newLog(client);
    await client.subscribeLog(queue, 1, new Entries().handler);
    await client.deleteQueue(queue);
    assert.equal(client.isSubscribed(queue), false);
    assert.equal(client.subscriptionCount, 0);
  });
});

test('after the relay restarts, the client subscribes every log again from the position after the last entry it delivered: nothing twice, nothing missed', async () => {
  let relay: RelayProcess = await startRelayProcess({ args: ['--rate', '100000'] });
  const clients: RelayClient[] = [];
  try {
    // The reader waits 4 to 8 s before reconnecting (the backoff's jitter), so that entries are appended while it is away.
    const reader = await RelayClient.connect(relay.address, { backoffMs: { initial: 8000, max: 8000 } });
    const owner = await RelayClient.connect(relay.address, { reconnect: false });
    clients.push(reader, owner);
    const { queue, writer } = await newLog(owner);
    const entries = new Entries();
    const errors = errorsOf(reader);
    for (let i = 1; i <= 5; i++) await owner.send(writer, text(`e${i}`));
    await reader.subscribeLog(queue, 1, entries.handler);
    await entries.waitFor(5);
    const reconnected = new Promise<void>((resolve) => reader.once('reconnected', resolve));
    await relay.stop('SIGKILL');
    relay = await startRelayProcess({ dataDir: relay.dataDir, port: relay.port, args: ['--rate', '100000'] });
    const writerAgain = await RelayClient.connect(relay.address);
    clients.push(writerAgain);
    await writerAgain.send(writer, text('e6'));
    await writerAgain.send(writer, text('e7'));
    assert.equal(entries.all.length, 5, 'appended while the reader is away');
    await reconnected;
    await writerAgain.send(writer, text('e8'));
    await entries.waitFor(8);
    await settle();
    assert.deepEqual(entries.positions, range(1, 8));
    assert.deepEqual(entries.bodies, range(1, 8).map((i) => `e${i}`));
    assert.deepEqual(errors, []);
    assert.ok(reader.isSubscribed(queue));
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await relay.stop();
  }
});

test('a relay of version 5: creating, reading and trimming a log fail with ConnectionError VERSION, and nothing is sent', async () => {
  const old = await startVersion2Relay('127.0.0.1', SESSION_MAC_VERSION);
  const c = await RelayClient.connect(old.address, { reconnect: false });
  try {
    const queue: RecipientQueue = { relay: old.address, recipientId: randomBytes(24), senderId: randomBytes(24), recipientKey: generateSigningKeyPair().privateKey, queueKey: randomBytes(32) };
    const version = (e: unknown): boolean => e instanceof ConnectionError && e.reason === 'VERSION';
    await assert.rejects(c.createQueue({ mode: 'log' }), version);
    await assert.rejects(c.subscribeLog(queue, 1, () => assert.fail('no entry')), version);
    await assert.rejects(c.trimLog(queue, 1), version);
    assert.equal(c.isSubscribed(queue), false);
    await c.ping();
    assert.deepEqual(old.commands, [{ type: 'PING' }], 'only the PING reached the relay');
  } finally {
    await c.close();
    await old.close();
  }
});

test('a relay that pushes a position not above the previous one, or beyond 2^53 - 1, or an entry that does not open: reported as messageError, not delivered', async () => {
  const queueKey = randomBytes(32);
  const entry = (position: bigint, body: string, key = queueKey): Response => {
    const entryId = randomBytes(24);
    return { type: 'LENT', entryId, position, sealed: sealMessage(key, entryId, { timestamp: 1, flags: 0, body: text(body) }) };
  };
  const rogue = await startVersion2Relay('127.0.0.1', LOG_QUEUE_VERSION, (c) =>
    c.type === 'LSUB'
      ? [entry(1n, 'one'), entry(2n, 'two'), entry(2n, 'two again'), entry(1n, 'one again'), entry(5n, 'undecryptable', randomBytes(32)), entry(5n, 'five'), entry(2n ** 53n, 'far'), entry(6n, 'six')]
      : [],
  );
  const c = await RelayClient.connect(rogue.address, { reconnect: false });
  try {
    const queue: RecipientQueue = { relay: rogue.address, recipientId: randomBytes(24), senderId: randomBytes(24), recipientKey: generateSigningKeyPair().privateKey, queueKey };
    const errors = errorsOf(c);
    const entries = new Entries();
    await c.subscribeLog(queue, 1, entries.handler);
    await settle();
    assert.deepEqual(entries.bodies, ['one', 'two', 'six'], 'an undecryptable entry takes its position: the next push must be above it');
    assert.deepEqual(entries.positions, [1, 2, 6]);
    assert.deepEqual(
      errors.map((e) => e.name),
      ['PushError', 'PushError', 'CryptoError', 'PushError', 'PushError'],
    );
    assert.ok(errors[0] instanceof PushError && errors[0].relay === c.addressText);
    assert.ok(errors[2] instanceof CryptoError);
  } finally {
    await c.close();
    await rogue.close();
  }
});
