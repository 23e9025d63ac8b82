/** The relay's log carries no IP address and no queue, link or log entry ID unless debug is on, and then it says so. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RelayClient } from '../../src/client/relay-client.js';
import { randomBytes } from '../../src/crypto/random.js';
import { generateSigningKeyPair } from '../../src/crypto/keys.js';
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

/** A log's life: its IDs and its entries' IDs must stay out of the relay's log like every other. */
async function logTraffic(address: string): Promise<Uint8Array[]> {
  const c = await RelayClient.connect(address);
  const log = await c.createQueue({ mode: 'log' });
  const writer = generateSigningKeyPair();
  await c.secureQueue(log, writer.publicKey);
  await c.send({ relay: log.relay, senderId: log.senderId, senderKey: writer.privateKey }, new TextEncoder().encode('entry'));
  const entryIds: Uint8Array[] = [];
  await c.subscribeLog(log, 1, (e) => entryIds.push(e.entryId));
  while (entryIds.length === 0) await new Promise((r) => setTimeout(r, 10));
  await c.trimLog(log, 2);
  await c.deleteQueue(log);
  await c.close();
  return [log.recipientId, log.senderId, ...entryIds];
}

function encodings(id: Uint8Array): string[] {
  const b = Buffer.from(id);
  return [b.toString('hex'), b.toString('base64'), b.toString('base64url')];
}

test('default log level: no IPs, no queue, link or log entry IDs', async () => {
  const relay = await startRelayProcess({ args: ['--log-level', 'info'] });
  const ids = [...(await traffic(relay.address)), ...(await logTraffic(relay.address))];
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
  const lines = relay.stderr().trim().split('\n').map((l) => JSON.parse(l) as { level: string; remote?: string; metadata?: boolean });
  const withAddress = lines.filter((l) => l.remote !== undefined);
  assert.ok(withAddress.length > 0, 'debug shows connection metadata');
  for (const l of withAddress) assert.equal(l.metadata, true);
});

test('every interval the relay logs one line of aggregate counts, with an ISO-8601 time and no IDs or addresses', async () => {
  const relay = await startRelayProcess({ args: ['--stats-interval', '1'] });
  const ids = await traffic(relay.address);
  const deadline = Date.now() + 10_000;
  type Stats = { level: string; time: string; msg: string; connections: number; queues: number; messagesIn: number; messagesOut: number; commands: number; errors: Record<string, number> };
  const statsLines = (): Stats[] =>
    relay
      .stderr()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Stats)
      .filter((l) => l.msg === 'relay stats');
  while (!statsLines().some((l) => l.messagesIn > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await relay.stop();
  const lines = statsLines();
  const busy = lines.find((l) => l.messagesIn > 0);
  assert.ok(busy, `a stats line counts the message: ${relay.stderr()}`);
  assert.equal(busy.level, 'info');
  assert.equal(busy.messagesIn, 1);
  assert.ok(busy.messagesOut >= 1, 'MSG deliveries (the push, and GET again before the ACK)');
  assert.ok(busy.commands >= 5, 'NEW, SUB, SEND, GET, DEL at least');
  assert.deepEqual(Object.keys(busy).sort(), ['commands', 'component', 'connections', 'connectionsOpened', 'entriesStored', 'errors', 'level', 'messagesIn', 'messagesOut', 'messagesStored', 'msg', 'queues', 'time']);
  // counts start again from zero after each line
  assert.ok(lines.filter((l) => l.messagesIn > 0).length === 1);
  for (const l of lines) assert.match(l.time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  const log = relay.stderr();
  assert.doesNotMatch(log, /\b\d{1,3}(\.\d{1,3}){3}\b/, 'no IPv4 address');
  for (const id of ids) for (const e of encodings(id)) assert.ok(!log.includes(e), 'no queue ID in any encoding');
});

test('an error answer is counted by its code in the next stats line', async () => {
  const relay = await startRelayProcess({ args: ['--stats-interval', '1'] });
  const c = await RelayClient.connect(relay.address);
  // a SEND to a queue that does not exist: AUTH
  await assert.rejects(c.send({ relay: c.address, senderId: new Uint8Array(24) }, new TextEncoder().encode('x')));
  await c.close();
  const deadline = Date.now() + 10_000;
  while (!/"errors":\{"AUTH":1\}/.test(relay.stderr()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await relay.stop();
  assert.match(relay.stderr(), /"errors":\{"AUTH":1\}/);
});

test('listening on all interfaces without --public-host is warned about', async () => {
  const relay = await startRelayProcess({ args: ['--host', '0.0.0.0'] });
  await relay.stop();
  const warning = relay
    .stderr()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { level: string; msg: string })
    .find((l) => l.level === 'warn' && /--public-host/.test(l.msg));
  assert.ok(warning, relay.stderr());
  const quiet = await startRelayProcess({ args: ['--host', '0.0.0.0', '--public-host', 'relay.example.org'] });
  await quiet.stop();
  assert.doesNotMatch(quiet.stderr(), /--public-host/);
});
