/**
 * Compact envelopes between agents (docs/agent.md §5, docs/e2e.md §4): to a
 * contact whose messages say it reads them (version 4 or later) the outbox
 * keeps a short envelope, filled to full length each time it is sent; to
 * an older contact every envelope is padded inside, as before. Either way
 * the contact reads it and the relay stores a full-length message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3-multiple-ciphers';
import { join } from 'node:path';
import { ENVELOPE_LENGTH } from '../../src/agent/envelope.js';
import { DATABASE_FILE } from '../../src/relay/server.js';
import { startRelayProcess } from '../helpers/relay-process.js';
import { openAgent, syncUntil, text, type TestAgent } from '../helpers/agent-harness.js';

/** The length of every envelope `a` queues from now on, in order. */
function queuedLengths(a: TestAgent): () => number[] {
  const db = a.db;
  db.exec(
    'CREATE TEMP TABLE IF NOT EXISTS queued_lengths (n INTEGER); CREATE TEMP TRIGGER IF NOT EXISTS record_length AFTER INSERT ON agent_outbox BEGIN INSERT INTO queued_lengths VALUES (length(NEW.envelope)); END;',
  );
  return () => (db.prepare('SELECT n FROM queued_lengths ORDER BY rowid').all() as { n: number }[]).map((r) => r.n);
}

test('compact envelopes to a contact that reads them, padded ones to an older one; both arrive', async () => {
  const relay = await startRelayProcess();
  const alice = openAgent([relay.address]);
  const bob = openAgent([relay.address]);
  try {
    for (const a of [alice, bob]) a.agent.setRouting('direct');
    const { connectionId: a2b, link } = await alice.agent.createInvitation(text('Alice'));
    const { connectionId: b2a } = await bob.agent.connect(link, text('Bob'));
    await syncUntil([alice, bob], () => alice.events.connected.has(a2b) && bob.events.connected.has(b2a));
    // Bob has had messages of Alice's version by now: his next messages are compact.
    const lengths = queuedLengths(bob);
    bob.agent.send(b2a, text('compact'));
    const [compact] = lengths();
    assert.ok(compact !== undefined && compact < 400, `a short envelope is kept (${compact} bytes)`);
    await bob.agent.sync({ receive: false });
    const compactAtRelay = relayStoredLengths(relay.dataDir);
    await syncUntil([alice, bob], () => (alice.events.messages.get(a2b) ?? []).includes('compact'));
    // As if Alice ran an agent of version 3: she would not read compact envelopes.
    bob.db.prepare('UPDATE agent_connections SET peer_version = 3').run();
    bob.agent.forgetCached();
    bob.agent.send(b2a, text('padded'));
    assert.equal(lengths()[1], ENVELOPE_LENGTH, 'padded inside, full length in the outbox');
    await bob.agent.sync({ receive: false });
    const paddedAtRelay = relayStoredLengths(relay.dataDir);
    await syncUntil([alice, bob], () => (alice.events.messages.get(a2b) ?? []).includes('padded'));
    assert.deepEqual(alice.events.messages.get(a2b), ['compact', 'padded']);
    // The relay stored both with one length: the fill made the compact one full size.
    assert.equal(compactAtRelay.length, 1);
    assert.deepEqual(compactAtRelay, paddedAtRelay);
  } finally {
    await alice.agent.close();
    await bob.agent.close();
    await relay.stop();
  }
});

/** Lengths of the sealed messages the relay holds now (read from its SQLite store while it runs). */
function relayStoredLengths(dataDir: string): number[] {
  const db = new Database(join(dataDir, DATABASE_FILE), { readonly: true });
  try {
    return (db.prepare('SELECT length(sealed) AS n FROM messages ORDER BY seq').all() as { n: number }[]).map((r) => r.n);
  } finally {
    db.close();
  }
}
