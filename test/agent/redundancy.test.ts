/** Redundant receiving queues: a relay that vanishes for good ends no conversation. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRelayProcess } from '../helpers/relay-process.js';
import { openAgent, syncUntil, text } from '../helpers/agent-harness.js';

test('two receiving queues on two operators; one relay dies for good; every message arrives once and the queue is replaced', async () => {
  const [r1, r2, r3, r4] = await Promise.all([startRelayProcess(), startRelayProcess(), startRelayProcess(), startRelayProcess()]);
  // Alice's clock moves past lostAfterMs (the default, 24 hours) instead of the test waiting.
  let now = Date.now();
  const alice = openAgent([], undefined, { clock: () => now });
  alice.agent.addRelay(r1.address, 'one');
  alice.agent.addRelay(r2.address, 'two');
  const bob = openAgent([]);
  bob.agent.addRelay(r3.address, 'three');
  const got = (): string[] => alice.events.messages.get(a2b) ?? [];
  let a2b = '';
  try {
    const inv = await alice.agent.createInvitation(text('Alice'));
    a2b = inv.connectionId;
    const { connectionId: b2a } = await bob.agent.connect(inv.link, text('Bob'));
    await syncUntil([alice, bob], () => alice.events.connected.has(a2b) && bob.events.connected.has(b2a));
    const first = alice.agent.connection(a2b)!.receiveRelays[0]!;
    await alice.agent.addRedundantQueue(a2b);
    await syncUntil([alice, bob], () => alice.agent.connection(a2b)!.receiveRelays.length === 2 && bob.agent.connection(b2a)!.pendingOutgoing === 0);
    const relays = alice.agent.connection(a2b)!.receiveRelays;
    assert.deepEqual([...relays].sort(), [r1.address, r2.address].sort(), 'one queue per operator');

    for (let i = 0; i < 10; i++) bob.agent.send(b2a, text(`m${i}`));
    await syncUntil([alice, bob], () => got().length >= 10);
    // The relay holding the second queue (not the first) disappears for good.
    const doomed = first === r1.address ? r2 : r1;
    await doomed.stop('SIGKILL');
    alice.agent.addRelay(r4.address, 'four');
    for (let i = 10; i < 20; i++) bob.agent.send(b2a, text(`m${i}`));
    await syncUntil([alice, bob], () => got().length >= 20);
    // After lostAfterMs Alice replaces the lost queue through the remaining path.
    await alice.agent.sync().catch(() => undefined); // notes the relay down, by Alice's clock
    now += 24 * 3600 * 1000 + 1;
    await syncUntil([alice, bob], () => {
      const now = alice.agent.connection(a2b)!.receiveRelays;
      return now.length === 2 && now.includes(r4.address) && !now.includes(doomed.address);
    });
    for (let i = 20; i < 30; i++) bob.agent.send(b2a, text(`m${i}`));
    await syncUntil([alice, bob], () => got().length >= 30);
    await alice.agent.sync().catch(() => undefined);
    assert.deepEqual(got(), Array.from({ length: 30 }, (_, i) => `m${i}`), 'exactly once, in order');
    assert.equal(bob.agent.connection(b2a)!.pendingOutgoing, 0, 'nothing stuck for the dead relay');
  } finally {
    await alice.agent.close();
    await bob.agent.close();
    await Promise.all([r1, r2, r3, r4].map((r) => r.stop()));
  }
});
