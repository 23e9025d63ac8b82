/**
 * Transport isolation (docs/routing.md §8.2): with 'connection', each
 * connection's queues use TLS sessions of their own, so the relay cannot
 * link them by session; either way, requests forwarded through the first
 * hop of private routing go on a session per connection.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRelayProcess, type RelayProcess } from '../helpers/relay-process.js';
import { openAgent, syncUntil, text, type TestAgent } from '../helpers/agent-harness.js';

let a: RelayProcess;
let b: RelayProcess;
const agents: TestAgent[] = [];
before(async () => {
  [a, b] = await Promise.all([startRelayProcess(), startRelayProcess()]);
});
after(async () => {
  for (const x of agents) await x.agent.close();
  await Promise.all([a?.stop(), b?.stop()]);
});

function open(relays: string[]): TestAgent {
  const x = openAgent(relays);
  agents.push(x);
  return x;
}

/** Alice (queues on A) connected to Bob and Carol (queues on B), each side forwarding through its own relay. */
async function aliceWithTwoContacts(isolation: 'relay' | 'connection'): Promise<{ alice: TestAgent; ids: string[] }> {
  const alice = open([a.address]);
  alice.agent.setTransportIsolation(isolation);
  const ids: string[] = [];
  for (const name of ['Bob', 'Carol']) {
    const other = open([b.address]);
    const { connectionId, link } = await alice.agent.createInvitation(text('Alice'));
    const { connectionId: back } = await other.agent.connect(link, text(name));
    await syncUntil([alice, other], () => alice.events.connected.has(connectionId) && other.events.connected.has(back));
    ids.push(connectionId);
  }
  return { alice, ids };
}

test('connection isolation: each connection’s queues on a relay use a session of their own; relay isolation shares one', async () => {
  // A is also Alice's first hop towards B: forwarding adds a session per connection in both cases.
  const shared = await aliceWithTwoContacts('relay');
  await shared.alice.agent.sync();
  assert.equal(shared.alice.agent.sessionsTo(a.address), 1 + 2, 'both queues on A over one session, plus a forwarding session per contact');
  const isolated = await aliceWithTwoContacts('connection');
  await isolated.alice.agent.sync();
  assert.equal(isolated.alice.agent.sessionsTo(a.address), 2, 'one session per connection, carrying its queue and its forwarding');
  assert.equal(isolated.alice.agent.transportIsolation(), 'connection');
});

test('forwarding through the first hop uses a session per connection, whatever the isolation setting', async () => {
  const { alice, ids } = await aliceWithTwoContacts('relay');
  // Alice's messages to Bob's and Carol's queues on B go through A, her own relay.
  for (const id of ids) alice.agent.send(id, text('hi'));
  await alice.agent.sync();
  assert.equal(alice.agent.connection(ids[0]!)?.pendingOutgoing, 0);
  assert.equal(alice.agent.sessionsTo(a.address), 1 + ids.length, 'her receiving session, and one forwarding session per contact');
});
