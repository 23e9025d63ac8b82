/**
 * Nothing is lost and nothing is doubled: 100 messages each way between
 * profiles on two relays, with one relay killed and restarted mid-conversation
 * and the sending agent's process killed mid-send.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { spawnTracked } from '../helpers/processes.js';
import { startRelayProcess } from '../helpers/relay-process.js';
import { openAgent, syncUntil, text } from '../helpers/agent-harness.js';

const N = 100;

test('100 messages each way, relay restart and agent kill: exactly once, in order', async () => {
  const relayA = await startRelayProcess({ args: ['--quota', '1000'] });
  let relayB = await startRelayProcess({ args: ['--quota', '1000'] });
  const alice = openAgent([relayA.address]);
  let bob = openAgent([relayB.address]);
  const { connectionId: a2b, link } = await alice.agent.createInvitation(text('Alice'));
  const { connectionId: b2a } = await bob.agent.connect(link, text('Bob'));
  await syncUntil([alice, bob], () => alice.events.connected.has(a2b) && bob.events.connected.has(b2a));

  // First half both ways.
  for (let i = 0; i < N / 2; i++) {
    alice.agent.send(a2b, text(`m${i}`));
    bob.agent.send(b2a, text(`m${i}`));
  }
  await syncUntil([alice, bob], () => (alice.events.messages.get(a2b)?.length ?? 0) >= N / 4);

  // Bob's relay dies hard and comes back on the same port with the same data.
  await relayB.stop('SIGKILL');
  for (let i = N / 2; i < (3 * N) / 4; i++) alice.agent.send(a2b, text(`m${i}`));
  await alice.agent.sync().catch(() => undefined); // Bob's queue is unreachable: Alice's messages wait
  relayB = await startRelayProcess({ dataDir: relayB.dataDir, port: relayB.port, args: ['--quota', '1000'] });
  await bob.agent.close();
  const bobBefore = bob;
  bob = bob.reopen();
  // What Bob's chat layer saw, across the restart of his agent.
  const bobGot = (): string[] => [...relayMessages(bobBefore, b2a), ...relayMessages(bob, b2a)];

  // Alice's agent process is killed in the middle of sending the last quarter.
  await alice.agent.close();
  const child = spawnTracked(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'helpers', 'agent-sender.ts'), alice.path, a2b, String((3 * N) / 4), String(N / 4)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  let confirmed = 0;
  await new Promise<void>((resolve) => {
    lines.on('line', () => {
      confirmed++;
      if (confirmed === 10) {
        child.kill('SIGKILL');
        resolve();
      }
    });
    child.once('exit', () => resolve());
  });
  await new Promise((r) => child.once('exit', r).exitCode !== null && r(undefined));
  // The rest of the last quarter is sent by the restarted agent.
  const alice2 = alice.reopen();
  const resumeFrom = (3 * N) / 4 + confirmed + 1;
  for (let i = resumeFrom; i < N; i++) alice2.agent.send(a2b, text(`m${i}`));
  // Bob's second half goes out from his restarted agent.
  for (let i = N / 2; i < N; i++) bob.agent.send(b2a, text(`m${i}`));

  await syncUntil([alice2, bob], () => bobGot().length >= N - 1, 60).catch(() => undefined);
  await alice2.agent.sync().catch(() => undefined);
  await bob.agent.sync().catch(() => undefined);
  const got = bobGot();
  // Every message whose send started reached Bob exactly once and in order; the one being sent
  // when the process died (index 3N/4 + confirmed) either was stored by the relay or not at all.
  const expected = Array.from({ length: N }, (_, i) => `m${i}`);
  const inFlight = `m${(3 * N) / 4 + confirmed}`;
  assert.equal(new Set(got).size, got.length, 'no duplicates');
  assert.deepEqual(got.filter((m) => m !== inFlight), expected.filter((m) => m !== inFlight), 'all others, in order');

  // All 100 of Bob's reach Alice (before and after her restart) exactly once, in order.
  await syncUntil([alice2, bob], () => (alice.events.messages.get(a2b)?.length ?? 0) + (alice2.events.messages.get(a2b)?.length ?? 0) >= N, 30);
  assert.ok(got.length >= N - 1, `Bob got ${got.length} of ${N}`);
  const fromBob = [...(alice.events.messages.get(a2b) ?? []), ...(alice2.events.messages.get(a2b) ?? [])];
  assert.deepEqual(fromBob, Array.from({ length: N }, (_, i) => `m${i}`));

  await alice2.agent.close();
  await bob.agent.close();
  await Promise.all([relayA.stop(), relayB.stop()]);
});

function relayMessages(a: { events: { messages: Map<string, string[]> } }, id: string): string[] {
  return a.events.messages.get(id) ?? [];
}
