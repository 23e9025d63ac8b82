/**
 * Batched receipts (docs/agent.md §5): one receipt for everything received
 * since the last one; it rides on our next message (MSGR) to a contact
 * whose messages are version 3 or later, and goes alone (RCPT) otherwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type Database from 'better-sqlite3-multiple-ciphers';
import { pino } from 'pino';
import { AGENT_VERSION, decodeMessage, encodeMessage, MAX_BODY_LENGTH, messageVersion } from '../../src/agent/envelope.js';
import { startRelayProcess } from '../helpers/relay-process.js';
import { openAgent, syncUntil, text, type TestAgent } from '../helpers/agent-harness.js';
import { MemoryLog } from '../helpers/memory-log.js';

/** Polls `done` every 20 ms until it holds or `deadline` (ms since the epoch) passes. */
async function waitFor(done: () => boolean, deadline: number): Promise<void> {
  while (Date.now() < deadline && !done()) await new Promise((r) => setTimeout(r, 20));
}

test('MSGR: a MSG with a receipt round-trips, as tag 12 (version 3 and later); without one it is the MSG of before', () => {
  const withReceipt = { tag: 'MSG', seq: 7, sentAt: 1_700_000_000, body: text('hi'), receipt: { upTo: 41, skipped: [{ from: 3, to: 4 }] } } as const;
  const bytes = encodeMessage(withReceipt);
  assert.equal(AGENT_VERSION, 4);
  assert.equal(messageVersion(bytes), AGENT_VERSION);
  assert.equal(bytes[1], 12);
  assert.deepEqual(decodeMessage(bytes), withReceipt);
  const plain = encodeMessage({ tag: 'MSG', seq: 7, sentAt: 1, body: text('hi') });
  assert.equal(plain[1], 3);
  assert.deepEqual(decodeMessage(plain), { tag: 'MSG', seq: 7, sentAt: 1, body: text('hi') });
  assert.throws(() => encodeMessage({ ...withReceipt, receipt: { upTo: 2, skipped: [{ from: 3, to: 4 }] } }), RangeError);
  assert.ok(MAX_BODY_LENGTH > 12_000);
});

/** Counts the messages an agent queues (each is one ratchet step), with a trigger on its outbox. */
function countOutgoing(a: TestAgent): () => number {
  const db: Database.Database = a.db;
  db.exec('CREATE TEMP TABLE IF NOT EXISTS queued (n INTEGER); CREATE TEMP TRIGGER IF NOT EXISTS count_queued AFTER INSERT ON agent_outbox BEGIN INSERT INTO queued VALUES (1); END;');
  return () => (db.prepare('SELECT COUNT(*) AS n FROM queued').get() as { n: number }).n;
}

async function connected(relay: string, bobOptions = {}): Promise<{ alice: TestAgent; bob: TestAgent; a2b: string; b2a: string }> {
  const alice = openAgent([relay]);
  const bob = openAgent([relay], undefined, bobOptions);
  for (const a of [alice, bob]) a.agent.setRouting('direct');
  const { connectionId: a2b, link } = await alice.agent.createInvitation(text('Alice'));
  const { connectionId: b2a } = await bob.agent.connect(link, text('Bob'));
  await syncUntil([alice, bob], () => alice.events.connected.has(a2b) && bob.events.connected.has(b2a));
  await syncUntil([alice, bob], () => alice.agent.connection(a2b)!.pendingOutgoing === 0 && bob.agent.connection(b2a)!.pendingOutgoing === 0);
  return { alice, bob, a2b, b2a };
}

test('twenty messages received in one sync cost one receipt, which covers all of them', async () => {
  const relay = await startRelayProcess();
  const { alice, bob, a2b, b2a } = await connected(relay.address);
  try {
    const queued = countOutgoing(bob);
    for (let i = 1; i <= 20; i++) alice.agent.send(a2b, text(`m${i}`));
    await alice.agent.sync();
    await bob.agent.sync();
    assert.equal(bob.events.messages.get(b2a)?.length, 20);
    assert.equal(queued(), 1, 'one RCPT');
    await alice.agent.sync();
    assert.deepEqual(alice.events.delivered.get(a2b), Array.from({ length: 20 }, (_, i) => i + 1));
  } finally {
    await alice.agent.close();
    await bob.agent.close();
    await relay.stop();
  }
});

/**
 * Alice sends "ping"; once Bob has it, `beforeReply` runs and Bob answers
 * "pong"; resolves once Alice has the receipt for "ping" (or `waitMs`
 * passed). Both agents in start() mode; Bob's receipt delay `receiptDelayMs`.
 */
async function pingPong(receiptDelayMs: number, waitMs: number, beforeReply: (bob: TestAgent) => void = () => undefined) {
  const relay = await startRelayProcess();
  const { alice, bob, a2b, b2a } = await connected(relay.address, { receiptDelayMs });
  const close = async (): Promise<void> => {
    await alice.agent.close();
    await bob.agent.close();
    await relay.stop();
  };
  try {
    await alice.agent.start();
    await bob.agent.start();
    const queued = countOutgoing(bob);
    const seq = alice.agent.send(a2b, text('ping'));
    alice.agent.kick();
    const deadline = Date.now() + waitMs;
    await waitFor(() => (bob.events.messages.get(b2a) ?? []).includes('ping'), deadline);
    beforeReply(bob);
    bob.agent.send(b2a, text('pong'));
    bob.agent.kick();
    await waitFor(() => (alice.events.delivered.get(a2b) ?? []).includes(seq), deadline);
    return { alice, a2b, seq, queued, close };
  } catch (e) {
    await close();
    throw e;
  }
}

test('in an active conversation the receipt rides on the reply: no RCPT of its own', async () => {
  // A receipt alone would wait 5 s: whatever arrives sooner came with the reply.
  const { alice, a2b, seq, queued, close } = await pingPong(5000, 4000);
  try {
    assert.deepEqual(alice.events.delivered.get(a2b), [seq], 'the receipt arrived with the reply');
    assert.deepEqual(alice.events.messages.get(a2b), ['pong']);
    assert.equal(queued(), 1, 'only the reply');
  } finally {
    await close();
  }
});

test('a contact that has sent nothing of version 3 gets its receipts alone, after the delay', async () => {
  // As if Alice ran a version 2 agent: Bob has seen nothing newer from her.
  const { alice, a2b, seq, queued, close } = await pingPong(300, 8000, (bob) => {
    bob.db.prepare('UPDATE agent_connections SET peer_version = 2').run();
    bob.agent.forgetCached();
  });
  try {
    assert.deepEqual(alice.events.delivered.get(a2b), [seq]);
    assert.equal(queued(), 2, 'the reply and a RCPT');
  } finally {
    await close();
  }
});

test('a device of a group that closes while a receipt and received messages wait for the device log does not warn about them: only the closing stopped them', async () => {
  const relay = await startRelayProcess();
  const lines: { level: number; msg: string; err?: { code?: string } }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) });
  // Bob's device log, in memory, refusing every append once `refusing` is set: what he proposes then waits.
  const deviceLog = new MemoryLog();
  let refusing = false;
  const { alice, bob, a2b, b2a } = await connected(relay.address, { logger, receiptDelayMs: 300, deviceLogTransport: () => deviceLog.transport({ refuse: () => refusing }) });
  let bobClosed: Promise<void> | undefined;
  const waiting = (): number => (bob.db.prepare('SELECT COUNT(*) AS n FROM agent_device_pending').get() as { n: number }).n;
  try {
    await bob.agent.addDevice('phone', { thisDevice: 'laptop', relay: relay.address });
    await bob.agent.start();
    alice.agent.send(a2b, text('first'));
    await alice.agent.sync();
    await waitFor(() => bob.events.messages.get(b2a)?.length === 1, Date.now() + 10_000);
    assert.deepEqual(bob.events.messages.get(b2a), ['first']);
    refusing = true;
    await waitFor(() => waiting() === 1, Date.now() + 10_000);
    assert.equal(waiting(), 1, 'the receipt for it waits');
    alice.agent.send(a2b, text('second'));
    await alice.agent.sync();
    await waitFor(() => waiting() === 2, Date.now() + 10_000);
    assert.equal(waiting(), 2, 'and so does the second message');
    await (bobClosed = bob.agent.close());
    assert.deepEqual(lines.filter((l) => l.level >= 40), [], 'no warning');
    const aboutTheLog = lines.filter((l) => /could not go to the device log/.test(l.msg));
    assert.deepEqual(
      aboutTheLog.map((l) => [l.level, l.msg, l.err?.code]).sort(),
      [
        [20, 'a receipt could not go to the device log', 'CLOSED'],
        [20, 'received messages could not go to the device log; the relay delivers them again', 'CLOSED'],
      ],
      'what was left, said at debug',
    );
  } finally {
    await (bobClosed ?? bob.agent.close());
    await alice.agent.close();
    await relay.stop();
  }
});
