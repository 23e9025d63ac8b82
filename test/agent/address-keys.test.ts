/**
 * Contact-address keys rotate (docs/agent.md §4.1): the short link stays
 * the same and yields new keys; a request made with the previous keys is
 * accepted during the grace period and not after, when the old secret is
 * gone from the database (rows and file). Time moves by the owner's clock.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ADDRESS_KEY_GRACE_MS, ADDRESS_KEY_ROTATE_MS } from '../../src/agent/address-keys.js';
import { encodeLink } from '../../src/agent/links.js';
import { encodeInvitationKeys } from '../../src/crypto/x3dh.js';
import { startRelayProcess, type RelayProcess } from '../helpers/relay-process.js';
import { fullLink, openAgent, text, type TestAgent } from '../helpers/agent-harness.js';

let relay: RelayProcess;
const agents: TestAgent[] = [];
before(async () => {
  relay = await startRelayProcess();
});
after(async () => {
  for (const a of agents) await a.agent.close();
  await relay.stop();
});

const open = (options: Parameters<typeof openAgent>[2] = {}): TestAgent => {
  const a = openAgent([relay.address], undefined, options);
  a.agent.setRouting('direct'); // one relay: nothing to forward through
  agents.push(a);
  return a;
};

/** Whether `needle` is anywhere in the database: every blob of every table, and the file itself. */
function databaseHolds(a: TestAgent, needle: Buffer): boolean {
  const tables = a.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
  for (const t of tables) {
    for (const row of a.db.prepare(`SELECT * FROM ${t}`).all() as Record<string, unknown>[]) {
      if (Object.values(row).some((v) => Buffer.isBuffer(v) && v.includes(needle))) return true;
    }
  }
  a.db.pragma('wal_checkpoint(TRUNCATE)');
  return readFileSync(a.path).includes(needle);
}

test('address keys rotate under the same short link; old ones work for the grace period, then are gone', async () => {
  let now = Date.now();
  const owner = open({ clock: () => now });
  owner.db.pragma('secure_delete = ON'); // as in a profile (src/chat/profile-db.ts)
  const { link } = await owner.agent.createAddress({ stampBits: 4 });
  const first = await fullLink(link);

  await owner.agent.sync();
  assert.deepEqual(await fullLink(link), first, 'nothing changes before the rotation is due');

  now += ADDRESS_KEY_ROTATE_MS;
  await owner.agent.sync();
  const second = await fullLink(link);
  assert.notDeepEqual(encodeInvitationKeys(second.keys), encodeInvitationKeys(first.keys), 'the same link now yields new keys');
  assert.deepEqual({ ...second, keys: null }, { ...first, keys: null }, 'same queue, relay and stamp difficulty');
  const firstKey = owner.db.prepare('SELECT id, secrets FROM agent_address_keys ORDER BY id LIMIT 1').get() as { id: number; secrets: Buffer };
  // The private X25519 keys and the start of the ML-KEM secret key (docs/e2e.md §2.1).
  const firstSecret = firstKey.secrets.subarray(1, 1 + 64 + 64);

  // A request through the link uses the new keys; one made with the previous keys
  // (fetched before the rotation) is still accepted within the grace period.
  await open().agent.connect(link, text('new keys'));
  await open().agent.connect(encodeLink(first), text('previous keys'));
  await owner.agent.sync();
  const opened = owner.db
    .prepare('SELECT key_id FROM agent_request_seen')
    .pluck()
    .all() as number[];
  assert.deepEqual(owner.events.requests.map((r) => new TextDecoder().decode(r.peerInfo)).sort(), ['new keys', 'previous keys']);
  assert.equal(opened.filter((k) => k === firstKey.id).length, 1, 'exactly one request was opened with the first key');
  assert.ok(databaseHolds(owner, firstSecret), 'the replaced key is kept during the grace period');

  // After the grace period the first key is gone, rows and file, and requests made with it are dropped.
  now += ADDRESS_KEY_GRACE_MS;
  await owner.agent.sync();
  assert.equal(owner.db.prepare('SELECT COUNT(*) FROM agent_address_keys WHERE id = ?').pluck().get(firstKey.id), 0);
  assert.equal(databaseHolds(owner, firstSecret), false, 'the old secret is nowhere in the database');
  await open().agent.connect(encodeLink(first), text('too late'));
  await open().agent.connect(link, text('still welcome'));
  await owner.agent.sync();
  assert.deepEqual(owner.events.requests.map((r) => new TextDecoder().decode(r.peerInfo)).sort(), ['new keys', 'previous keys', 'still welcome']);
});

test('with two devices, the leading one rotates the address keys through the device log: both hold the same keys, and a request with the new ones shows on both', async () => {
  let now = Date.now();
  const owner = open({ clock: () => now });
  const { link } = await owner.agent.createAddress({ stampBits: 4 });
  const first = await fullLink(link);
  const phone = open({ clock: () => now });
  const invite = await owner.agent.addDevice('phone', { relay: relay.address });
  phone.agent.joinDeviceGroup(invite);
  await phone.agent.catchUp();

  now += ADDRESS_KEY_ROTATE_MS;
  await phone.agent.sync(); // not the leading device: nothing changes
  assert.deepEqual(await fullLink(link), first);
  await owner.agent.sync();
  const second = await fullLink(link);
  assert.notDeepEqual(encodeInvitationKeys(second.keys), encodeInvitationKeys(first.keys), 'the link yields new keys');
  await phone.agent.sync();
  const keys = (t: TestAgent): unknown[] => t.db.prepare('SELECT id, secrets, created_at, published_at, retired_at FROM agent_address_keys ORDER BY id').all();
  assert.equal(keys(owner).length, 2);
  assert.deepEqual(keys(phone), keys(owner), 'the same keys, published and retired at the same moments, on both devices');

  await open().agent.connect(link, text('with the new keys'));
  await owner.agent.sync();
  await phone.agent.sync();
  for (const t of [owner, phone]) assert.deepEqual(t.events.requests.map((r) => new TextDecoder().decode(r.peerInfo)), ['with the new keys']);

  // The replaced key goes after its grace period, on both (agent.tick); the keys are due again meanwhile, and rotate.
  const firstId = (keys(owner)[0] as { id: number }).id;
  now += ADDRESS_KEY_GRACE_MS;
  await owner.agent.sync();
  await phone.agent.sync();
  assert.ok(!keys(owner).some((k) => (k as { id: number }).id === firstId), 'the first key is gone');
  assert.deepEqual(keys(phone), keys(owner));
  await phone.agent.close();
});
