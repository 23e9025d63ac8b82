/** The agent's routing modes: private and onion never contact the destination relay; no forwarder means waiting. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRelayProcess, type RelayProcess } from '../helpers/relay-process.js';
import { openAgent, syncUntil, text, type TestAgent } from '../helpers/agent-harness.js';

let a: RelayProcess;
let b: RelayProcess;
let c: RelayProcess;
const agents: TestAgent[] = [];
before(async () => {
  [a, b, c] = await Promise.all([startRelayProcess(), startRelayProcess(), startRelayProcess()]);
});
after(async () => {
  for (const x of agents) await x.agent.close();
  await Promise.all([a.stop(), b.stop(), c.stop()]);
});

function tracedAgent(relays: string[]): { agent: TestAgent; contacted: Set<string> } {
  const contacted = new Set<string>();
  const agent = openAgent(relays, undefined, { relayTrace: (relay) => void contacted.add(relay) });
  agents.push(agent);
  return { agent, contacted };
}

for (const mode of ['private', 'onion'] as const) {
  test(`${mode} routing: each side reaches the other's relay only through its own relays`, async () => {
    // Alice's queue goes on A and Bob's on B; for onion routing both then add C as a second hop.
    const alice = tracedAgent([a.address]);
    const bob = tracedAgent([b.address]);
    alice.agent.agent.setRouting(mode);
    bob.agent.agent.setRouting(mode);
    const { connectionId: a2b, link } = await alice.agent.agent.createInvitation(text('Alice'));
    const { connectionId: b2a } = await bob.agent.agent.connect(link, text('Bob'));
    if (mode === 'onion') {
      alice.agent.agent.addRelay(c.address);
      bob.agent.agent.addRelay(c.address);
    }
    // Alice's queue is on A (or C); Bob never talks to the relay that holds Alice's queue, and vice versa.
    await syncUntil([alice.agent, bob.agent], () => alice.agent.events.connected.has(a2b) && bob.agent.events.connected.has(b2a));
    for (let i = 0; i < 5; i++) {
      alice.agent.agent.send(a2b, text(`a${i}`));
      bob.agent.agent.send(b2a, text(`b${i}`));
    }
    await syncUntil([alice.agent, bob.agent], () => (alice.agent.events.messages.get(a2b)?.length ?? 0) === 5 && (bob.agent.events.messages.get(b2a)?.length ?? 0) === 5);
    assert.deepEqual(bob.agent.events.messages.get(b2a), ['a0', 'a1', 'a2', 'a3', 'a4']);
    const aliceQueues = new Set(alice.agent.agent.connection(a2b)!.receiveRelays);
    const bobQueues = new Set(bob.agent.agent.connection(b2a)!.receiveRelays);
    for (const relay of aliceQueues) if (!bobQueues.has(relay)) assert.ok(!bob.contacted.has(relay), `Bob never connects to ${relay}, which holds Alice's queue`);
    for (const relay of bobQueues) if (!aliceQueues.has(relay)) assert.ok(!alice.contacted.has(relay), `Alice never connects to ${relay}, which holds Bob's queue`);
  });
}

test('without a forwarding relay a message waits, saying why, until direct fallback is allowed', async () => {
  const alice = tracedAgent([a.address]);
  const carol = tracedAgent([a.address]); // her only relay is the destination itself
  alice.agent.agent.setRouting('private', true); // Alice's answers go to Carol's queue, also on A
  const { connectionId: a2c, link } = await alice.agent.agent.createInvitation(text('Alice'));
  const { connectionId: c2a } = await carol.agent.agent.connect(link, text('Carol'));
  await carol.agent.agent.sync().catch(() => undefined);
  const waiting = carol.agent.agent.connection(c2a)!;
  assert.equal(waiting.pendingOutgoing, 1, 'the join waits');
  assert.match(waiting.deliveryProblem ?? '', /private routing needs 1 relay/);
  await alice.agent.agent.sync();
  assert.equal(alice.agent.events.connected.size, 0);
  carol.agent.agent.setRouting('private', true);
  await syncUntil([alice.agent, carol.agent], () => alice.agent.events.connected.has(a2c) && carol.agent.events.connected.has(c2a));
});
