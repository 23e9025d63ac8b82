/**
 * What relays hold and see of a conversation: no display name, no message
 * text, and no value of one direction of the connection in the other.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3-multiple-ciphers';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startRelayProcess, type RelayProcess } from '../helpers/relay-process.js';
import { openAgent, syncUntil, text } from '../helpers/agent-harness.js';

function diskBytes(relay: RelayProcess): Buffer {
  return Buffer.concat(readdirSync(relay.dataDir).filter((f) => f.startsWith('relay.sqlite')).map((f) => readFileSync(join(relay.dataDir, f))));
}

/** Every stored value of a relay: IDs, keys and sealed messages. */
function storedValues(relay: RelayProcess): Buffer[] {
  const db = new Database(join(relay.dataDir, 'relay.sqlite'), { readonly: true });
  const out: Buffer[] = [];
  for (const row of db.prepare('SELECT recipient_id, sender_id, recipient_key, queue_key, sender_key FROM queues').all() as Record<string, Buffer | null>[]) {
    for (const v of Object.values(row)) if (v) out.push(v);
  }
  for (const row of db.prepare('SELECT msg_id, sealed FROM messages').all() as { msg_id: Buffer; sealed: Buffer }[]) out.push(row.msg_id, row.sealed);
  db.close();
  return out;
}

function windows(values: Buffer[], size = 16): Set<string> {
  const set = new Set<string>();
  for (const v of values) for (let i = 0; i + size <= v.length; i++) set.add(v.subarray(i, i + size).toString('latin1'));
  return set;
}

test('relays store and carry no names, no text, and nothing shared between the two directions', async () => {
  const [relayA, relayB] = await Promise.all([startRelayProcess(), startRelayProcess()]);
  const wire = new Map<string, Buffer[]>([
    [relayA.address, []],
    [relayB.address, []],
  ]);
  const relayTrace = (relay: string, _d: 'in' | 'out', block: Uint8Array): void => void wire.get(relay)?.push(Buffer.from(block));
  const alice = openAgent([relayA.address], undefined, { relayTrace });
  const bob = openAgent([relayB.address], undefined, { relayTrace });
  const names = ['Alice Liddell-Secret', 'Bob Marley-Private'];
  const texts = Array.from({ length: 10 }, (_, i) => `the secret rendezvous is at dock ${i} at midnight`);
  const { connectionId: a2b, link } = await alice.agent.createInvitation(text(names[0]!));
  const { connectionId: b2a } = await bob.agent.connect(link, text(names[1]!));
  await syncUntil([alice, bob], () => alice.events.connected.has(a2b) && bob.events.connected.has(b2a));
  for (const t of texts) {
    alice.agent.send(a2b, text(t));
    bob.agent.send(b2a, text(t));
  }
  // Leave the last messages undelivered on the relays, so the databases hold some.
  await alice.agent.sync().catch(() => undefined);
  await bob.agent.sync().catch(() => undefined);
  await syncUntil([alice, bob], () => (bob.events.messages.get(b2a)?.length ?? 0) === 10 && (alice.events.messages.get(a2b)?.length ?? 0) === 10);
  alice.agent.send(a2b, text(texts[0]!));
  bob.agent.send(b2a, text(texts[0]!));
  await alice.agent.sync().catch(() => undefined);
  await bob.agent.sync().catch(() => undefined);
  await alice.agent.close();
  await bob.agent.close();
  await relayA.stop('SIGKILL');
  await relayB.stop('SIGKILL');

  const plain = [...names, ...texts].map((s) => Buffer.from(s));
  for (const [relay, blocks] of wire) {
    const all = Buffer.concat(blocks);
    assert.ok(all.length > 0, 'traffic was captured');
    for (const p of plain) assert.ok(!all.includes(p.subarray(0, 12)), `no name or text in blocks to or from ${relay}`);
  }
  for (const relay of [relayA, relayB]) {
    const disk = diskBytes(relay);
    for (const p of plain) assert.ok(!disk.includes(p.subarray(0, 12)), 'no name or text on a relay disk');
  }

  // Each relay holds one direction of the conversation; no stored value of one appears in the other.
  const valuesA = storedValues(relayA);
  const valuesB = storedValues(relayB);
  assert.ok(valuesA.length > 4 && valuesB.length > 4, 'both relays hold queues and messages');
  const inA = windows(valuesA);
  for (const w of windows(valuesB)) assert.ok(!inA.has(w), 'a value stored on relay B also appears on relay A');
  // And no queue ID of one direction is ever seen in the traffic of the other relay.
  const trafficA = Buffer.concat(wire.get(relayA.address)!);
  const trafficB = Buffer.concat(wire.get(relayB.address)!);
  const idsOf = (values: Buffer[]): Buffer[] => values.filter((v) => v.length === 24);
  for (const id of idsOf(valuesB)) assert.ok(!trafficA.includes(id), 'an ID of relay B appears in traffic with relay A');
  for (const id of idsOf(valuesA)) assert.ok(!trafficB.includes(id), 'an ID of relay A appears in traffic with relay B');
});
