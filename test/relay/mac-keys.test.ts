// test-file-timeout: 240
/**
 * Per-session MAC keys (protocol version 5, docs/protocol.md §7): the
 * dispatcher's rules on an in-memory store (registration, party and queue
 * key separation, forwarded requests, the per-session limit); then over real
 * TLS on loopback: sessions apart, a version 4 session keeping the old
 * rules, and what the RelayClient sends (read from its trace).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TLSSocket } from 'node:tls';
import { RelayClient } from '../../src/client/relay-client.js';
import { RelayError } from '../../src/client/errors.js';
import { ClientMacKeys } from '../../src/client/mac-keys.js';
import type { RecipientQueue, SenderQueue } from '../../src/client/queues.js';
import { generateSigningKeyPair, sign } from '../../src/crypto/keys.js';
import { randomBytes } from '../../src/crypto/random.js';
import type { RelayAddress } from '../../src/protocol/address.js';
import { decodeBatch, encodeBatch } from '../../src/protocol/block.js';
import { encodeCommand, type Command, type Response } from '../../src/protocol/commands.js';
import { MAC_KEY_LENGTH, sessionMac, type Authentication } from '../../src/protocol/authenticator.js';
import {
  decodeTransmission,
  encodeAuthenticatedTransmission,
  encodeTransmission,
  encodeTransmissionBody,
  signedData,
} from '../../src/protocol/transmission.js';
import { CURRENT_VERSION, PUSH_WINDOW_VERSION } from '../../src/protocol/version.js';
import { resolveConfig } from '../../src/relay/config.js';
import { Dispatcher, type ClientSession } from '../../src/relay/dispatcher.js';
import { SessionMacKeys } from '../../src/relay/mac-keys.js';
import { SqliteQueueStore } from '../../src/relay/sqlite-store.js';
import { Inbox, text } from '../helpers/inbox.js';
import { startVersion2Relay } from '../helpers/version2-relay.js';
import { rawConnection } from '../helpers/raw-session.js';
import { inProcessRelay } from '../helpers/in-process-relay.js';

const AUTH: Response = { type: 'ERR', code: 'AUTH' };
const OK: Response = { type: 'OK' };
const sign64 = (signingKey: Uint8Array): Authentication => ({ form: 'signature', signingKey });
const register = (signingKey: Uint8Array, macKey: Uint8Array): Authentication => ({ form: 'register', signingKey, macKey });
const mac = (macKey: Uint8Array): Authentication => ({ form: 'mac', macKey });
const newMacKey = (): Uint8Array => randomBytes(MAC_KEY_LENGTH);
const send = (body = 'hi'): Command => ({ type: 'SEND', flags: 0, body: text(body) });

/** A secured messaging queue in `store`, with both keys. */
async function securedQueue(store: SqliteQueueStore) {
  const recipient = generateSigningKeyPair();
  const sender = generateSigningKeyPair();
  const recipientId = randomBytes(24);
  const senderId = randomBytes(24);
  await store.createQueue({ recipientId, senderId, recipientKey: recipient.publicKey, queueKey: randomBytes(32), mode: 'messaging' });
  assert.equal(await store.secureQueue(recipientId, sender.publicKey), 'ok');
  return { recipient, sender, recipientId, senderId };
}

describe('MAC keys in the dispatcher', () => {
  let store: SqliteQueueStore;
  let dispatcher: Dispatcher;
  let corr = 0;
  before(() => {
    store = new SqliteQueueStore(':memory:');
    dispatcher = new Dispatcher(store, resolveConfig({ dataDir: '/unused' }));
  });
  after(() => store.close());

  const session = (macKeys: SessionMacKeys | undefined = new SessionMacKeys()): ClientSession => ({
    binding: randomBytes(32),
    push: () => undefined,
    version: CURRENT_VERSION,
    ...(macKeys ? { macKeys } : {}),
  });
  const run = (s: ClientSession, entityId: Uint8Array, command: Command, auth: Authentication): Promise<Response> =>
    dispatcher.handle(s, decodeTransmission(encodeAuthenticatedTransmission(s.binding, Uint8Array.of(++corr), entityId, encodeCommand(command), auth)));

  test('a MAC is AUTH until a registration answered; then it authorises, and only under the key registered', async () => {
    const q = await securedQueue(store);
    const s = session();
    const k = newMacKey();
    assert.deepEqual(await run(s, q.senderId, send(), mac(k)), AUTH, 'no key registered yet');
    assert.deepEqual(await run(s, q.senderId, send(), register(q.sender.privateKey, k)), OK);
    assert.deepEqual(await run(s, q.senderId, send(), mac(k)), OK);
    assert.deepEqual(await run(s, q.senderId, send(), mac(newMacKey())), AUTH, 'another key');
    // A MAC over another binding (as on another session) does not verify here.
    const body = encodeTransmissionBody(Uint8Array.of(++corr), q.senderId, encodeCommand(send()));
    const foreign = encodeTransmission(sessionMac(k, randomBytes(32), body), body);
    assert.deepEqual(await dispatcher.handle(s, decodeTransmission(foreign)), AUTH);
    // Plain signatures keep working beside the key.
    assert.deepEqual(await run(s, q.senderId, send(), sign64(q.sender.privateKey)), OK);
    // A new registration replaces the key.
    const k2 = newMacKey();
    assert.deepEqual(await run(s, q.senderId, send(), register(q.sender.privateKey, k2)), OK);
    assert.deepEqual(await run(s, q.senderId, send(), mac(k)), AUTH, 'the replaced key');
    assert.deepEqual(await run(s, q.senderId, send(), mac(k2)), OK);
    const messages = await store.peekMessages(q.recipientId, 0, undefined, 100);
    assert.equal(messages.length, 5);
  });

  test('the key is the session\'s: another session, or the same keys in a new one, get AUTH', async () => {
    const q = await securedQueue(store);
    const a = session();
    const b = session();
    const k = newMacKey();
    assert.deepEqual(await run(a, q.senderId, send(), register(q.sender.privateKey, k)), OK);
    assert.deepEqual(await run(b, q.senderId, send(), mac(k)), AUTH);
    assert.deepEqual(await run(a, q.senderId, send(), mac(k)), OK);
  });

  test('parties apart: a key registered by the recipient never authorises a SEND, nor a sender\'s key a recipient command', async () => {
    const q = await securedQueue(store);
    const s = session();
    const r = newMacKey();
    const k = newMacKey();
    assert.deepEqual(await run(s, q.recipientId, { type: 'SUB' }, register(q.recipient.privateKey, r)), OK);
    assert.deepEqual(await run(s, q.senderId, send(), register(q.sender.privateKey, k)), OK);
    assert.deepEqual(await run(s, q.senderId, send(), mac(r)), AUTH);
    assert.deepEqual(await run(s, q.recipientId, { type: 'GET' }, mac(k)), AUTH);
    assert.equal((await run(s, q.recipientId, { type: 'GET' }, mac(r))).type, 'MSG');
    // Unit level, where the entity is the same: the table keeps the parties apart.
    const keys = new SessionMacKeys();
    const id = randomBytes(24);
    const binding = randomBytes(32);
    const body = randomBytes(40);
    const queueKey = randomBytes(32);
    assert.ok(keys.register('recipient', id, queueKey, r));
    assert.ok(keys.verify('recipient', id, queueKey, binding, body, sessionMac(r, binding, body)));
    assert.ok(!keys.verify('sender', id, queueKey, binding, body, sessionMac(r, binding, body)));
  });

  test('a registration that does not verify registers nothing; NEW, unsecured and contact queues take no MAC forms', async () => {
    const q = await securedQueue(store);
    const s = session();
    const k = newMacKey();
    const wrong = generateSigningKeyPair();
    assert.deepEqual(await run(s, q.senderId, send(), register(wrong.privateKey, k)), AUTH);
    assert.deepEqual(await run(s, q.senderId, send(), mac(k)), AUTH);
    // The registering signature must cover the label and the key: a plain signature with a key appended is not one.
    const body = encodeTransmissionBody(Uint8Array.of(++corr), q.senderId, encodeCommand(send()));
    const spliced = new Uint8Array([...sign(q.sender.privateKey, signedData(s.binding, body)), ...k]);
    assert.deepEqual(await dispatcher.handle(s, decodeTransmission(encodeTransmission(spliced, body))), AUTH);
    assert.deepEqual(await run(s, q.senderId, send(), mac(k)), AUTH);
    // A registration by the recipient key on the sender's ID is not the sender's.
    assert.deepEqual(await run(s, q.senderId, send(), register(q.recipient.privateKey, k)), AUTH);

    const owner = generateSigningKeyPair();
    const newCommand: Command = { type: 'NEW', recipientAuthKey: owner.publicKey, recipientDhKey: generateSigningKeyPair().publicKey, basicAuth: new Uint8Array(0), queueMode: 'messaging', powNonce: new Uint8Array(0) };
    const noPow = new Dispatcher(store, resolveConfig({ dataDir: '/unused', powBits: 0 }));
    const runNew = (auth: Authentication) => noPow.handle(s, decodeTransmission(encodeAuthenticatedTransmission(s.binding, Uint8Array.of(++corr), new Uint8Array(0), encodeCommand(newCommand), auth)));
    assert.deepEqual(await runNew(register(owner.privateKey, k)), AUTH);
    assert.deepEqual(await runNew(mac(k)), AUTH);
    assert.equal((await runNew(sign64(owner.privateKey))).type, 'IDS');

    // An unsecured queue takes one unsigned SEND, nothing authenticated; a contact queue only unsigned ones.
    for (const mode of ['messaging', 'contact'] as const) {
      const senderId = randomBytes(24);
      const key = generateSigningKeyPair();
      await store.createQueue({ recipientId: randomBytes(24), senderId, recipientKey: key.publicKey, queueKey: randomBytes(32), mode });
      assert.deepEqual(await run(s, senderId, send(), register(key.privateKey, k)), AUTH, mode);
      assert.deepEqual(await run(s, senderId, send(), mac(k)), AUTH, mode);
      assert.deepEqual(await run(s, senderId, send(), { form: 'none' }), OK, mode);
    }
  });

  test('a suspended or deleted queue: its keys authorise nothing more', async () => {
    const q = await securedQueue(store);
    const s = session();
    const r = newMacKey();
    const k = newMacKey();
    assert.deepEqual(await run(s, q.senderId, send(), register(q.sender.privateKey, k)), OK);
    assert.deepEqual(await run(s, q.recipientId, { type: 'OFF' }, register(q.recipient.privateKey, r)), OK);
    assert.deepEqual(await run(s, q.senderId, send(), mac(k)), AUTH, 'suspended');
    assert.equal((await run(s, q.recipientId, { type: 'GET' }, mac(r))).type, 'MSG', 'the recipient still reads');
    assert.deepEqual(await run(s, q.recipientId, { type: 'DEL' }, mac(r)), OK);
    assert.deepEqual(await run(s, q.recipientId, { type: 'GET' }, mac(r)), AUTH, 'deleted');
  });

  test('a key is bound to the queue key that registered it', async () => {
    // Keys do not change in this version (KEY sets the sender key once); a table entry made under
    // another queue key (as after a rotation some later version might allow) authorises nothing.
    const keys = new SessionMacKeys();
    const id = randomBytes(24);
    const k = newMacKey();
    const binding = randomBytes(32);
    const body = randomBytes(100);
    const tag = sessionMac(k, binding, body);
    const old = randomBytes(32);
    keys.register('sender', id, old, k);
    assert.ok(keys.verify('sender', id, old, binding, body, tag));
    assert.ok(!keys.verify('sender', id, randomBytes(32), binding, body, tag));
    assert.ok(!keys.verify('sender', randomBytes(24), old, binding, body, tag));
    assert.ok(!keys.verify('sender', id, old, binding, body, tag.subarray(0, 31)));
  });

  test('forwarded requests hold no keys: the 96- and 32-byte forms are AUTH there, signatures work', async () => {
    const q = await securedQueue(store);
    const carrier = session();
    const forwarded: ClientSession = { binding: randomBytes(32), push: () => undefined, forwardedBy: carrier };
    const k = newMacKey();
    assert.deepEqual(await run(forwarded, q.senderId, send(), register(q.sender.privateKey, k)), AUTH);
    assert.deepEqual(await run(forwarded, q.senderId, send(), mac(k)), AUTH);
    assert.deepEqual(await run(forwarded, q.senderId, send(), sign64(q.sender.privateKey)), OK);
    assert.equal(carrier.macKeys!.size, 0, 'nothing registered on the carrying connection either');
  });

  test('a session holds at most its limit of keys; a registration beyond it executes the command and registers nothing', async () => {
    const q1 = await securedQueue(store);
    const q2 = await securedQueue(store);
    const s = session(new SessionMacKeys(1));
    const k1 = newMacKey();
    const k2 = newMacKey();
    assert.deepEqual(await run(s, q1.senderId, send(), register(q1.sender.privateKey, k1)), OK);
    assert.deepEqual(await run(s, q2.senderId, send(), register(q2.sender.privateKey, k2)), OK, 'a valid signature all the same');
    assert.deepEqual(await run(s, q2.senderId, send(), mac(k2)), AUTH);
    // Replacing the one it holds is not a new key.
    const k3 = newMacKey();
    assert.deepEqual(await run(s, q1.senderId, send(), register(q1.sender.privateKey, k3)), OK);
    assert.deepEqual(await run(s, q1.senderId, send(), mac(k3)), OK);
  });

  test('an AUTH for a MAC costs the same whether or not a key is registered', async () => {
    const q = await securedQueue(store);
    const s = session();
    assert.deepEqual(await run(s, q.senderId, send(), register(q.sender.privateKey, newMacKey())), OK);
    const keys = s.macKeys!;
    const binding = s.binding;
    const body = randomBytes(15_000);
    const tag = randomBytes(32);
    const time = (entityId: Uint8Array): number => {
      const start = process.hrtime.bigint();
      assert.ok(!keys.verify('sender', entityId, q.sender.publicKey, binding, body, tag));
      return Number(process.hrtime.bigint() - start);
    };
    const other = randomBytes(24);
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < 400; i++) {
      a.push(time(q.senderId));
      b.push(time(other));
    }
    const median = (xs: number[]): number => xs.sort((x, y) => x - y)[xs.length >> 1]!;
    const ratio = median(a) / median(b);
    assert.ok(ratio > 0.6 && ratio < 1.6, `median AUTH time ratio registered/unregistered = ${ratio.toFixed(2)}`);
  });
});

describe('ClientMacKeys', () => {
  const id = randomBytes(24);
  const key = randomBytes(32);

  test('registers once, signs while the answer is awaited, MACs after an authorised answer', () => {
    const keys = new ClientMacKeys();
    const first = keys.authentication('sender', id, key);
    assert.equal(first.form, 'register');
    assert.equal(keys.authentication('sender', id, key).form, 'signature', 'pipelined behind the registration');
    assert.equal(keys.authentication('recipient', id, key).form, 'register', 'the other party has its own');
    keys.settle('sender', id, (first as { macKey: Uint8Array }).macKey, { type: 'OK' });
    const next = keys.authentication('sender', id, key);
    assert.equal(next.form, 'mac');
    assert.deepEqual((next as { macKey: Uint8Array }).macKey, (first as { macKey: Uint8Array }).macKey);
    assert.equal(keys.authentication('sender', id, randomBytes(32)).form, 'signature', 'another signing key');
  });

  test('an answer that may come before authorisation, or none, forgets the key; the next command registers a new one', () => {
    for (const answer of [{ type: 'ERR', code: 'AUTH' }, { type: 'ERR', code: 'BUSY', retryAfterMs: 5 }, { type: 'ERR', code: 'CMD_SYNTAX' }, undefined] as const) {
      const keys = new ClientMacKeys();
      const first = keys.authentication('sender', id, key) as { macKey: Uint8Array };
      keys.settle('sender', id, first.macKey, answer);
      const again = keys.authentication('sender', id, key);
      assert.equal(again.form, 'register', JSON.stringify(answer));
      assert.notDeepEqual((again as { macKey: Uint8Array }).macKey, first.macKey);
    }
    for (const code of ['NO_MSG', 'QUOTA', 'LARGE_MSG'] as const) {
      const keys = new ClientMacKeys();
      const first = keys.authentication('recipient', id, key) as { macKey: Uint8Array };
      keys.settle('recipient', id, first.macKey, { type: 'ERR', code });
      assert.equal(keys.authentication('recipient', id, key).form, 'mac', code);
    }
  });

  test('registers for at most its limit of entities, counting failed registrations, then signs', () => {
    const keys = new ClientMacKeys(2);
    const a = randomBytes(24);
    const b = randomBytes(24);
    const fa = keys.authentication('sender', a, key) as { macKey: Uint8Array };
    keys.settle('sender', a, fa.macKey, { type: 'ERR', code: 'AUTH' });
    assert.equal(keys.authentication('sender', b, key).form, 'register');
    assert.equal(keys.authentication('sender', randomBytes(24), key).form, 'signature', 'full');
    assert.equal(keys.authentication('sender', a, key).form, 'register', 'an entity it counted already may register again');
  });
});

/** A connection that does the handshake itself, so it can negotiate any version and send any authenticator. */
async function rawSession(address: RelayAddress, version: number) {
  const { socket, binding, received, more } = await rawConnection(address, version);
  let corr = 0;
  /** Writes one transmission and resolves with the next answer (the tests here expect no pushes). */
  const exchange = async (bytes: Uint8Array): Promise<{ corrId: Uint8Array; response: Response }> => {
    const seen = received.length;
    socket.write(encodeBatch([bytes]));
    while (received.length === seen) await more();
    return received[seen]!;
  };
  return {
    binding,
    exchange,
    async request(entityId: Uint8Array, command: Command, auth: Authentication): Promise<Response> {
      return (await exchange(encodeAuthenticatedTransmission(binding, Uint8Array.of(++corr), entityId, encodeCommand(command), auth))).response;
    },
    close: () => socket.destroy(),
  };
}

/** Outgoing [command tag, authenticator length] pairs, read from a RelayClient's trace. */
function outgoingLog(): { log: [string, number][]; trace: (direction: 'in' | 'out', block: Uint8Array) => void } {
  const log: [string, number][] = [];
  return {
    log,
    trace: (direction, block) => {
      if (direction !== 'out') return;
      for (const bytes of decodeBatch(block)) {
        const t = decodeTransmission(bytes);
        log.push([Buffer.from(t.command.subarray(0, 4)).toString('latin1').trim(), t.authenticator.length]);
      }
    },
  };
}

describe('MAC keys over TLS', () => {
  const fixture = inProcessRelay();
  const { clients } = fixture;

  async function queue(): Promise<{ q: RecipientQueue; sq: SenderQueue; senderKey: Uint8Array }> {
    const c = await RelayClient.connect(fixture.relay.address);
    clients.push(c);
    const q = await c.createQueue();
    const keys = generateSigningKeyPair();
    await c.secureQueue(q, keys.publicKey);
    return { q, sq: { relay: q.relay, senderId: q.senderId, senderKey: keys.privateKey }, senderKey: keys.privateKey };
  }

  test('a key registered on one TLS session is AUTH on another, and after reconnection', async () => {
    const { q, senderKey } = await queue();
    const a = await rawSession(fixture.relay.address, CURRENT_VERSION);
    const b = await rawSession(fixture.relay.address, CURRENT_VERSION);
    const k = newMacKey();
    assert.deepEqual(await a.request(q.senderId, send(), mac(k)), AUTH, 'before registration');
    assert.deepEqual(await a.request(q.senderId, send(), register(senderKey, k)), OK);
    assert.deepEqual(await a.request(q.senderId, send(), mac(k)), OK);
    assert.deepEqual(await b.request(q.senderId, send(), mac(k)), AUTH, 'another session');
    assert.deepEqual(await a.request(q.senderId, send(), mac(newMacKey())), AUTH, 'a wrong key');
    a.close();
    const again = await rawSession(fixture.relay.address, CURRENT_VERSION);
    assert.deepEqual(await again.request(q.senderId, send(), mac(k)), AUTH, 'a new session of the same client');
    assert.deepEqual(await again.request(q.recipientId, { type: 'GET' }, mac(k)), AUTH, 'the other party');
    b.close();
    again.close();
  });

  test('a version 4 session keeps the old rules: signatures work, 96- and 32-byte authenticators are CMD_SYNTAX', async () => {
    const { q, senderKey } = await queue();
    const v4 = await rawSession(fixture.relay.address, PUSH_WINDOW_VERSION);
    assert.deepEqual(await v4.request(q.senderId, send(), sign64(senderKey)), OK);
    const k = newMacKey();
    for (const auth of [register(senderKey, k), mac(k)]) {
      const bytes = encodeAuthenticatedTransmission(v4.binding, Uint8Array.of(9), q.senderId, encodeCommand(send()), auth);
      const answer = await v4.exchange(bytes);
      // As a version 4 relay answers it: the transmission does not decode, so no corrId comes back.
      assert.equal(answer.corrId.length, 0, auth.form);
      assert.deepEqual(answer.response, { type: 'ERR', code: 'CMD_SYNTAX' }, auth.form);
    }
    assert.deepEqual(await v4.request(q.senderId, send(), mac(k)), { type: 'ERR', code: 'CMD_SYNTAX' }, 'nothing was registered');
    assert.deepEqual(await v4.request(q.recipientId, { type: 'GET' }, sign64(q.recipientKey)).then((r) => r.type), 'MSG');
    v4.close();
  });

  test('the client registers with its first command per queue and session, MACs once that is answered, and registers again after a reconnection', async () => {
    const r = outgoingLog();
    const s = outgoingLog();
    const recipient = await RelayClient.connect(fixture.relay.address, { trace: r.trace });
    const sender = await RelayClient.connect(fixture.relay.address, { trace: s.trace });
    clients.push(recipient, sender);
    const inbox = new Inbox(recipient);
    const acks: Promise<void>[] = [];
    recipient.on('message', (queue, m) => acks.push(recipient.ack(queue, m.msgId)));
    const q = await recipient.createQueue();
    const keys = generateSigningKeyPair();
    await recipient.secureQueue(q, keys.publicKey);
    await recipient.subscribe(q, { window: 8 });
    const sq: SenderQueue = { relay: q.relay, senderId: q.senderId, senderKey: keys.privateKey };
    for (let i = 0; i < 4; i++) await sender.send(sq, text(`m${i}`));
    // Pipelined: a burst waits for no registration, and none of it fails.
    await Promise.all(Array.from({ length: 10 }, (_, i) => sender.send(sq, text(`burst ${i}`))));
    await inbox.waitForCount(14);
    await Promise.all(acks);
    assert.deepEqual(s.log, [['SEND', 96], ...Array.from({ length: 13 }, (): [string, number] => ['SEND', 32])]);
    assert.deepEqual(r.log, [['NEW', 64], ['KEY', 96], ['SUB', 32], ...Array.from({ length: 14 }, (): [string, number] => ['ACK', 32])]);

    // A fresh session pipelines a burst behind its registration: the rest of that burst is signed.
    s.log.length = 0;
    const socket = (sender as unknown as { transport: { socket: TLSSocket } }).transport.socket;
    const back = new Promise<void>((resolve) => sender.once('reconnected', resolve));
    socket.destroy();
    await back;
    await Promise.all(Array.from({ length: 5 }, (_, i) => sender.send(sq, text(`after ${i}`))));
    await sender.send(sq, text('last'));
    assert.deepEqual(s.log, [['SEND', 96], ['SEND', 64], ['SEND', 64], ['SEND', 64], ['SEND', 64], ['SEND', 32]]);
    await inbox.waitForCount(20);
  });

  test('a client on a version 4 relay signs every command, as before', async () => {
    const old = await startVersion2Relay('127.0.0.1', PUSH_WINDOW_VERSION);
    const o = outgoingLog();
    const c = await RelayClient.connect(old.address, { trace: o.trace });
    try {
      const { q } = await queue();
      const onOld: RecipientQueue = { ...q, relay: old.address };
      for (let i = 0; i < 3; i++) await c.subscribe(onOld);
      await assert.rejects(c.get(onOld), (e: unknown) => e instanceof RelayError && e.code === 'INTERNAL');
      assert.deepEqual(o.log, [['SUB', 64], ['SUB', 64], ['SUB', 64], ['GET', 64]]);
    } finally {
      await c.close();
      await old.close();
    }
  });
});
