/**
 * A lost message never blocks a conversation (docs/agent.md §5.1, §7):
 * what waited for a lost queue moves to its replacement; a message a relay
 * lost after its OK is asked for and resent; one the sender no longer has
 * is reported at once, and one nobody answers for after the bounded time;
 * either way the messages behind it arrive. Real relay processes; time
 * moves by the agents' clocks.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3-multiple-ciphers';
import { join } from 'node:path';
import { GAP_SKIP_MS, RESEND_AFTER_MS } from '../../src/agent/gaps.js';
import { RESEND_KEEP_MS } from '../../src/agent/resend.js';
import { startRelayProcess, type RelayProcess } from '../helpers/relay-process.js';
import { openAgent, syncUntil, text, type TestAgent } from '../helpers/agent-harness.js';
import type { AgentOptions } from '../../src/agent/agent.js';

const relays: RelayProcess[] = [];
const agents: TestAgent[] = [];
after(async () => {
  for (const a of agents) await a.agent.close();
  await Promise.all(relays.map((r) => r.stop()));
});

async function relay(): Promise<RelayProcess> {
  const r = await startRelayProcess();
  relays.push(r);
  return r;
}

/** A settable clock, starting now. */
function clock(): { now: () => number; move: (ms: number) => void } {
  let t = Date.now();
  return { now: () => t, move: (ms) => void (t += ms) };
}

function open(relayList: RelayProcess[], options: AgentOptions = {}): TestAgent {
  const a = openAgent(
    relayList.map((r) => r.address),
    undefined,
    options,
  );
  agents.push(a);
  return a;
}

/** Alice (her queue on `a`) and Bob (his on `b`), connected; each forwards through their own relay. */
async function pair(a: RelayProcess, b: RelayProcess, aliceOptions: AgentOptions = {}, bobOptions: AgentOptions = {}) {
  const alice = open([a], aliceOptions);
  const bob = open([b], bobOptions);
  const { connectionId: a2b, link } = await alice.agent.createInvitation(text('Alice'));
  const { connectionId: b2a } = await bob.agent.connect(link, text('Bob'));
  await syncUntil([alice, bob], () => alice.events.connected.has(a2b) && bob.events.connected.has(b2a));
  const got = (): string[] => bob.events.messages.get(b2a) ?? [];
  return { alice, bob, a2b, b2a, got };
}

/** Deletes the newest message stored on a relay: a relay that loses a message after answering OK. */
function loseNewestMessage(r: RelayProcess): void {
  const db = new Database(join(r.dataDir, 'relay.sqlite'));
  try {
    assert.equal(db.prepare('DELETE FROM messages WHERE seq = (SELECT MAX(seq) FROM messages)').run().changes, 1);
  } finally {
    db.close();
  }
}

const quiet = async (a: TestAgent): Promise<void> => a.agent.sync().catch(() => undefined);

test("the only receiving relay down past lostAfterMs, two messages sent meanwhile, then more: all arrive, in order", async () => {
  const [a, b, c] = await Promise.all([relay(), relay(), relay()]);
  const bobClock = clock();
  const lostAfterMs = 60_000;
  const { alice, bob, a2b, got } = await pair(a, b, {}, { clock: bobClock.now, lostAfterMs });
  bob.agent.addRelay(c.address); // where his replacement queue can go
  await b.stop('SIGKILL'); // Bob's only receiving relay, for good

  alice.agent.send(a2b, text('m1'));
  alice.agent.send(a2b, text('m2'));
  await quiet(alice); // cannot reach Bob's queue: both wait in her outbox
  await quiet(bob); // notices the relay down
  bobClock.move(lostAfterMs);
  // Bob replaces the lost queue through Alice's relay; Alice's waiting messages go to the new queue.
  await syncUntil([alice, bob], () => got().length >= 2);
  alice.agent.send(a2b, text('m3'));
  alice.agent.send(a2b, text('m4'));
  await syncUntil([alice, bob], () => got().length >= 4);
  await syncUntil([alice, bob], () => alice.agent.connection(a2b)!.pendingOutgoing === 0);
  assert.deepEqual(got(), ['m1', 'm2', 'm3', 'm4']);
  assert.deepEqual(bob.agent.connections()[0]!.receiveRelays, [c.address]);
});

test('a message the relay lost after its OK is asked for and resent; everything arrives in order', async () => {
  const [a, b] = await Promise.all([relay(), relay()]);
  const bobClock = clock();
  const { alice, bob, a2b, got } = await pair(a, b, {}, { clock: bobClock.now });
  alice.agent.send(a2b, text('m1'));
  await alice.agent.sync();
  loseNewestMessage(b);
  alice.agent.send(a2b, text('m2'));
  alice.agent.send(a2b, text('m3'));
  await alice.agent.sync();
  await bob.agent.sync();
  assert.deepEqual(got(), [], 'm2 and m3 wait for m1');
  bobClock.move(RESEND_AFTER_MS);
  await syncUntil([bob, alice], () => got().length >= 3);
  assert.deepEqual(got(), ['m1', 'm2', 'm3']);
  assert.equal(bob.events.lost.size, 0);
});

test('a gap nobody fills is given up on after the bounded time: exactly the missing count is reported, later messages flow', async () => {
  const [a, b] = await Promise.all([relay(), relay()]);
  const bobClock = clock();
  const { alice, bob, a2b, b2a, got } = await pair(a, b, {}, { clock: bobClock.now });
  for (const m of ['m1', 'm2', 'm3', 'm4', 'm5']) {
    alice.agent.send(a2b, text(m));
    await alice.agent.sync();
    if (m === 'm2' || m === 'm3') loseNewestMessage(b);
  }
  await alice.agent.close(); // Alice is away: nobody answers Bob's resend request
  await bob.agent.sync();
  assert.deepEqual(got(), ['m1']);
  bobClock.move(RESEND_AFTER_MS);
  await bob.agent.sync(); // asks, in vain
  assert.deepEqual(got(), ['m1']);
  bobClock.move(GAP_SKIP_MS - RESEND_AFTER_MS);
  await bob.agent.sync();
  assert.deepEqual(got(), ['m1', '(2 lost)', 'm4', 'm5']);
  assert.deepEqual(bob.events.lost.get(b2a), [{ fromSeq: 2, toSeq: 3 }]);

  // Alice is back: Bob's receipt names what he gave up on, so she does not count it delivered.
  const alice2 = alice.reopen();
  agents.push(alice2);
  await syncUntil([alice2, bob], () => (alice2.events.delivered.get(a2b) ?? []).includes(5));
  assert.ok(!(alice2.events.delivered.get(a2b) ?? []).some((s) => s === 2 || s === 3), `delivered: ${alice2.events.delivered.get(a2b)}`);
  alice2.agent.send(a2b, text('m6'));
  await syncUntil([alice2, bob], () => got().length >= 5);
  await quiet(bob);
  assert.deepEqual(got(), ['m1', '(2 lost)', 'm4', 'm5', 'm6'], 'resent copies that come late are not shown twice');
});

test('a message the sender no longer keeps is answered with LOST and reported at once', async () => {
  const [a, b] = await Promise.all([relay(), relay()]);
  const aliceClock = clock();
  const bobClock = clock();
  const { alice, bob, a2b, b2a, got } = await pair(a, b, { clock: aliceClock.now }, { clock: bobClock.now });
  for (const m of ['m1', 'm2', 'm3']) {
    alice.agent.send(a2b, text(m));
    await alice.agent.sync();
    if (m === 'm2') loseNewestMessage(b);
  }
  aliceClock.move(RESEND_KEEP_MS); // Alice keeps sent messages this long, no longer
  await alice.agent.sync();
  await bob.agent.sync();
  assert.deepEqual(got(), ['m1']);
  bobClock.move(RESEND_AFTER_MS);
  await syncUntil([bob, alice], () => got().length >= 3);
  assert.deepEqual(got(), ['m1', '(1 lost)', 'm3'], 'well before the bounded time: Alice said it is gone');
  assert.deepEqual(bob.events.lost.get(b2a), [{ fromSeq: 2, toSeq: 2 }]);
});

test('with Bob on two devices, a gap nobody fills is asked for and given up on through the device log: both devices report the same loss and show the same messages', async () => {
  const [a, b] = await Promise.all([relay(), relay()]);
  const bobClock = clock();
  const { alice, bob, a2b, b2a, got } = await pair(a, b, {}, { clock: bobClock.now });
  // Bob's second device, on the same clock (the event's time is every device's clock while it is applied).
  // His log is on Alice's relay: appends go by private routing, through his own (his list holds no other).
  const invite = await bob.agent.addDevice('phone', { relay: a.address });
  const phone = open([], { clock: bobClock.now });
  phone.agent.joinDeviceGroup(invite);
  await phone.agent.catchUp();
  const phoneGot = (): string[] => phone.events.messages.get(b2a) ?? [];
  for (const m of ['m1', 'm2', 'm3', 'm4']) {
    alice.agent.send(a2b, text(m));
    await alice.agent.sync();
    if (m === 'm2' || m === 'm3') loseNewestMessage(b);
  }
  await alice.agent.close(); // nobody answers the resend request
  await bob.agent.sync();
  await phone.agent.sync();
  assert.deepEqual(got(), ['m1']);
  assert.deepEqual(phoneGot(), ['m1'], 'what one device received shows on the other');
  const asks = (t: TestAgent): number => (t.db.prepare('SELECT gap_asks FROM agent_connections').get() as { gap_asks: number }).gap_asks;
  assert.equal(asks(bob), 0);
  bobClock.move(RESEND_AFTER_MS);
  await bob.agent.sync(); // device 1 leads: its tick asks for the gap, on both devices
  await phone.agent.sync();
  assert.equal(asks(bob), 1, 'the resend request was made');
  assert.deepEqual(
    phone.db.prepare('SELECT gap_asks, gap_asked_at FROM agent_connections').get(),
    bob.db.prepare('SELECT gap_asks, gap_asked_at FROM agent_connections').get(),
    'asked once, the same on both devices',
  );
  bobClock.move(GAP_SKIP_MS - RESEND_AFTER_MS);
  await bob.agent.sync();
  await phone.agent.sync();
  assert.deepEqual(got(), ['m1', '(2 lost)', 'm4']);
  assert.deepEqual(phoneGot(), ['m1', '(2 lost)', 'm4']);
  assert.deepEqual(bob.events.lost.get(b2a), [{ fromSeq: 2, toSeq: 3 }]);
  assert.deepEqual(phone.events.lost.get(b2a), [{ fromSeq: 2, toSeq: 3 }]);
  await phone.agent.close();
});
