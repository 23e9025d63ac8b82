/** The relay's log carries no IP address and no queue or link ID unless debug is on, and then it says so. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RelayClient } from '../../src/client/relay-client.js';
import { randomBytes } from '../../src/crypto/random.js';
import { startRelayProcess } from '../helpers/relay-process.js';

async function traffic(address: string): Promise<Uint8Array[]> {
  const c = await RelayClient.connect(address);
  const q = await c.createQueue({ subscribe: true });
  const linkId = randomBytes(24);
  await c.setLinkData(q, linkId, randomBytes(100));
  await c.getLinkData(linkId);
  await c.send({ relay: q.relay, senderId: q.senderId }, new TextEncoder().encode('hi'));
  await c.get(q);
  await c.deleteQueue(q);
  await c.close();
  return [q.recipientId, q.senderId, linkId];
}

function encodings(id: Uint8Array): string[] {
  const b = Buffer.from(id);
  return [b.toString('hex'), b.toString('base64'), b.toString('base64url')];
}

test('default log level: no IPs, no queue or link IDs', async () => {
  const relay = await startRelayProcess({ args: ['--log-level', 'info'] });
  const ids = await traffic(relay.address);
  await relay.stop();
  const log = relay.stderr();
  assert.match(log, /relay started/, 'the log is captured');
  assert.doesNotMatch(log, /127\.0\.0\.1/);
  assert.doesNotMatch(log, /\b\d{1,3}(\.\d{1,3}){3}\b/, 'no IPv4 address');
  for (const id of ids) for (const e of encodings(id)) assert.ok(!log.includes(e), 'no queue or link ID in any encoding');
});

test('debug log level marks every line with metadata', async () => {
  const relay = await startRelayProcess({ args: ['--log-level', 'debug'] });
  await traffic(relay.address);
  await relay.stop();
  const lines = relay.stderr().trim().split('\n').map((l) => JSON.parse(l) as { level: number; remote?: string; metadata?: boolean });
  const withAddress = lines.filter((l) => l.remote !== undefined);
  assert.ok(withAddress.length > 0, 'debug shows connection metadata');
  for (const l of withAddress) assert.equal(l.metadata, true);
});
