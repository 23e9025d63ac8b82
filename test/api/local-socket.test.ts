/**
 * The node's API over its real Unix socket: the hello, operations with
 * results and typed errors, progress, owner-only permissions, an abandoned
 * request, and a second client served while the node is busy.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { ApiError } from '../../src/api/errors.js';
import { NodeConnection, socketPath } from '../../src/api/local-socket.js';
import { ProfileNode } from '../../src/api/node.js';
import { tryLockProfile } from '../../src/api/profile-lock.js';
import { Agent } from '../../src/agent/agent.js';
import { Chat } from '../../src/chat/chat.js';
import { createProfileDatabase } from '../../src/chat/profile-db.js';
import { unlockKey } from '../../src/chat/profile-key.js';
import { startRelayProcess, tempDir, type RelayProcess } from '../helpers/relay-process.js';

let relay: RelayProcess;
before(async () => {
  relay = await startRelayProcess();
});
after(async () => {
  await relay?.stop();
});

async function newNode(name: string): Promise<{ dir: string; node: ProfileNode }> {
  const dir = join(tempDir('nightjar-api-'), 'profile');
  await createProfileDatabase(dir, 'pw', async (db) => {
    Chat.initialize(db, name);
    await Agent.open(db, Chat.open(db)).close();
  });
  const release = tryLockProfile(dir);
  assert.ok(release);
  return { dir, node: await ProfileNode.open(dir, await unlockKey(dir, 'pw'), release) };
}

async function client(dir: string): Promise<NodeConnection> {
  const c = await NodeConnection.connect(dir);
  assert.ok(c, 'the node answers on its socket');
  return c;
}

const rejectsWith = (code: string) => (e: unknown) => e instanceof ApiError && e.code === code;

test('hello, results and typed errors; the socket is the owner’s only', async () => {
  const { dir, node } = await newNode('Alice');
  try {
    assert.equal(statSync(socketPath(dir)).mode & 0o777, 0o600);
    const c = await client(dir);
    assert.equal(c.pid, process.pid);
    assert.deepEqual(await c.call('contacts', {}), { contacts: [] });
    await assert.rejects(c.call('send', { contact: 'nobody', text: 'x' }), rejectsWith('UNKNOWN_CONTACT'));
    await assert.rejects(c.call('no.such.op', {}), rejectsWith('BAD_REQUEST'));
    await assert.rejects(c.call('contacts', { all: 'yes' }), rejectsWith('BAD_REQUEST'));
    await assert.rejects(c.call('contacts', ['not', 'an', 'object']), rejectsWith('BAD_REQUEST'));
    await assert.rejects(c.call('invite', {}), rejectsWith('NO_RELAYS'));

    const progress: (string | null)[] = [];
    const added = (await c.call('relays.add', { address: relay.address, operator: 'test' }, (p) => progress.push(p))) as { relay: { address: string; operator: string }; checked: boolean };
    assert.equal(added.relay.address, relay.address);
    assert.equal(added.checked, true);
    assert.ok(progress.some((p) => p !== null && p.startsWith('checking')), 'progress while the relay is checked');
    await assert.rejects(c.call('routing', { mode: 'onion' }), rejectsWith('NOT_ENOUGH_RELAYS'));

    const invitation = (await c.call('invite', {})) as { type: string; link: string; contactId: number };
    assert.equal(invitation.type, 'invitation');
    assert.match(invitation.link, /^nightjar:invite#/);
    assert.deepEqual(((await c.call('contacts', {})) as { contacts: unknown[] }).contacts, [], 'unused invitations are hidden');
    assert.equal(((await c.call('contacts', { all: true })) as { contacts: unknown[] }).contacts.length, 1);
    await assert.rejects(c.call('connect', { link: invitation.link }), rejectsWith('OWN_LINK'));
    c.close();
  } finally {
    await node.close();
  }
});

test('a malformed line ends that connection only; other clients go on', async () => {
  const { dir, node } = await newNode('Bob');
  try {
    const good = await client(dir);
    const bad = createConnection(socketPath(dir));
    bad.resume(); // read (and drop) the hello, or the end of the stream is never seen
    const closed = new Promise<void>((resolve) => bad.on('close', () => resolve()));
    bad.write('this is not json\n');
    await closed;
    assert.deepEqual(await good.call('contacts', {}), { contacts: [] });
    good.close();
  } finally {
    await node.close();
  }
});

test('a waiting request whose client goes away stops waiting; what it saved stays', async () => {
  const alice = await newNode('Alice');
  const bob = await newNode('Bob');
  try {
    const a = await client(alice.dir);
    const b = await client(bob.dir);
    await a.call('relays.add', { address: relay.address });
    await b.call('relays.add', { address: relay.address });
    await b.call('routing', { mode: 'direct' });
    const { link } = (await a.call('invite', {})) as { link: string };
    // Alice's node is not listening (no chat, no command): Bob would wait a minute.
    const started = Date.now();
    const waiting = b.call('connect', { link, waitMs: 60_000 });
    waiting.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 1500));
    b.close();
    await assert.rejects(waiting, rejectsWith('INTERRUPTED'));
    const b2 = await client(bob.dir);
    const { contacts } = (await b2.call('contacts', { all: true })) as { contacts: { status: string; origin: string }[] };
    assert.deepEqual(contacts.map((c) => [c.origin, c.status]), [['link', 'pending']], 'the use of the link is kept');
    // ...and the node stopped waiting: closing it does not sit out the minute.
    await bob.node.close();
    assert.ok(Date.now() - started < 30_000, `closed after ${Date.now() - started} ms`);
    b2.close();
    a.close();
  } finally {
    await alice.node.close();
    await bob.node.close();
  }
});

test('a closed node leaves no socket behind and the next client finds nobody', async () => {
  const { dir, node } = await newNode('Carol');
  await node.close();
  assert.equal(await NodeConnection.connect(dir), undefined);
  assert.throws(() => statSync(socketPath(dir)), /ENOENT/);
});
