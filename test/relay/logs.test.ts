// test-file-timeout: 240
/**
 * Log queues (protocol version 6, docs/protocol.md §9.15) at the relay,
 * over real TLS on loopback: relays in this process (settings per block)
 * for the rules, a relay process killed with SIGKILL for durability, and
 * the dispatcher on its own for the bookkeeping of subscriptions.
 * Logs are created and appended to by RelayClients; they are read by
 * connections that speak the protocol themselves (test/helpers/raw-session.ts),
 * so that every push the relay makes is seen as it made it, and so that a
 * connection can negotiate version 5.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RelayClient } from '../../src/client/relay-client.js';
import { RelayError } from '../../src/client/errors.js';
import type { RecipientQueue, SenderQueue } from '../../src/client/queues.js';
import { generateDhKeyPair, generateSigningKeyPair, sign } from '../../src/crypto/keys.js';
import { randomBytes } from '../../src/crypto/random.js';
import { parseAddress, type RelayAddress } from '../../src/protocol/address.js';
import { BLOCK_SIZE, encodeBatch } from '../../src/protocol/block.js';
import { encodeCommand, type Command, type Response } from '../../src/protocol/commands.js';
import { openMessage } from '../../src/protocol/queue-crypto.js';
import { decodeTransmission, encodeAuthenticatedTransmission, encodeTransmission, encodeTransmissionBody, signedData } from '../../src/protocol/transmission.js';
import { CURRENT_VERSION, SESSION_MAC_VERSION } from '../../src/protocol/version.js';
import { LOG_QUOTA_RANGE, resolveConfig } from '../../src/relay/config.js';
import { Dispatcher, type ClientSession } from '../../src/relay/dispatcher.js';
import { SqliteQueueStore } from '../../src/relay/sqlite-store.js';
import { startRelay, type RunningRelay, type StartOptions } from '../../src/relay/server.js';
import { inProcessRelay } from '../helpers/in-process-relay.js';
import { rawConnection } from '../helpers/raw-session.js';
import { sendUntilKilled, startRelayProcess, tempDir, type RelayProcess } from '../helpers/relay-process.js';
import { str, text } from '../helpers/inbox.js';

const OK: Response = { type: 'OK' };
const err = (code: string): Response => ({ type: 'ERR', code } as Response);
const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Long enough for pushes the relay should not make to arrive if it made them. */
const settle = (): Promise<void> => sleep(250);
const rejectsWith = (code: string) => (e: unknown) => e instanceof RelayError && e.code === code;

/** Polls `value` until it is defined (or true), for up to `ms`. */
async function until<T>(value: () => T | undefined | false, ms = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = value();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A log made by `owner` and secured under a fresh sender key: the recipient's side and the writer's. */
async function newLog(owner: RelayClient): Promise<{ queue: RecipientQueue; writer: SenderQueue }> {
  const queue = await owner.createQueue({ mode: 'log' });
  const keys = generateSigningKeyPair();
  await owner.secureQueue(queue, keys.publicKey);
  return { queue, writer: { relay: queue.relay, senderId: queue.senderId, senderKey: keys.privateKey } };
}

interface ReadEntry {
  readonly position: number;
  readonly body: string;
  readonly flags: number;
}

/**
 * A connection that reads logs itself: signed commands on a queue's
 * recipientId, answers matched by corrId, every LENT kept and opened with
 * the queue key.
 */
async function reader(address: RelayAddress, version = CURRENT_VERSION) {
  const { socket, binding, received } = await rawConnection(address, version);
  let corr = 0;
  const pushesOf = (queue: RecipientQueue): Response[] => received.filter((r) => r.corrId.length === 0 && same(r.entityId, queue.recipientId)).map((r) => r.response);
  const entries = (queue: RecipientQueue): ReadEntry[] =>
    pushesOf(queue).flatMap((r) => {
      if (r.type !== 'LENT') return [];
      const m = openMessage(queue.queueKey, r.entryId, r.sealed);
      return [{ position: Number(r.position), body: str(m.body), flags: m.flags }];
    });
  return {
    received,
    binding,
    /** Sends `command` on `queue`'s recipientId, signed by its recipient key (or `key`); resolves with the answer. */
    async request(queue: Pick<RecipientQueue, 'recipientId' | 'recipientKey'>, command: Command | Uint8Array, key = queue.recipientKey): Promise<Response> {
      const corrId = Uint8Array.of(++corr >> 8, corr & 0xff);
      const body = encodeTransmissionBody(corrId, queue.recipientId, command instanceof Uint8Array ? command : encodeCommand(command));
      socket.write(encodeBatch([encodeTransmission(sign(key, signedData(binding, body)), body)]));
      return until(() => received.find((r) => same(r.corrId, corrId))?.response, 15_000, `the answer to ${corr}`);
    },
    /** Writes a whole transmission as it is. */
    write(transmission: Uint8Array): void {
      socket.write(encodeBatch([transmission]));
    },
    pushes: pushesOf,
    entries,
    /** Waits until `n` entries of `queue` have been pushed here in all. */
    waitForEntries: (queue: RecipientQueue, n: number, ms?: number): Promise<ReadEntry[]> => until(() => entries(queue).length >= n && entries(queue), ms, `${n} entries`),
    close: () => socket.destroy(),
  };
}

const positions = (es: readonly ReadEntry[]): number[] => es.map((e) => e.position);
const bodies = (es: readonly ReadEntry[]): string[] => es.map((e) => e.body);
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('logs, relay in-process', () => {
  const fixture = inProcessRelay({ commandRate: 100_000, commandBurst: 100_000 });
  const connect = async (): Promise<RelayClient> => {
    const c = await RelayClient.connect(fixture.relay.address);
    fixture.clients.push(c);
    return c;
  };

  test('three subscribers, two writers interleaved: every subscriber gets every entry exactly once, in the same order, at dense positions', async () => {
    const owner = await connect();
    const { queue, writer } = await newLog(owner);
    const readers = await Promise.all([0, 1, 2].map(() => reader(fixture.relay.address)));
    try {
      for (const r of readers) assert.deepEqual(await r.request(queue, { type: 'LSUB', position: 1n }), OK);
      const [a, b] = [await connect(), await connect()];
      for (let i = 0; i < 25; i++) await Promise.all([a.send(writer, text(`a${i}`)), b.send(writer, text(`b${i}`), 7)]);
      const seen = await Promise.all(readers.map((r) => r.waitForEntries(queue, 50)));
      await settle();
      for (const r of readers) assert.equal(r.entries(queue).length, 50, 'no entry twice, none beyond');
      assert.deepEqual(positions(seen[0]!), range(1, 50));
      for (const s of seen.slice(1)) assert.deepEqual(s, seen[0], 'the same entries, in the same order, for every reader');
      const got = bodies(seen[0]!);
      assert.deepEqual(new Set(got).size, 50);
      // Each writer's entries keep its order; the two are interleaved by the relay.
      assert.deepEqual(got.filter((x) => x.startsWith('a')), range(0, 24).map((i) => `a${i}`));
      assert.deepEqual(got.filter((x) => x.startsWith('b')), range(0, 24).map((i) => `b${i}`));
      assert.ok(seen[0]!.every((e) => e.flags === (e.body.startsWith('b') ? 7 : 0)), 'flags travel with the entry');
      for (const r of readers) assert.ok(r.pushes(queue).every((p) => p.type === 'LENT'), 'no END to anyone');
    } finally {
      for (const r of readers) r.close();
    }
  });

  test('a subscriber from position k gets only k and after; a late subscriber gets the backlog, then live entries; LSUB again moves the cursor', async () => {
    const owner = await connect();
    const { queue, writer } = await newLog(owner);
    for (let i = 1; i <= 10; i++) await owner.send(writer, text(`e${i}`));
    const [fromFour, late] = await Promise.all([reader(fixture.relay.address), reader(fixture.relay.address)]);
    try {
      assert.deepEqual(await fromFour.request(queue, { type: 'LSUB', position: 4n }), OK);
      assert.deepEqual(positions(await fromFour.waitForEntries(queue, 7)), range(4, 10));
      assert.deepEqual(bodies(fromFour.entries(queue)), range(4, 10).map((i) => `e${i}`));
      assert.deepEqual(await late.request(queue, { type: 'LSUB', position: 1n }), OK);
      await late.waitForEntries(queue, 10);
      await owner.send(writer, text('e11'));
      await owner.send(writer, text('e12'));
      assert.deepEqual(positions(await late.waitForEntries(queue, 12)), range(1, 12), 'the backlog, then the new ones');
      assert.deepEqual(positions(await fromFour.waitForEntries(queue, 9)), range(4, 12));

      // The same connection subscribes again: from 2 now, everything from there again; then far ahead.
      assert.deepEqual(await fromFour.request(queue, { type: 'LSUB', position: 2n }), OK);
      assert.deepEqual(positions((await fromFour.waitForEntries(queue, 20)).slice(9)), range(2, 12));
      assert.deepEqual(await fromFour.request(queue, { type: 'LSUB', position: 1000n }), OK);
      await owner.send(writer, text('e13'));
      await late.waitForEntries(queue, 13);
      await settle();
      assert.equal(fromFour.entries(queue).length, 20, 'a cursor beyond the end waits there');
      assert.deepEqual(await fromFour.request(queue, { type: 'LSUB', position: 2n ** 64n - 1n }), OK, 'the largest position is a position');
    } finally {
      fromFour.close();
      late.close();
    }
  });

  test('LTRIM deletes below its position (idempotent; beyond the end, everything); a new LSUB from 1 gets only the rest, and numbering goes on', async () => {
    const owner = await connect();
    const { queue, writer } = await newLog(owner);
    for (let i = 1; i <= 6; i++) await owner.send(writer, text(`e${i}`));
    const r = await reader(fixture.relay.address);
    try {
      assert.deepEqual(await r.request(queue, { type: 'LTRIM', position: 4n }), OK);
      assert.deepEqual(await r.request(queue, { type: 'LTRIM', position: 4n }), OK, 'again');
      assert.deepEqual(await r.request(queue, { type: 'LTRIM', position: 1n }), OK, 'below what is left');
      assert.deepEqual(await r.request(queue, { type: 'LSUB', position: 1n }), OK);
      assert.deepEqual(positions(await r.waitForEntries(queue, 3)), [4, 5, 6], 'the gap shows in the positions');
      assert.deepEqual(await r.request(queue, { type: 'LTRIM', position: 2n ** 64n - 1n }), OK, 'beyond the end');
      const fresh = await reader(fixture.relay.address);
      try {
        assert.deepEqual(await fresh.request(queue, { type: 'LSUB', position: 1n }), OK);
        await settle();
        assert.deepEqual(fresh.entries(queue), [], 'nothing left');
        await owner.send(writer, text('e7'));
        assert.deepEqual(positions(await fresh.waitForEntries(queue, 1)), [7], 'the next position, not 1');
      } finally {
        fresh.close();
      }
      assert.deepEqual(await r.request(queue, Uint8Array.from([...Buffer.from('LTRIM '), 0, 0, 0, 0, 0, 0, 0, 0])), err('CMD_SYNTAX'), 'position 0');
      assert.deepEqual(await r.request(queue, Uint8Array.from([...Buffer.from('LSUB '), 0, 0, 0, 0, 0, 0, 0, 0])), err('CMD_SYNTAX'));
    } finally {
      r.close();
    }
  });

  test('SEND to a log: AUTH before KEY whether signed or not; afterwards only the sender key appends; KEY like a messaging queue', async () => {
    const owner = await connect();
    const queue = await owner.createQueue({ mode: 'log' });
    const keys = generateSigningKeyPair();
    const unsigned: SenderQueue = { relay: queue.relay, senderId: queue.senderId };
    await assert.rejects(owner.send(unsigned, text('no confirmation')), rejectsWith('AUTH'), 'a log takes no unsigned confirmation');
    await assert.rejects(owner.send({ ...unsigned, senderKey: keys.privateKey }, text('before KEY')), rejectsWith('AUTH'));
    await owner.secureQueue(queue, keys.publicKey);
    await owner.secureQueue(queue, keys.publicKey); // the same key again
    await assert.rejects(owner.secureQueue(queue, generateSigningKeyPair().publicKey), rejectsWith('AUTH'), 'another key');
    await assert.rejects(owner.send(unsigned, text('unsigned')), rejectsWith('AUTH'));
    await assert.rejects(owner.send({ ...unsigned, senderKey: generateSigningKeyPair().privateKey }, text('wrong key')), rejectsWith('AUTH'));
    await owner.send({ ...unsigned, senderKey: keys.privateKey }, text('first'));
    const r = await reader(fixture.relay.address);
    try {
      assert.deepEqual(await r.request(queue, { type: 'LSUB', position: 1n }), OK);
      assert.deepEqual(await r.waitForEntries(queue, 1), [{ position: 1, body: 'first', flags: 0 }], 'the refused SENDs took no position');
    } finally {
      r.close();
    }
  });

  test('commands of the other mode are CMD_PROHIBITED, and only for the key\'s holder', async () => {
    const owner = await connect();
    const { queue: log } = await newLog(owner);
    const messaging = await owner.createQueue();
    const contact = await owner.createQueue({ mode: 'contact' });
    const r = await reader(fixture.relay.address);
    try {
      const queueOnly: Command[] = [{ type: 'SUB' }, { type: 'SUB', window: 4 }, { type: 'GET' }, { type: 'ACK', msgId: randomBytes(24) }, { type: 'LSET', linkId: randomBytes(24), linkData: randomBytes(10) }];
      for (const c of queueOnly) {
        assert.deepEqual(await r.request(log, c), err('CMD_PROHIBITED'), `${c.type} on a log`);
        assert.deepEqual(await r.request(log, c, generateSigningKeyPair().privateKey), err('AUTH'), `${c.type} on a log with another key`);
      }
      for (const q of [messaging, contact]) {
        for (const c of [{ type: 'LSUB', position: 1n }, { type: 'LTRIM', position: 1n }] as Command[]) {
          assert.deepEqual(await r.request(q, c), err('CMD_PROHIBITED'), `${c.type} on a queue`);
          assert.deepEqual(await r.request(q, c, generateSigningKeyPair().privateKey), err('AUTH'));
        }
      }
      const unknown = { recipientId: randomBytes(24), recipientKey: generateSigningKeyPair().privateKey };
      assert.deepEqual(await r.request(unknown, { type: 'LSUB', position: 1n }), err('AUTH'), 'an unknown queue');
      // Through the client too: a log has no link data.
      await assert.rejects(owner.setLinkData(log, randomBytes(24), randomBytes(10)), rejectsWith('CMD_PROHIBITED'));
    } finally {
      r.close();
    }
  });

  test('OFF: SEND is AUTH, LSUB and LTRIM still work; DEL ends every subscription without END, and then everything is AUTH', async () => {
    const owner = await connect();
    const { queue, writer } = await newLog(owner);
    for (let i = 1; i <= 3; i++) await owner.send(writer, text(`e${i}`));
    const [a, b] = await Promise.all([reader(fixture.relay.address), reader(fixture.relay.address)]);
    try {
      await owner.suspend(queue);
      await assert.rejects(owner.send(writer, text('after OFF')), rejectsWith('AUTH'));
      assert.deepEqual(await a.request(queue, { type: 'LSUB', position: 2n }), OK);
      assert.deepEqual(positions(await a.waitForEntries(queue, 2)), [2, 3]);
      assert.deepEqual(await b.request(queue, { type: 'LTRIM', position: 3n }), OK);
      assert.deepEqual(await b.request(queue, { type: 'LSUB', position: 1n }), OK);
      assert.deepEqual(positions(await b.waitForEntries(queue, 1)), [3]);

      await owner.deleteQueue(queue);
      await settle();
      for (const r of [a, b]) assert.ok(r.pushes(queue).every((p) => p.type === 'LENT'), 'no END');
      assert.deepEqual(await a.request(queue, { type: 'LSUB', position: 1n }), err('AUTH'));
      assert.deepEqual(await a.request(queue, { type: 'LTRIM', position: 1n }), err('AUTH'));
      await assert.rejects(owner.send(writer, text('after DEL')), rejectsWith('AUTH'));
    } finally {
      a.close();
      b.close();
    }
  });

  test('DEL while subscribers read: their pushes stop at once, and a new log of the same owner is not theirs', async () => {
    const owner = await connect();
    const { queue, writer } = await newLog(owner);
    const r = await reader(fixture.relay.address);
    try {
      assert.deepEqual(await r.request(queue, { type: 'LSUB', position: 1n }), OK);
      await owner.send(writer, text('one'));
      await r.waitForEntries(queue, 1);
      await owner.deleteQueue(queue);
      const other = await newLog(owner);
      await owner.send(other.writer, text('elsewhere'));
      await settle();
      assert.deepEqual(r.received.filter((x) => x.corrId.length === 0).length, 1, 'one push in all');
    } finally {
      r.close();
    }
  });

  test('entries are re-encrypted: no LENT carries its SEND\'s bytes, and every block either way is 16 KiB', async () => {
    const blocks: { direction: 'in' | 'out'; block: Buffer }[] = [];
    const relay = await relayForOneTest(blocks);
    const owner = await RelayClient.connect(relay.address);
    try {
      const { queue, writer } = await newLog(owner);
      const r = await reader(relay.address);
      try {
        assert.deepEqual(await r.request(queue, { type: 'LSUB', position: 1n }), OK);
        const body = randomBytes(2000);
        const large = randomBytes(15 * 1024);
        await owner.send(writer, body);
        await owner.send(writer, large);
        const got = await r.waitForEntries(queue, 2);
        assert.deepEqual(positions(got), [1, 2]);
        const lents = r.pushes(queue).filter((p): p is Extract<Response, { type: 'LENT' }> => p.type === 'LENT');
        assert.deepEqual(new Uint8Array(openMessage(queue.queueKey, lents[1]!.entryId, lents[1]!.sealed).body), large, 'the largest body arrives whole');
        const probe = Buffer.from(body.subarray(0, 64));
        assert.ok(blocks.some((b) => b.direction === 'in' && b.block.includes(probe)), 'the check can see a SEND\'s body');
        assert.ok(!blocks.some((b) => b.direction === 'out' && b.block.includes(probe)), 'no block the relay sent carries it');
        assert.ok(!blocks.some((b) => b.direction === 'out' && b.block.includes(Buffer.from(large.subarray(0, 64)))));
        assert.ok(blocks.every((b) => b.block.length === BLOCK_SIZE), 'every block is 16 KiB');
        assert.ok(blocks.filter((b) => b.direction === 'out').length >= 3);
      } finally {
        r.close();
      }
    } finally {
      await owner.close();
      await relay.close();
    }
  });

  test('a subscriber to a log of a few thousand entries receives them all, in order', async () => {
    const owner = await connect();
    const { queue, writer } = await newLog(owner);
    const total = 3000;
    for (let i = 0; i < total; i += 250) {
      await Promise.all(range(i, Math.min(total, i + 250) - 1).map((n) => owner.send(writer, text(`entry ${n} `.padEnd(400, '.')))));
    }
    const r = await reader(fixture.relay.address);
    try {
      assert.deepEqual(await r.request(queue, { type: 'LSUB', position: 1n }), OK);
      const got = await r.waitForEntries(queue, total, 60_000);
      assert.deepEqual(positions(got), range(1, total));
      // Sends in one Promise.all may commit in any order among themselves: every one once is what counts.
      assert.equal(new Set(bodies(got)).size, total);
    } finally {
      r.close();
    }
  });

  test('log subscriptions count toward maxSubscriptionsPerConnection with queue subscriptions', async () => {
    const relay = await relayForOneTest([], { maxSubscriptionsPerConnection: 2 });
    const owner = await RelayClient.connect(relay.address);
    const r = await reader(relay.address);
    try {
      const [one, two] = [await newLog(owner), await newLog(owner)];
      const queue = await owner.createQueue();
      assert.deepEqual(await r.request(queue, { type: 'SUB' }), OK);
      assert.deepEqual(await r.request(one.queue, { type: 'LSUB', position: 1n }), OK);
      assert.deepEqual(await r.request(two.queue, { type: 'LSUB', position: 1n }), { type: 'ERR', code: 'BUSY', retryAfterMs: 1000 });
      assert.deepEqual(await r.request(one.queue, { type: 'LSUB', position: 5n }), OK, 'the same log again is not one more');
    } finally {
      r.close();
      await owner.close();
      await relay.close();
    }
  });
});

/** A relay in this process for one test; every block it receives and sends goes to `blocks`. */
function relayForOneTest(blocks: { direction: 'in' | 'out'; block: Buffer }[], options: Partial<StartOptions> = {}): Promise<RunningRelay> {
  return startRelay({
    dataDir: tempDir(),
    port: 0,
    logLevel: 'silent',
    powBits: 0,
    trace: (direction, block) => blocks.push({ direction, block: Buffer.from(block) }),
    ...options,
  });
}

describe('logs with a small quota, a short TTL and a short maximum message', () => {
  const fixture = inProcessRelay({ logQuota: 16, maxMessageLength: 1000, commandRate: 100_000, commandBurst: 100_000 });

  test('logQuota is 16..1,000,000, default 4096', () => {
    assert.equal(resolveConfig({ dataDir: '/unused' }).logQuota, 4096);
    assert.deepEqual(LOG_QUOTA_RANGE, { min: 16, max: 1_000_000 });
    for (const logQuota of [15, 1_000_001, 0, 16.5]) assert.throws(() => resolveConfig({ dataDir: '/unused', logQuota }), /logQuota/);
    for (const logQuota of [16, 1_000_000]) assert.equal(resolveConfig({ dataDir: '/unused', logQuota }).logQuota, logQuota);
  });

  test('over the quota the oldest entries go, positions keep increasing, and SEND never answers QUOTA', async () => {
    const owner = await RelayClient.connect(fixture.relay.address);
    fixture.clients.push(owner);
    const { queue, writer } = await newLog(owner);
    for (let i = 1; i <= 20; i++) await owner.send(writer, text(`e${i}`));
    const r = await reader(fixture.relay.address);
    try {
      assert.deepEqual(await r.request(queue, { type: 'LSUB', position: 1n }), OK);
      assert.deepEqual(positions(await r.waitForEntries(queue, 16)), range(5, 20), 'the 16 newest');
      assert.deepEqual(bodies(r.entries(queue)), range(5, 20).map((i) => `e${i}`));
      await owner.send(writer, text('e21'));
      assert.deepEqual(positions(await r.waitForEntries(queue, 17)).at(-1), 21);
      const again = await reader(fixture.relay.address);
      try {
        assert.deepEqual(await again.request(queue, { type: 'LSUB', position: 1n }), OK);
        assert.deepEqual(positions(await again.waitForEntries(queue, 16)), range(6, 21));
      } finally {
        again.close();
      }
      assert.equal((await fixture.relay.store.stats()).entries, 16);
    } finally {
      r.close();
    }
  });

  test('a body over maxMessageLength is LARGE_MSG, after authorisation', async () => {
    const owner = await RelayClient.connect(fixture.relay.address);
    fixture.clients.push(owner);
    const { queue, writer } = await newLog(owner);
    await assert.rejects(owner.send(writer, new Uint8Array(1001)), rejectsWith('LARGE_MSG'));
    await assert.rejects(owner.send({ ...writer, senderKey: generateSigningKeyPair().privateKey }, new Uint8Array(1001)), rejectsWith('AUTH'));
    await owner.send(writer, new Uint8Array(1000));
    const r = await reader(fixture.relay.address);
    try {
      assert.deepEqual(await r.request(queue, { type: 'LSUB', position: 1n }), OK);
      assert.deepEqual(positions(await r.waitForEntries(queue, 1)), [1]);
    } finally {
      r.close();
    }
  });
});

describe('logs with a TTL of 2 s', () => {
  const fixture = inProcessRelay({ messageTtlSeconds: 2 });

  test('expired entries are never pushed and the sweep deletes them; positions go on', async () => {
    const owner = await RelayClient.connect(fixture.relay.address);
    fixture.clients.push(owner);
    const { queue, writer } = await newLog(owner);
    await owner.send(writer, text('old 1'));
    await owner.send(writer, text('old 2'));
    await sleep(2200);
    await owner.send(writer, text('new'));
    const r = await reader(fixture.relay.address);
    try {
      assert.deepEqual(await r.request(queue, { type: 'LSUB', position: 1n }), OK);
      assert.deepEqual(await r.waitForEntries(queue, 1), [{ position: 3, body: 'new', flags: 0 }]);
      await settle();
      assert.equal(r.entries(queue).length, 1, 'the expired ones are not pushed');
      assert.ok((await fixture.relay.sweepExpired()) >= 2);
      assert.equal((await fixture.relay.store.stats()).entries, 1);
    } finally {
      r.close();
    }
  });
});

describe('logs and version 5', () => {
  const fixture = inProcessRelay();

  test('on a version 5 connection LSUB and LTRIM are CMD_UNKNOWN and NEW of a log CMD_SYNTAX; everything of version 5 still works there', async () => {
    const owner = await RelayClient.connect(fixture.relay.address);
    fixture.clients.push(owner);
    const { queue, writer } = await newLog(owner);
    await owner.send(writer, text('for version 6 readers'));
    const v5 = await reader(fixture.relay.address, SESSION_MAC_VERSION);
    try {
      assert.deepEqual(await v5.request(queue, { type: 'LSUB', position: 1n }), err('CMD_UNKNOWN'));
      assert.deepEqual(await v5.request(queue, { type: 'LTRIM', position: 1n }), err('CMD_UNKNOWN'));
      const creator = generateSigningKeyPair();
      const newCommand = (queueMode: 'log' | 'messaging'): Command => ({ type: 'NEW', recipientAuthKey: creator.publicKey, recipientDhKey: generateDhKeyPair().publicKey, basicAuth: new Uint8Array(0), queueMode, powNonce: new Uint8Array(0) });
      const create = async (queueMode: 'log' | 'messaging'): Promise<Response> => {
        const corrId = randomBytes(4);
        const body = encodeTransmissionBody(corrId, new Uint8Array(0), encodeCommand(newCommand(queueMode)));
        v5.write(encodeTransmission(sign(creator.privateKey, signedData(v5.binding, body)), body));
        return until(() => v5.received.find((x) => same(x.corrId, corrId))?.response);
      };
      assert.deepEqual(await create('log'), err('CMD_SYNTAX'));
      const ids = await create('messaging');
      assert.equal(ids.type, 'IDS', 'a messaging queue, as ever');

      // A version 5 session: a queue subscribed, a message pushed, a MAC key registered and used.
      const q = await owner.createQueue();
      assert.deepEqual(await v5.request(q, { type: 'SUB' }), OK);
      await owner.send({ relay: q.relay, senderId: q.senderId }, text('hello v5'));
      const msg = await until(() => v5.pushes(q).find((p) => p.type === 'MSG'));
      assert.equal(msg.type === 'MSG' && str(openMessage(q.queueKey, msg.msgId, msg.encryptedBody).body), 'hello v5');
      const macKey = randomBytes(32);
      const authenticated = async (n: number, auth: Parameters<typeof encodeAuthenticatedTransmission>[4]): Promise<Response> => {
        const corrId = Uint8Array.of(0xf0, n);
        v5.write(encodeAuthenticatedTransmission(v5.binding, corrId, q.recipientId, encodeCommand({ type: 'GET' }), auth));
        return until(() => v5.received.find((x) => same(x.corrId, corrId))?.response);
      };
      assert.equal((await authenticated(1, { form: 'register', signingKey: q.recipientKey, macKey })).type, 'MSG');
      assert.equal((await authenticated(2, { form: 'mac', macKey })).type, 'MSG');
      assert.deepEqual(v5.pushes(queue), [], 'no LENT on version 5');
    } finally {
      v5.close();
    }
  });
});

test('an entry answered OK survives kill -9; the restarted relay continues numbering where it left off', async () => {
  let relay: RelayProcess = await startRelayProcess({ args: ['--rate', '100000'] });
  const clients: RelayClient[] = [];
  try {
    const owner = await RelayClient.connect(relay.address, { reconnect: false, commandTimeoutMs: 5000 });
    clients.push(owner);
    const { queue, writer } = await newLog(owner);
    const { acknowledged, killed } = await sendUntilKilled(relay, 300, 100, (i) => `entry ${i}`, (label) => owner.send(writer, text(label)));
    await relay.stop();
    assert.ok(killed && acknowledged.length >= 100 && acknowledged.length < 300, `killed mid-stream (${acknowledged.length} OK)`);

    relay = await startRelayProcess({ dataDir: relay.dataDir, port: relay.port, args: ['--rate', '100000'] });
    const r = await reader(parseAddress(relay.address));
    try {
      assert.deepEqual(await r.request(queue, { type: 'LSUB', position: 1n }), OK);
      await r.waitForEntries(queue, acknowledged.length);
      await settle(); // entries committed just before the kill, beyond those answered, may follow
      const stored = r.entries(queue);
      assert.deepEqual(positions(stored), range(1, stored.length), 'dense from 1');
      const missing = acknowledged.filter((l) => !bodies(stored).includes(l));
      assert.deepEqual(missing, [], 'every entry answered OK is there');
      const writerAgain = await RelayClient.connect(relay.address);
      clients.push(writerAgain);
      await writerAgain.send(writer, text('after the restart'));
      const [next] = (await r.waitForEntries(queue, stored.length + 1)).slice(stored.length);
      assert.deepEqual(next, { position: stored.length + 1, body: 'after the restart', flags: 0 }, 'the next position, none reused');
    } finally {
      r.close();
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await relay.stop();
  }
});

test('at the dispatcher: a closed connection\'s log subscriptions, and every subscription of a deleted log, are forgotten; a closed connection takes none', async () => {
  const store = new SqliteQueueStore(':memory:');
  const dispatcher = new Dispatcher(store, resolveConfig({ dataDir: '/unused' }));
  try {
    const owner = generateSigningKeyPair();
    const logs = [randomBytes(24), randomBytes(24)];
    for (const recipientId of logs) await store.createQueue({ recipientId, senderId: randomBytes(24), recipientKey: owner.publicKey, queueKey: randomBytes(32), mode: 'log' });
    const session = (): ClientSession => ({ binding: randomBytes(32), push: () => undefined });
    const run = (s: ClientSession, entityId: Uint8Array, command: Command): Promise<Response> => {
      const body = encodeTransmissionBody(Uint8Array.of(1), entityId, encodeCommand(command));
      return dispatcher.handle(s, decodeTransmission(encodeTransmission(sign(owner.privateKey, signedData(s.binding, body)), body)));
    };
    const [a, b] = [session(), session()];
    for (const s of [a, b]) for (const id of logs) assert.deepEqual(await run(s, id, { type: 'LSUB', position: 1n }), OK);
    assert.deepEqual(await run(a, logs[0]!, { type: 'LSUB', position: 3n }), OK, 'again: the same subscription');
    assert.equal(dispatcher.logSubscriptionCount, 4);
    dispatcher.closeSession(a);
    assert.equal(dispatcher.logSubscriptionCount, 2);
    assert.deepEqual(await run(b, logs[1]!, { type: 'DEL' }), OK);
    assert.equal(dispatcher.logSubscriptionCount, 1);
    dispatcher.closeSession(b);
    assert.equal(dispatcher.logSubscriptionCount, 0);
    // An LSUB still in hand (its queue being looked up) when its connection closes subscribes nothing.
    const c = session();
    const late = run(c, logs[0]!, { type: 'LSUB', position: 1n });
    dispatcher.closeSession(c);
    await late;
    assert.equal(dispatcher.logSubscriptionCount, 0);
  } finally {
    await store.close();
  }
});
