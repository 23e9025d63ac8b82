// test-file-timeout: 300
/** Abuse resistance without identity: proof of work for queue creation, load shedding. */
import { test } from 'node:test';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { RelayClient } from '../../src/client/relay-client.js';
import { PowError, RelayError } from '../../src/client/errors.js';
import { openTransport, type RelayTransport } from '../../src/transport/session.js';
import { generateDhKeyPair, generateSigningKeyPair, sign } from '../../src/crypto/keys.js';
import { BLOCK_SIZE, decodeBatch, encodeBatch } from '../../src/protocol/block.js';
import { decodeResponse, encodeCommand, MAX_PUSH_WINDOW, type Response } from '../../src/protocol/commands.js';
import { parseAddress } from '../../src/protocol/address.js';
import { searchPow, solvePow, verifyPow } from '../../src/protocol/pow.js';
import { INLINE_ATTEMPTS, solvePowOffThread } from '../../src/client/pow-solver.js';
import { decodeTransmission, encodeTransmission, encodeTransmissionBody, signedData } from '../../src/protocol/transmission.js';
import { rssBytes, startRelayProcess } from '../helpers/relay-process.js';
import { runChild } from '../helpers/processes.js';

const ROOT = join(import.meta.dirname, '..', '..');

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

test('the client\'s solver: a nonce found by its worker thread verifies; an abort stops the worker', async () => {
  // Fixed inputs for which none of the first INLINE_ATTEMPTS nonces has 16 bits, so the worker finds it.
  const binding = new Uint8Array(32).fill(1);
  const key = new Uint8Array(32).fill(2);
  assert.equal(searchPow(binding, key, 16, 0n, INLINE_ATTEMPTS), undefined);
  const nonce = await solvePowOffThread(binding, key, 16, { maxBits: 28, deadline: performance.now() + 60_000, relay: 'test' });
  assert.ok(verifyPow(binding, key, nonce, 16));
  assert.equal(nonce.length, 8);
  const abort = new AbortController();
  const stopped = solvePowOffThread(binding, key, 28, { maxBits: 28, deadline: performance.now() + 60_000, relay: 'test', signal: abort.signal });
  setTimeout(() => abort.abort(new Error('stop')), 100);
  await assert.rejects(stopped, /stop/);
  await assert.rejects(solvePowOffThread(binding, key, 29, { maxBits: 40, deadline: performance.now() + 60_000, relay: 'test' }), (e: unknown) => e instanceof PowError && e.reason === 'TOO_HARD', 'never above the protocol maximum');
});

test('the solver\'s worker runs in a process that treats eval code as an ES module too', async () => {
  const script = `
    const { solvePowOffThread } = await import(${JSON.stringify(join(ROOT, 'src', 'client', 'pow-solver.ts'))});
    const { verifyPow } = await import(${JSON.stringify(join(ROOT, 'src', 'protocol', 'pow.ts'))});
    const b = new Uint8Array(32).fill(1), k = new Uint8Array(32).fill(2);
    const n = await solvePowOffThread(b, k, 16, { maxBits: 28, deadline: performance.now() + 60000, relay: 'x' });
    console.log(verifyPow(b, k, n, 16) ? 'verified' : 'wrong');`;
  const r = await runChild(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeoutMs: 60_000 });
  assert.equal(r.stdout.trim(), 'verified', r.stderr);
});

/** Signed NEWs for `t`'s session, each with the nonce `nonceFor(key)` returns. */
function newBatch(t: { binding: Uint8Array }, round: number, count: number, nonceFor: (key: Uint8Array) => Uint8Array): Uint8Array {
  const batch: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const auth = generateSigningKeyPair();
    const cmd = encodeCommand({ type: 'NEW', recipientAuthKey: auth.publicKey, recipientDhKey: generateDhKeyPair().publicKey, basicAuth: new Uint8Array(0), queueMode: 'messaging', powNonce: nonceFor(auth.publicKey) });
    const body = encodeTransmissionBody(Uint8Array.of(round >> 8, round & 255, i), new Uint8Array(0), cmd);
    batch.push(encodeTransmission(sign(auth.privateKey, signedData(t.binding, body)), body));
  }
  return encodeBatch(batch);
}

test('a flood of NEWs without work is refused and does not raise the price a legitimate client pays; NEWs with valid work still raise it', async () => {
  const relay = await startRelayProcess({ args: ['--pow-bits', '8', '--rate', '100000'] });
  const flood = await openTransport(parseAddress(relay.address), 5000);
  const answers: Response[] = [];
  flood.socket.on('data', (chunk: Buffer) => {
    for (const block of flood.reader.push(chunk)) for (const t of decodeBatch(block)) answers.push(decodeResponse(decodeTransmission(t).command));
  });
  const waitForAnswers = async (n: number): Promise<void> => {
    const deadline = Date.now() + 20_000;
    while (answers.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(answers.length, n);
  };
  // Every block the legitimate client receives, to see whether the relay ever asked it for more.
  const legitAnswers: Response[] = [];
  const legit = await RelayClient.connect(relay.address, {
    trace: (direction, block) => {
      if (direction === 'in') for (const t of decodeBatch(block)) legitAnswers.push(decodeResponse(decodeTransmission(t).command));
    },
  });
  try {
    assert.equal(flood.powBits, 8, 'the hello announces the price');
    // 1000 NEWs without work, far above the 20 per second that would raise the price if they counted.
    const rounds = 20;
    const perBlock = 50;
    for (let r = 0; r < rounds; r++) flood.socket.write(newBatch(flood, r, perBlock, () => new Uint8Array(0)));
    await waitForAnswers(rounds * perBlock);
    assert.equal(answers.filter((a) => a.type === 'IDS').length, 0, 'no queue was created without work');
    const bits = answers.map((a) => (a.type === 'POW' ? a.bits : -1));
    assert.deepEqual([...new Set(bits)], [8], 'every refusal names the base price: the flood did not raise it');
    // A legitimate client now pays the base price: its hello says 8, and no NEW of its is sent back for more.
    const fresh = await openTransport(parseAddress(relay.address), 5000);
    assert.equal(fresh.powBits, 8);
    fresh.socket.destroy();
    const q = await legit.createQueue();
    await legit.send({ relay: q.relay, senderId: q.senderId }, new TextEncoder().encode('still served'));
    assert.equal(new TextDecoder().decode((await legit.get(q))!.body), 'still served');
    assert.equal(legitAnswers.filter((a) => a.type === 'POW').length, 0, 'the legitimate client was never asked for more work');
    // NEWs that carry the base work do count: 300 of them at once raise the price.
    answers.length = 0;
    for (let r = 0; r < 6; r++) flood.socket.write(newBatch(flood, 100 + r, 50, (key) => solvePow(flood.binding, key, 8)));
    await waitForAnswers(300);
    const raised = Math.max(...answers.map((a) => (a.type === 'POW' ? a.bits : 0)));
    assert.ok(raised > 8, `solved NEWs raise the price (max ${raised} bits)`);
    assert.ok(answers.some((a) => a.type === 'IDS'), 'solved NEWs at the current price create queues');
  } finally {
    flood.socket.destroy();
    await legit.close();
    await relay.stop();
  }
});

test('a client solving a high price keeps its event loop running, and gives up at its bounds with PowError', async () => {
  // 24 bits: about 16 million hashes, far more than two seconds of work.
  const relay = await startRelayProcess({ args: ['--pow-bits', '24'] });
  const client = await RelayClient.connect(relay.address, { powTimeoutMs: 2000 });
  try {
    let last = performance.now();
    let maxGap = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      ticks++;
    }, 20);
    const started = performance.now();
    const outcome = await client.createQueue().then(
      () => 'created',
      (e: unknown) => e,
    );
    clearInterval(timer);
    const elapsed = performance.now() - started;
    // Almost always the bound ends it (TIMEOUT); a lucky solve creates the queue. Either way the
    // timer kept firing while the work went on.
    if (outcome !== 'created') {
      assert.ok(outcome instanceof PowError && outcome.reason === 'TIMEOUT' && outcome.bits === 24, String(outcome));
      assert.ok(elapsed < 30_000, `gave up at its bound, not after ${Math.round(elapsed)} ms`);
    }
    assert.ok(maxGap < 1000, `the event loop stalled for ${Math.round(maxGap)} ms while solving`);
    assert.ok(ticks >= Math.min(10, elapsed / 200), `${ticks} ticks in ${Math.round(elapsed)} ms`);
    // A price over the client's own limit is refused before any work.
    const strict = await RelayClient.connect(relay.address, { maxPowBits: 20 });
    await assert.rejects(strict.createQueue(), (e: unknown) => e instanceof PowError && e.reason === 'TOO_HARD' && e.bits === 24);
    await strict.close();
    await client.ping();
  } finally {
    await client.close();
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


/**
 * docs/protocol.md §12: the answers waiting for one connection never exceed
 * 64 blocks plus what one block of commands and one push add after the last
 * check, 68 blocks in all; the memory they take is at most twice that (TLS
 * holds an encrypted copy of the write in progress).
 */
const OUTPUT_BOUND = 68 * BLOCK_SIZE;
/** What else a connection that stops reading holds: its 16 waiting input blocks, and a margin for its state. */
const PER_CLIENT_MARGIN = 16 * BLOCK_SIZE + 512 * 1024;
/**
 * For the rest of the relay process while this runs (heap and allocator growth). The whole growth
 * for 12 clients measured 25.7 to 42.9 MiB across runs of the same code on a 2-core VM (garbage not
 * yet collected, malloc arenas), so 8 MiB here failed about one run in ten; the bug this guards
 * against (answers buffered without bound) grows the relay by about 100 MB per client.
 */
const PROCESS_MARGIN = 24 * 1024 * 1024;

test('one block asking for more answers than the output budget is cut short: BUSY with the retry hint for the rest', async () => {
  const relay = await startRelayProcess({ args: ['--rate', '1000000'] });
  const owner = await RelayClient.connect(relay.address);
  try {
    const q = await owner.createQueue();
    await owner.send({ relay: q.relay, senderId: q.senderId }, new Uint8Array(15 * 1024).fill(7));
    const t = await openTransport(parseAddress(relay.address), 5000);
    const answers: Response[] = [];
    t.socket.on('data', (chunk: Buffer) => {
      for (const block of t.reader.push(chunk)) for (const b of decodeBatch(block)) answers.push(decodeResponse(decodeTransmission(b).command));
    });
    // 165 GETs of a 15 KiB message in one block: 2.6 MB of answers, the budget is 1 MiB.
    const body = encodeTransmissionBody(Uint8Array.of(1), q.recipientId, encodeCommand({ type: 'GET' }));
    const get = encodeTransmission(sign(q.recipientKey, signedData(t.binding, body)), body);
    t.socket.write(encodeBatch(Array.from({ length: 165 }, () => get)));
    const deadline = Date.now() + 20_000;
    while (answers.length < 165 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(answers.length, 165, 'every command is answered');
    const served = answers.findIndex((a) => a.type !== 'MSG');
    assert.ok(served > 0 && served <= OUTPUT_BOUND / BLOCK_SIZE, `${served} GETs were served before the budget ran out`);
    for (const a of answers.slice(served)) assert.deepEqual(a, { type: 'ERR', code: 'BUSY', retryAfterMs: 1000 });
    // The connection goes on: the next block is served once the answers are read.
    t.socket.write(encodeBatch([get]));
    while (answers.length < 166 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(answers[165]?.type, 'MSG');
    t.socket.destroy();
  } finally {
    await owner.close();
    await relay.stop();
  }
});
test('clients that do not read their answers make the relay hold at most the documented output budget each', async (t) => {
  const relay = await startRelayProcess({ args: ['--rate', '1000000'] });
  const owner = await RelayClient.connect(relay.address);
  const rss = (): number => rssBytes(relay.process.pid!);
  const transports: RelayTransport[] = [];
  try {
    const q = await owner.createQueue();
    await owner.send({ relay: q.relay, senderId: q.senderId }, new Uint8Array(15 * 1024).fill(7));
    // 40 blocks of 165 GETs of a 15 KiB message, about 100 MB of answers, from a client that reads nothing.
    // One such block alone asks for 2.6 MB of answers: the budget must be checked per command, not per block.
    const flood = async (): Promise<RelayTransport> => {
      const c = await openTransport(parseAddress(relay.address), 5000);
      c.socket.pause();
      // One signed GET, repeated: the relay answers each (corrIds need not differ), and signing once is fast.
      const body = encodeTransmissionBody(Uint8Array.of(1), q.recipientId, encodeCommand({ type: 'GET' }));
      const get = encodeTransmission(sign(q.recipientKey, signedData(c.binding, body)), body);
      const block = encodeBatch(Array.from({ length: 165 }, () => get));
      for (let b = 0; b < 40; b++) c.socket.write(block);
      return c;
    };
    // Warm up: reading clients' GETs and one non-reading client that then goes away, so that the
    // relay's code, heap and allocator have grown for this work before the measurement.
    // A relay whose answers to the previous round are not yet off its books (a busy machine) may
    // answer BUSY with a retry hint: a reading client waits that long and asks again.
    const getPolitely = async (): Promise<void> => {
      for (;;) {
        try {
          await owner.get(q);
          return;
        } catch (e) {
          if (!(e instanceof RelayError && e.code === 'BUSY')) throw e;
          await new Promise((r) => setTimeout(r, e.retryAfterMs ?? 100));
        }
      }
    };
    for (let k = 0; k < 20; k++) await Promise.all(Array.from({ length: 50 }, getPolitely));
    const warm = await flood();
    await new Promise((r) => setTimeout(r, 3000));
    warm.socket.destroy();
    await new Promise((r) => setTimeout(r, 1000));
    const before = rss();
    const clients = 12;
    // One after another, so that what one client's answers leave as garbage is collected and its
    // memory reused before the next: the growth measured is what the relay keeps, not what it churns.
    for (let c = 0; c < clients; c++) {
      transports.push(await flood());
      await new Promise((r) => setTimeout(r, 500));
    }
    await new Promise((r) => setTimeout(r, 4000));
    const grown = rss() - before;
    const allowed = clients * (2 * OUTPUT_BOUND + PER_CLIENT_MARGIN) + PROCESS_MARGIN;
    const mib = (n: number): string => (n / 1048576).toFixed(1);
    t.diagnostic(`relay memory grew by ${mib(grown)} MiB for ${clients} clients (${mib(grown / clients)} MiB each); allowed ${mib(allowed)} MiB`);
    assert.ok(grown <= allowed, `relay memory grew by ${mib(grown)} MiB for ${clients} clients (${mib(grown / clients)} MiB each); allowed ${mib(allowed)} MiB`);
    // The relay still serves everyone else.
    await owner.ping();
  } finally {
    for (const c of transports) c.socket.destroy();
    await owner.close();
    await relay.stop();
  }
});

test('a subscriber that does not read cannot make the relay buffer a message per queue', async () => {
  const relay = await startRelayProcess({ args: ['--rate', '1000000', '--pow-bits', '0'] });
  const owner = await RelayClient.connect(relay.address);
  const rss = (): number => rssBytes(relay.process.pid!);
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

test('nor can it with the largest push window: every push waits for room in the output budget', async (t) => {
  const relay = await startRelayProcess({ args: ['--rate', '1000000', '--pow-bits', '0'] });
  const owner = await RelayClient.connect(relay.address);
  const rss = (): number => rssBytes(relay.process.pid!);
  try {
    // 100 contact queues holding 32 messages of 15 KiB each: a window of 32 on each of them would
    // let the relay push about 48 MB at once to a subscriber that reads nothing.
    const queues = await Promise.all(Array.from({ length: 100 }, () => owner.createQueue({ mode: 'contact' })));
    const body = new Uint8Array(15 * 1024).fill(9);
    for (let k = 0; k < MAX_PUSH_WINDOW; k++) {
      await Promise.all(queues.map((q) => owner.send({ relay: q.relay, senderId: q.senderId }, body)));
    }
    await new Promise((r) => setTimeout(r, 1000));
    const before = rss();
    const reader = await openTransport(parseAddress(relay.address), 5000);
    reader.socket.pause(); // subscribes to everything with the largest window, never reads
    const subs = queues.map((q, j) => {
      const b = encodeTransmissionBody(Uint8Array.of(j), q.recipientId, encodeCommand({ type: 'SUB', window: MAX_PUSH_WINDOW }));
      return encodeTransmission(sign(q.recipientKey, signedData(reader.binding, b)), b);
    });
    reader.socket.write(encodeBatch(subs));
    await new Promise((r) => setTimeout(r, 3000));
    const grown = rss() - before;
    t.diagnostic(`relay memory grew by ${(grown / 1048576).toFixed(1)} MiB`);
    // The budget holds at most 68 blocks (about 2.2 MiB with TLS's copy). Reading a whole window per
    // subscription before pushing (every waiting subscription reads when the socket drains) grew it by 60 MiB.
    // With the bound kept, RSS still moves by 0 to 18 MiB here (the heap and allocator settling after the
    // 48 MB of SENDs before): 32 MiB tells the two apart (16 was crossed in about one run in five).
    assert.ok(grown < 32 * 1024 * 1024, `relay memory grew by ${(grown / 1048576).toFixed(1)} MiB`);
    await owner.ping();
    reader.socket.destroy();
  } finally {
    await owner.close();
    await relay.stop();
  }
});

test('nor can subscribers of a log that do not read: the backlog stays on disk, each holds at most its output budget', async (t) => {
  const relay = await startRelayProcess({ args: ['--rate', '1000000', '--pow-bits', '0'] });
  const owner = await RelayClient.connect(relay.address);
  const rss = (): number => rssBytes(relay.process.pid!);
  const readers: RelayTransport[] = [];
  try {
    // A log of 3000 entries of 15 KiB: 46 MB that four readers would each buffer (and TLS copy) if
    // the relay read a backlog into memory, or pushed without waiting for room.
    const log = await owner.createQueue({ mode: 'log' });
    const keys = generateSigningKeyPair();
    await owner.secureQueue(log, keys.publicKey);
    const writer = { relay: log.relay, senderId: log.senderId, senderKey: keys.privateKey };
    const body = new Uint8Array(15 * 1024).fill(5);
    for (let i = 0; i < 3000; i += 100) await Promise.all(Array.from({ length: 100 }, () => owner.send(writer, body)));
    await new Promise((r) => setTimeout(r, 1000));
    const before = rss();
    for (let i = 0; i < 4; i++) {
      const reader = await openTransport(parseAddress(relay.address), 5000);
      reader.socket.pause(); // subscribes from the first entry, never reads
      readers.push(reader);
      const b = encodeTransmissionBody(Uint8Array.of(1), log.recipientId, encodeCommand({ type: 'LSUB', position: 1n }));
      reader.socket.write(encodeBatch([encodeTransmission(sign(log.recipientKey, signedData(reader.binding, b)), b)]));
    }
    await new Promise((r) => setTimeout(r, 3000));
    const grown = rss() - before;
    t.diagnostic(`relay memory grew by ${(grown / 1048576).toFixed(1)} MiB for 4 readers of a 46 MB log`);
    // Each reader costs at most its budget (68 blocks, about 2.2 MiB with TLS's copy), beside the
    // 32 MiB the window test above found RSS moves by anyway; one reader's backlog alone is 46 MB.
    // Without the check before each push the relay grew by 425 MiB here; with it, by about 22.
    const allowed = readers.length * 2.25 * 1048576 + 32 * 1048576;
    assert.ok(grown < allowed, `relay memory grew by ${(grown / 1048576).toFixed(1)} MiB, allowed ${(allowed / 1048576).toFixed(1)}`);
    await owner.ping();
  } finally {
    for (const r of readers) r.socket.destroy();
    await owner.close();
    await relay.stop();
  }
});
