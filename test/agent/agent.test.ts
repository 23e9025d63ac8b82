/** The agent end to end: two profiles on two relay processes. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentError } from '../../src/agent/agent-api.js';
import { startRelayProcess, type RelayProcess } from '../helpers/relay-process.js';
import { openAgent, syncUntil, text, type TestAgent } from '../helpers/agent-harness.js';

describe('agent', () => {
  let relayA: RelayProcess;
  let relayB: RelayProcess;
  const agents: TestAgent[] = [];
  const open = (relay: RelayProcess): TestAgent => {
    const a = openAgent([relay.address]);
    agents.push(a);
    return a;
  };

  before(async () => {
    [relayA, relayB] = await Promise.all([startRelayProcess(), startRelayProcess()]);
  });
  after(async () => {
    for (const a of agents) await a.agent.close();
    await Promise.all([relayA.stop(), relayB.stop()]);
  });

  async function connectPair(): Promise<{ alice: TestAgent; bob: TestAgent; a2b: string; b2a: string; link: string }> {
    const alice = open(relayA);
    const bob = open(relayB);
    const { connectionId: a2b, link } = await alice.agent.createInvitation(text('Alice'));
    const { connectionId: b2a } = await bob.agent.connect(link, text('Bob'));
    await syncUntil([alice, bob], () => alice.events.connected.has(a2b) && bob.events.connected.has(b2a));
    return { alice, bob, a2b, b2a, link };
  }

  test('one-time link: both sides connect and learn each other’s info; queues on each side’s relay', async () => {
    const { alice, bob, a2b, b2a } = await connectPair();
    assert.equal(alice.events.connected.get(a2b), 'Bob');
    assert.equal(bob.events.connected.get(b2a), 'Alice');
    assert.deepEqual(alice.agent.connection(a2b)?.receiveRelays, [relayA.address]);
    assert.deepEqual(bob.agent.connection(b2a)?.receiveRelays, [relayB.address]);
    assert.equal(alice.agent.connection(a2b)?.status, 'ready');
  });

  test('messages both ways arrive exactly once, in order, with sent and delivered receipts', async () => {
    const { alice, bob, a2b, b2a } = await connectPair();
    const n = 20;
    for (let i = 0; i < n; i++) {
      alice.agent.send(a2b, text(`a${i}`));
      bob.agent.send(b2a, text(`b${i}`));
    }
    await syncUntil([alice, bob], () => (bob.events.messages.get(b2a)?.length ?? 0) >= n && (alice.events.messages.get(a2b)?.length ?? 0) >= n);
    assert.deepEqual(bob.events.messages.get(b2a), Array.from({ length: n }, (_, i) => `a${i}`));
    assert.deepEqual(alice.events.messages.get(a2b), Array.from({ length: n }, (_, i) => `b${i}`));
    assert.deepEqual(alice.events.sent.get(a2b), Array.from({ length: n }, (_, i) => i + 1));
    await syncUntil([alice, bob], () => (alice.events.delivered.get(a2b)?.length ?? 0) >= n);
    assert.deepEqual(alice.events.delivered.get(a2b), Array.from({ length: n }, (_, i) => i + 1));
  });

  test('a used one-time link is refused with LINK_USED', async () => {
    const { link } = await connectPair();
    const carol = open(relayB);
    await assert.rejects(carol.agent.connect(link, text('Carol')), (e: unknown) => e instanceof AgentError && e.code === 'LINK_USED');
    assert.deepEqual(carol.agent.connections(), []);
  });

  test('links are short (the relay keeps the rest); our own link is refused with OWN_LINK and changes nothing', async () => {
    const alice = open(relayA);
    const { link } = await alice.agent.createInvitation(text('Alice'));
    const { link: address } = await alice.agent.createAddress();
    assert.ok(link.length < 140 && address.length < 140, `${link.length} and ${address.length} characters`);
    const before = alice.agent.connections().length;
    for (const own of [link, address]) await assert.rejects(alice.agent.connect(own, text('Alice')), (e: unknown) => e instanceof AgentError && e.code === 'OWN_LINK');
    assert.equal(alice.agent.connections().length, before);
  });

  test('a damaged link is BAD_LINK', async () => {
    const carol = open(relayB);
    await assert.rejects(carol.agent.connect('nightjar:invite#AAAA', text('C')), (e: unknown) => e instanceof AgentError && e.code === 'BAD_LINK');
    await assert.rejects(carol.agent.connect('https://example.org', text('C')), (e: unknown) => e instanceof AgentError && e.code === 'BAD_LINK');
  });

  test('contact address: requests reach the owner, accepted ones become connections on fresh queues', async () => {
    const owner = open(relayA);
    const p1 = open(relayB);
    const p2 = open(relayB);
    const { addressId, link } = await owner.agent.createAddress();
    const { connectionId: c1 } = await p1.agent.connect(link, text('Peer one'));
    await p2.agent.connect(link, text('Peer two'));
    await syncUntil([owner], () => owner.events.requests.length === 2);
    assert.deepEqual(owner.events.requests.map((r) => new TextDecoder().decode(r.peerInfo)).sort(), ['Peer one', 'Peer two']);
    const r1 = owner.events.requests.find((r) => new TextDecoder().decode(r.peerInfo) === 'Peer one')!;
    const r2 = owner.events.requests.find((r) => r !== r1)!;
    const { connectionId: o1 } = await owner.agent.acceptRequest(r1.requestId, text('Owner'));
    owner.agent.rejectRequest(r2.requestId);
    await syncUntil([owner, p1], () => owner.events.connected.has(o1) && p1.events.connected.has(c1));
    assert.equal(p1.events.connected.get(c1), 'Owner');
    const addressQueueRelay = link;
    void addressQueueRelay;
    owner.agent.send(o1, text('welcome'));
    p1.agent.send(c1, text('thanks'));
    await syncUntil([owner, p1], () => p1.events.messages.has(c1) && owner.events.messages.has(o1));
    assert.deepEqual(p1.events.messages.get(c1), ['welcome']);
    // Deleting the address stops new requests; the contact stays.
    await owner.agent.deleteAddress(addressId);
    const p3 = open(relayB);
    await assert.rejects(p3.agent.connect(link, text('late')), (e: unknown) => e instanceof AgentError && e.code === 'ADDRESS_GONE');
    owner.agent.send(o1, text('still here'));
    await syncUntil([owner, p1], () => (p1.events.messages.get(c1)?.length ?? 0) === 2);
  });

  test('rotation moves the connection to a queue on another relay without losing messages', async () => {
    const { alice, bob, a2b, b2a } = await connectPair();
    alice.agent.addRelay(relayB.address);
    // Alice's queue moves to B, Bob's own relay: he forwards through A to reach it.
    bob.agent.addRelay(relayA.address);
    bob.agent.send(b2a, text('before'));
    await alice.agent.rotate(a2b, relayB.address);
    bob.agent.send(b2a, text('during'));
    await syncUntil([alice, bob], () => {
      const c = alice.agent.connection(a2b);
      return c?.receiveRelays.length === 1 && c.receiveRelays[0] === relayB.address && (alice.events.messages.get(a2b)?.length ?? 0) >= 2;
    });
    bob.agent.send(b2a, text('after'));
    await syncUntil([alice, bob], () => (alice.events.messages.get(a2b)?.length ?? 0) >= 3);
    assert.deepEqual(alice.events.messages.get(a2b), ['before', 'during', 'after']);
  });

  test('deleting a connection tells the contact and removes our queues', async () => {
    const { alice, bob, a2b, b2a } = await connectPair();
    await alice.agent.deleteConnection(a2b);
    assert.equal(alice.agent.connection(a2b), undefined);
    await syncUntil([bob], () => bob.events.deleted.includes(b2a));
  });
});

test('start() rotates queues on a schedule and keeps delivering live', async () => {
  const [relayA, relayB] = await Promise.all([startRelayProcess(), startRelayProcess()]);
  const { openAgent: open2 } = await import('../helpers/agent-harness.js');
  // Alice's clock moves past rotateAfterMs (the default, 7 days) instead of the test waiting.
  let now = Date.now();
  const alice = open2([relayA.address, relayB.address], undefined, { clock: () => now, retryMs: 200 });
  const bob = open2([relayB.address], undefined, { retryMs: 200 });
  bob.agent.addRelay(relayA.address); // a forwarding relay whichever relay Alice's queue is on
  try {
    const { connectionId: a2b, link } = await alice.agent.createInvitation(text('Alice'));
    const { connectionId: b2a } = await bob.agent.connect(link, text('Bob'));
    await syncUntil([alice, bob], () => alice.events.connected.has(a2b) && bob.events.connected.has(b2a));
    const before = alice.agent.connection(a2b)!.receiveRelays[0];
    await alice.agent.start();
    await bob.agent.start();
    bob.agent.send(b2a, text('live 1'));
    bob.agent.kick();
    now += 7 * 24 * 3600 * 1000 + 1;
    const deadline = Date.now() + 15_000;
    let moved = false;
    while (Date.now() < deadline && !(moved && (alice.events.messages.get(a2b)?.length ?? 0) >= 1)) {
      const relays = alice.agent.connection(a2b)!.receiveRelays;
      // The queue may move again later (the clock stays 7 days ahead of its age); seeing it once on the other relay is enough.
      if (relays.length === 1 && relays[0] !== before) moved = true;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(moved, 'the queue moved to the other relay');
    bob.agent.send(b2a, text('live 2'));
    bob.agent.kick();
    while (Date.now() < deadline && (alice.events.messages.get(a2b)?.length ?? 0) < 2) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(alice.events.messages.get(a2b), ['live 1', 'live 2']);
  } finally {
    await alice.agent.close();
    await bob.agent.close();
    await Promise.all([relayA.stop(), relayB.stop()]);
  }
});

test('relay health and operator spreading', async () => {
  const [r1, r2] = await Promise.all([startRelayProcess(), startRelayProcess()]);
  const { openAgent: open2 } = await import('../helpers/agent-harness.js');
  const a = open2([]);
  try {
    a.agent.addRelay(r1.address, 'Operator One');
    a.agent.addRelay(r2.address, 'Operator Two');
    for (let i = 0; i < 4; i++) await a.agent.createInvitation(text(`x${i}`));
    const health = await a.agent.checkRelays(2000);
    assert.deepEqual(health.map((h) => [h.operator, h.queues, h.reachable]), [
      ['Operator One', 2, true],
      ['Operator Two', 2, true],
    ], 'queues are spread evenly over the two operators');
    assert.ok(health.every((h) => typeof h.latencyMs === 'number'));
    await r2.stop('SIGKILL');
    const after = await a.agent.checkRelays(2000);
    const two = after.find((h) => h.operator === 'Operator Two')!;
    assert.equal(two.reachable, false);
    assert.match(two.lastError ?? '', /ECONNREFUSED|closed|reach|not connected/);
  } finally {
    await a.agent.close();
    await Promise.all([r1.stop(), r2.stop()]);
  }
});
