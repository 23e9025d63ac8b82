/** Contact addresses under abuse: stamps, pause, hourly limit, replayed requests. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeLink } from '../../src/agent/links.js';
import { DEFAULT_REQUESTS_PER_HOUR } from '../../src/agent/requests.js';
import { makeStamp, verifyStamp } from '../../src/agent/stamp.js';
import { RelayClient } from '../../src/client/relay-client.js';
import { parseAddress } from '../../src/protocol/address.js';
import { startRelayProcess, type RelayProcess } from '../helpers/relay-process.js';
import { fullLink, openAgent, syncUntil, text, type TestAgent } from '../helpers/agent-harness.js';

let relay: RelayProcess;
const agents: TestAgent[] = [];
const open = (): TestAgent => {
  const a = openAgent([relay.address]);
  // Everyone here shares one relay, so there is no other relay to forward through.
  a.agent.setRouting('direct');
  agents.push(a);
  return a;
};
before(async () => {
  relay = await startRelayProcess({ args: ['--quota', '1000'] });
});
after(async () => {
  for (const a of agents) await a.agent.close();
  await relay.stop();
});

test('a stamp is bound to its request', () => {
  const id = new Uint8Array(24).fill(1);
  const reply = new Uint8Array(1153).fill(2);
  const stamp = makeStamp(id, reply, 10);
  assert.ok(verifyStamp(id, reply, stamp, 10));
  assert.ok(!verifyStamp(id, new Uint8Array(1153).fill(3), stamp, 10), 'not for another request (fixed inputs: deterministic)');
});

test('a flood of unstamped requests never reaches the owner; stamped ones do', async () => {
  const owner = open();
  // An unstamped request carries a zero nonce, whose hash meets b bits by chance one time in 2^b: with
  // 12 bits one of the 20 below got through about once in 200 runs (it did, in a CI run); with 16, once
  // in 3,300. The honest request's stamp then costs about 65,000 hashes.
  const { link } = await owner.agent.createAddress({ stampBits: 16 });
  const full = await fullLink(link);
  assert.equal(full.stampBits, 16, 'the address publishes its difficulty');
  // A spammer ignores the published difficulty.
  const cheap = encodeLink({ ...full, stampBits: 0 });
  const spammer = open();
  for (let i = 0; i < 20; i++) await spammer.agent.connect(cheap, text(`spam ${i}`));
  const honest = open();
  await honest.agent.connect(link, text('honest'));
  await syncUntil([owner], () => owner.events.requests.length >= 1);
  await owner.agent.sync();
  assert.deepEqual(owner.events.requests.map((r) => new TextDecoder().decode(r.peerInfo)), ['honest']);
});

test('a paused address drops requests; an hourly limit caps them', async () => {
  const owner = open();
  const { addressId, link } = await owner.agent.createAddress({ stampBits: 4 });
  await owner.agent.setAddressPaused(addressId, true);
  const p = open();
  await p.agent.connect(link, text('while paused'));
  await owner.agent.sync();
  assert.equal(owner.events.requests.length, 0);
  await owner.agent.setAddressPaused(addressId, false);
  await owner.agent.setAddressLimit(addressId, 2);
  for (let i = 0; i < 4; i++) await open().agent.connect(link, text(`req ${i}`));
  await owner.agent.sync();
  assert.deepEqual(owner.events.requests.map((r) => new TextDecoder().decode(r.peerInfo)), ['req 0', 'req 1']);
  assert.deepEqual(owner.agent.listAddresses().map((a) => [a.paused, a.maxPerHour, a.stampBits]), [[false, 2, 4]]);
});

test('a new address has an hourly limit; 0 still means none', async () => {
  const owner = open();
  const { addressId } = await owner.agent.createAddress({ stampBits: 4 });
  assert.ok(DEFAULT_REQUESTS_PER_HOUR > 0);
  assert.equal(owner.agent.listAddresses()[0]!.maxPerHour, DEFAULT_REQUESTS_PER_HOUR);
  await owner.agent.setAddressLimit(addressId, 0);
  assert.equal(owner.agent.listAddresses()[0]!.maxPerHour, 0);
});

test('one request delivered many times is one request; a rejected one sent again does not come back', async () => {
  const owner = open();
  const { link } = await owner.agent.createAddress({ stampBits: 8 });
  const full = await fullLink(link);
  // The requester's JOIN waits in its outbox (private routing, no relay to forward through):
  // we take its exact bytes and deliver them ourselves, as a relay replaying it would.
  const requester = openAgent([relay.address]);
  agents.push(requester);
  await requester.agent.connect(encodeLink(full), text('once'));
  const { envelope } = requester.db.prepare('SELECT envelope FROM agent_outbox').get() as { envelope: Buffer };
  const client = await RelayClient.connect(relay.address);
  const queue = { relay: parseAddress(full.relay), senderId: full.senderId };
  try {
    for (let i = 0; i < 5; i++) await client.send(queue, new Uint8Array(envelope));
    await owner.agent.sync();
    assert.deepEqual(owner.events.requests.map((r) => new TextDecoder().decode(r.peerInfo)), ['once'], 'five deliveries, one request');
    owner.agent.rejectRequest(owner.events.requests[0]!.requestId);
    for (let i = 0; i < 3; i++) await client.send(queue, new Uint8Array(envelope));
    await owner.agent.sync();
    assert.equal(owner.events.requests.length, 1, 'the rejected request stays rejected');
    assert.equal((owner.db.prepare('SELECT COUNT(*) AS n FROM agent_requests').get() as { n: number }).n, 0);
  } finally {
    await client.close();
  }
});
