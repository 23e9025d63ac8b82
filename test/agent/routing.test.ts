/** The agent's routing modes: private and onion never contact the destination relay; no forwarder means waiting. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRelayProcess, type RelayProcess } from '../helpers/relay-process.js';
import { fullLink, openAgent, syncUntil, text, type TestAgent } from '../helpers/agent-harness.js';
import { AgentError } from '../../src/agent/agent-api.js';
import { encodeLink } from '../../src/agent/links.js';

let a: RelayProcess;
let b: RelayProcess;
let c: RelayProcess;
let d: RelayProcess;
const agents: TestAgent[] = [];
before(async () => {
  [a, b, c, d] = await Promise.all([startRelayProcess(), startRelayProcess(), startRelayProcess(), startRelayProcess()]);
});
after(async () => {
  for (const x of agents) await x.agent.close();
  await Promise.all([a.stop(), b.stop(), c.stop(), d.stop()]);
});

function tracedAgent(relays: string[]): { agent: TestAgent; contacted: Set<string> } {
  const contacted = new Set<string>();
  const agent = openAgent(relays, undefined, { relayTrace: (relay) => void contacted.add(relay) });
  agents.push(agent);
  return { agent, contacted };
}

for (const mode of ['private', 'onion'] as const) {
  test(`${mode} routing: each side reaches the other's relay only through its own relays`, async () => {
    // Alice's queue goes on A; for onion routing both then add C and D, so that wherever Bob's
    // queue lands (B, C or D) each side has two relays besides the other's to route through.
    const alice = tracedAgent([a.address]);
    const bob = tracedAgent([b.address]);
    alice.agent.agent.setRouting(mode);
    bob.agent.agent.setRouting(mode);
    const { connectionId: a2b, link } = await alice.agent.agent.createInvitation(text('Alice'));
    if (mode === 'onion') {
      for (const extra of [c.address, d.address]) {
        alice.agent.agent.addRelay(extra);
        bob.agent.agent.addRelay(extra);
      }
    }
    const { connectionId: b2a } = await bob.agent.agent.connect(link, text('Bob'));
    // Bob never talks to the relay that holds Alice's queue, and vice versa.
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
  // The short link cannot even be fetched without revealing Carol's address to A: refused, saying why.
  await assert.rejects(
    carol.agent.agent.connect(link, text('Carol')),
    (e: unknown) => e instanceof AgentError && e.code === 'NO_FORWARDER' && /private routing needs 1 relay/.test(e.message),
  );
  assert.deepEqual(carol.agent.agent.connections(), []);
  // With the full link (given some other way), the join itself waits.
  const { connectionId: c2a } = await carol.agent.agent.connect(encodeLink(await fullLink(link)), text('Carol'));
  await carol.agent.agent.sync().catch(() => undefined);
  const waiting = carol.agent.agent.connection(c2a)!;
  assert.equal(waiting.pendingOutgoing, 1, 'the join waits');
  assert.match(waiting.deliveryProblem ?? '', /private routing needs 1 relay/);
  await alice.agent.agent.sync();
  assert.equal(alice.agent.events.connected.size, 0);
  carol.agent.agent.setRouting('private', true);
  await syncUntil([alice.agent, carol.agent], () => alice.agent.events.connected.has(a2c) && carol.agent.events.connected.has(c2a));
});

test('a destination that forwarders cannot reach never sees the sender, with or without direct fallback allowed', async () => {
  // F refuses to forward to loopback relays (as a public relay does), so every route to D fails at the hop.
  const refusing = await startRelayProcess({ args: ['--no-forward-private-addresses'] });
  try {
    for (const fallback of [false, true]) {
      // Alice's queue goes on C (her only relay then); Bob's on D, which he also forwards through... to C.
      const alice = tracedAgent([c.address]);
      const bob = tracedAgent([d.address]);
      const { connectionId: b2a, link } = await bob.agent.agent.createInvitation(text('Bob'));
      const { connectionId: a2b } = await alice.agent.agent.connect(link, text('Alice'));
      await syncUntil([alice.agent, bob.agent], () => alice.agent.events.connected.has(a2b) && bob.agent.events.connected.has(b2a));
      assert.ok(!alice.contacted.has(d.address), 'connecting went through C');
      // Now Alice's only way to D is the refusing relay; she allows direct fallback in the second round.
      alice.agent.agent.removeRelay(c.address);
      alice.agent.agent.addRelay(refusing.address);
      alice.agent.agent.setRouting('private', fallback);
      alice.agent.agent.send(a2b, text('hello'));
      await alice.agent.agent.sync().catch(() => undefined);
      const waiting = alice.agent.agent.connection(a2b)!;
      assert.equal(waiting.pendingOutgoing, 1, 'the message waits');
      assert.match(waiting.deliveryProblem ?? '', /never sent directly after a forwarding error/);
      assert.ok(!alice.contacted.has(d.address), `Alice never connected to D (fallback ${fallback})`);
      assert.ok(alice.contacted.has(refusing.address));
    }
  } finally {
    await refusing.stop();
  }
});
