/**
 * The agent in start() mode subscribes with a push window (receiving.ts
 * PUSH_WINDOW): a burst arrives several at a time per queue, is applied in
 * batches and acknowledged message by message, in any order. Nothing is
 * lost or doubled, and every ACK deletes its message on the relay, with a
 * background round every 100 ms, which does not SUB again what is
 * subscribed (a repeated SUB would push everything in flight again).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { DATABASE_FILE } from '../../src/relay/server.js';
import { RelayClient } from '../../src/client/relay-client.js';
import type { ReceivedMessage, RecipientQueue } from '../../src/client/queues.js';
import { startRelayProcess } from '../helpers/relay-process.js';
import { openAgent, syncUntil, text } from '../helpers/agent-harness.js';
import { AgentStore } from '../../src/agent/agent-store.js';
import { Receiving } from '../../src/agent/receiving.js';

const N = 80;

/** Counts every message the relays push to this process, and the distinct ones among them. */
function countPushes(): { pushes: () => number; distinct: () => number; stop: () => void } {
  const seen = new Set<string>();
  let pushes = 0;
  // A spy at the edge: the relay clients' push events, counted on their way to the agent.
  const proto = RelayClient.prototype as unknown as { emit(this: RelayClient, event: string | symbol, ...args: unknown[]): boolean };
  const emit = proto.emit;
  proto.emit = function (this: RelayClient, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'message') {
      const [queue, message] = args as [RecipientQueue, ReceivedMessage];
      pushes++;
      seen.add(`${Buffer.from(queue.recipientId).toString('hex')}:${Buffer.from(message.msgId).toString('hex')}`);
    }
    return emit.call(this, event, ...args);
  };
  return { pushes: () => pushes, distinct: () => seen.size, stop: () => (proto.emit = emit) };
}

/** Two agents connected through one relay process (direct routing: no forwarding relay to route through), with background rounds every 100 ms. */
async function connectedPair() {
  const relay = await startRelayProcess({ args: ['--quota', '1000'] });
  const alice = openAgent([relay.address], undefined, { retryMs: 100 });
  const bob = openAgent([relay.address], undefined, { retryMs: 100 });
  alice.agent.setRouting('direct');
  bob.agent.setRouting('direct');
  const { connectionId: a2b, link } = await alice.agent.createInvitation(text('Alice'));
  const { connectionId: b2a } = await bob.agent.connect(link, text('Bob'));
  await syncUntil([alice, bob], () => alice.events.connected.has(a2b) && bob.events.connected.has(b2a));
  const close = async (): Promise<void> => {
    await alice.agent.close();
    await bob.agent.close();
    await relay.stop();
  };
  /** Both in start() mode, Bob sends N at once; resolves when Alice has N or at the returned deadline. */
  const burst = async (): Promise<number> => {
    await alice.agent.start();
    await bob.agent.start();
    for (let i = 0; i < N; i++) bob.agent.send(b2a, text(`m${i}`));
    bob.agent.kick();
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && (alice.events.messages.get(a2b)?.length ?? 0) < N) await new Promise((r) => setTimeout(r, 50));
    return deadline;
  };
  return { relay, alice, a2b, burst, close };
}

test('a burst pushed through the window reaches the contact exactly once, in order, and leaves the relay empty', async () => {
  const { relay, alice, a2b, burst, close } = await connectedPair();
  try {
    const counted = countPushes();
    const deadline = await burst();
    assert.deepEqual(alice.events.messages.get(a2b), Array.from({ length: N }, (_, i) => `m${i}`), 'each once, in order');

    // Every message, and every receipt back to Bob, acknowledged and so deleted on the relay.
    const db = new Database(join(relay.dataDir, DATABASE_FILE), { readonly: true });
    try {
      const stored = (): number => (db.prepare('SELECT COUNT(*) AS n FROM messages').get() as { n: number }).n;
      while (Date.now() < deadline && stored() > 0) await new Promise((r) => setTimeout(r, 100));
      assert.equal(stored(), 0, 'nothing left unacknowledged on the relay');
    } finally {
      db.close();
    }
    await new Promise((r) => setTimeout(r, 300)); // a few more background rounds: no message comes twice
    assert.equal(alice.events.messages.get(a2b)?.length, N);
    // Background rounds do not SUB again what is subscribed, so the relay pushes nothing twice.
    counted.stop();
    assert.ok(counted.distinct() >= N);
    assert.equal(counted.pushes(), counted.distinct(), 'no message pushed twice');
  } finally {
    await close();
  }
});

test('pushed messages are on disk before their ACK, and a burst shares its commits to disk', async () => {
  const { alice, a2b, burst, close } = await connectedPair();
  // White box: Alice's store says whether something she applied is not yet flushed to disk.
  const store = (alice.agent as unknown as { p: { store: AgentStore } }).p.store;
  const unflushed = (): boolean => (store as unknown as { unflushedSends: boolean }).unflushedSends;
  const proto = RelayClient.prototype;
  const ack = proto.ack;
  // White box too: each batch of pushed messages is applied in one transaction (receiving.ts, apply).
  const receiving = Receiving.prototype as unknown as { apply: (batch: readonly unknown[]) => unknown[] };
  const apply = receiving.apply;
  let acks = 0;
  let ackedUncommitted = 0;
  let commits = 0;
  proto.ack = function (this: RelayClient, queue: RecipientQueue, msgId: Uint8Array) {
    if (store.rcvQueueByRecipientId(queue.recipientId)) {
      acks++;
      // Inside a transaction the message's writes may not be committed yet; unflushed, not on disk.
      if (alice.db.inTransaction || unflushed()) ackedUncommitted++;
    }
    return ack.call(this, queue, msgId);
  };
  receiving.apply = function (this: unknown, batch: readonly unknown[]) {
    if ((this as { store: AgentStore }).store === store) commits++;
    return apply.call(this, batch);
  };
  try {
    const deadline = await burst();
    assert.equal(alice.events.messages.get(a2b)?.length, N);
    while (Date.now() < deadline && acks < N) await new Promise((r) => setTimeout(r, 20));
    assert.ok(acks >= N, `every message acknowledged (${acks})`);
    assert.equal(ackedUncommitted, 0, 'no ACK left while what it acknowledges was not on disk');
    assert.ok(commits > 0 && commits < N, `fewer transactions than messages applied them (${commits} for ${N})`);
  } finally {
    proto.ack = ack;
    receiving.apply = apply;
    await close();
  }
});
