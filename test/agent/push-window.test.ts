/**
 * The agent in start() mode subscribes with a push window (receiving.ts
 * PUSH_WINDOW): a burst arrives several at a time per queue, is applied in
 * batches and acknowledged message by message, in any order. Nothing is
 * lost or doubled, and every ACK deletes its message on the relay, even
 * with a background round (and its re-SUB, which pushes everything in
 * flight again) every 100 ms.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { DATABASE_FILE } from '../../src/relay/server.js';
import { startRelayProcess } from '../helpers/relay-process.js';
import { openAgent, syncUntil, text } from '../helpers/agent-harness.js';

const N = 80;

test('a burst pushed through the window reaches the contact exactly once, in order, and leaves the relay empty', async () => {
  const relay = await startRelayProcess({ args: ['--quota', '1000'] });
  const alice = openAgent([relay.address], undefined, { retryMs: 100 });
  const bob = openAgent([relay.address], undefined, { retryMs: 100 });
  // One relay: no forwarding relay to route through.
  alice.agent.setRouting('direct');
  bob.agent.setRouting('direct');
  try {
    const { connectionId: a2b, link } = await alice.agent.createInvitation(text('Alice'));
    const { connectionId: b2a } = await bob.agent.connect(link, text('Bob'));
    await syncUntil([alice, bob], () => alice.events.connected.has(a2b) && bob.events.connected.has(b2a));
    await alice.agent.start();
    await bob.agent.start();
    for (let i = 0; i < N; i++) bob.agent.send(b2a, text(`m${i}`));
    bob.agent.kick();
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && (alice.events.messages.get(a2b)?.length ?? 0) < N) await new Promise((r) => setTimeout(r, 50));
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
  } finally {
    await alice.agent.close();
    await bob.agent.close();
    await relay.stop();
  }
});
