/**
 * Private routing through in-process relays over real TLS on distinct
 * loopback addresses: delivery, the destination's refusals, replay and
 * tampering, what may be forwarded, limits, and the client's own checks.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { RelayClient } from '../../src/client/relay-client.js';
import { ConnectionError, RelayError } from '../../src/client/errors.js';
import { ForwardRoutes, openRoute, verifiedSession, type FirstHop } from '../../src/client/forwarding.js';
import { dh, generateDhKeyPair } from '../../src/crypto/keys.js';
import { randomBytes } from '../../src/crypto/random.js';
import { formatAddress, type RelayAddress } from '../../src/protocol/address.js';
import { encodeCommand, encodeResponse, type Command, type Response } from '../../src/protocol/commands.js';
import { deriveForwardKeys, openRequest, sealRequest, sealResponse } from '../../src/protocol/forward-crypto.js';
import { encodeTransmission, encodeTransmissionBody, decodeTransmission } from '../../src/protocol/transmission.js';
import { generateIdentity } from '../../src/relay/certificate.js';
import { resolveConfig } from '../../src/relay/config.js';
import { Dispatcher, type ClientSession } from '../../src/relay/dispatcher.js';
import { PeerPool } from '../../src/relay/peer-pool.js';
import { certifyRoutingKey } from '../../src/relay/routing-key.js';
import { createRelayLogger } from '../../src/relay/log.js';
import { SqliteQueueStore } from '../../src/relay/sqlite-store.js';
import { startRelay, type RunningRelay, type StartOptions } from '../../src/relay/server.js';
import { Inbox, str, text } from '../helpers/inbox.js';
import { tempDir } from '../helpers/relay-process.js';
import { RawSession, rfwdOf, sealedFor, securedQueue, sendRequest } from './routing-fixture.js';

const relayError = (code: string, command?: string, relay?: string) => (e: unknown) =>
  e instanceof RelayError && e.code === code && (command === undefined || e.command === command) && (relay === undefined || e.relay === relay);
const start = (host: string, options: Partial<StartOptions> = {}): Promise<RunningRelay> =>
  startRelay({ dataDir: tempDir(), host, port: 0, logLevel: 'silent', powBits: 0, ...options });

describe('private routing between in-process relays', () => {
  let a: RunningRelay;
  let b: RunningRelay;
  let d: RunningRelay;
  let recipient: RelayClient;
  let sender: RelayClient;
  const closers: Array<() => Promise<void> | void> = [];

  before(async () => {
    [a, b, d] = await Promise.all([start('127.0.0.2'), start('127.0.0.3'), start('127.0.0.4', { queueQuota: 3 })]);
    recipient = await RelayClient.connect(d.address);
    sender = await RelayClient.connect(a.address, { localAddress: '127.0.0.5' });
  });
  after(async () => {
    for (const c of closers) await c();
    await sender.close();
    await recipient.close();
    await Promise.all([a.close(), b.close(), d.close()]);
  });

  test('private and onion routing deliver every message once, reusing their sessions', async () => {
    const inbox = new Inbox(recipient);
    recipient.on('message', (q, m) => void recipient.ack(q, m.msgId));
    const { queue, sender: sq } = await securedQueue(recipient);
    await recipient.subscribe(queue);
    const sent: string[] = [];
    for (let i = 0; i < 4; i++) {
      sent.push(`private ${i}`);
      await sender.sendVia([a.address], sq, text(`private ${i}`));
      sent.push(`onion ${i}`);
      await sender.sendVia([a.address, b.address], sq, text(`onion ${i}`));
    }
    const got = await inbox.waitForCount(sent.length);
    assert.deepEqual(got.map((m) => str(m.message.body)), sent);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(inbox.all.length, sent.length, 'nothing twice');
    assert.equal(a.forwardSessionCount(), 2, 'A holds one session to D and one to B');
    assert.equal(b.forwardSessionCount(), 1, 'B holds one session to D');
    assert.equal(d.forwardSessionCount(), 0);
    await sender.pingVia([a.address, b.address], d.address);
    assert.equal(b.forwardSessionCount(), 1, 'reused');
  });

  test('the destination\'s refusals reach the sender as RelayError of the destination', async () => {
    const { queue, sender: sq } = await securedQueue(recipient);
    const unsigned = { relay: sq.relay, senderId: sq.senderId };
    await assert.rejects(sender.sendVia([a.address], unsigned, text('x')), relayError('AUTH', 'SEND', formatAddress(d.address)));
    await assert.rejects(sender.sendVia([a.address, b.address], unsigned, text('x')), relayError('AUTH', 'SEND', formatAddress(d.address)));
    for (let i = 0; i < 3; i++) await sender.sendVia([a.address], sq, text(`fill ${i}`));
    await assert.rejects(sender.sendVia([a.address, b.address], sq, text('over')), relayError('QUOTA', 'SEND', formatAddress(d.address)));
    await recipient.deleteQueue(queue);
  });

  test('a wrong destination fingerprint is refused before anything is sealed', async () => {
    const { sender: sq } = await securedQueue(recipient);
    const forged: RelayAddress = { ...d.address, fingerprint: randomBytes(32) };
    // The forwarding relay pins too: it cannot reach a relay with that fingerprint.
    await assert.rejects(sender.sendVia([a.address], { ...sq, relay: forged }, text('x')), relayError('PROXY', 'PRXY', formatAddress(a.address)));
    await assert.rejects(sender.sendVia([a.address, b.address], { ...sq, relay: forged }, text('x')), relayError('PROXY', 'PRXY', formatAddress(b.address)));
    // A lying forwarding relay is caught by the sender itself: a PKEY with another relay's certificate or key.
    const other = await generateIdentity();
    const cert = new Uint8Array(new X509Certificate(other.certPem).raw);
    const routingKey = generateDhKeyPair().publicKey;
    const pkey = (destCert: Uint8Array, routingKeySig: Uint8Array): Response => ({ type: 'PKEY', sessionId: randomBytes(24), destCert, routingKey, routingKeySig });
    assert.throws(
      () => verifiedSession(a.address, d.address, pkey(cert, certifyRoutingKey(other.keyPem, routingKey))),
      (e: unknown) => e instanceof ConnectionError && e.reason === 'FINGERPRINT' && !e.retryable,
    );
    const own = await generateIdentity();
    const ownAddress = { ...d.address, fingerprint: own.fingerprint };
    const ownCert = new Uint8Array(new X509Certificate(own.certPem).raw);
    assert.throws(() => verifiedSession(a.address, ownAddress, pkey(ownCert, certifyRoutingKey(other.keyPem, routingKey))), (e: unknown) => e instanceof ConnectionError && e.reason === 'FINGERPRINT');
    assert.equal(verifiedSession(a.address, ownAddress, pkey(ownCert, certifyRoutingKey(own.keyPem, routingKey))).target, ownAddress);
  });

  test('RFWD: a replay, a stale or future timestamp and a changed byte are AUTH in the clear; the message arrives once', async () => {
    const c = await RelayClient.connect(d.address);
    closers.push(() => c.close());
    const inbox = new Inbox(c);
    c.on('message', (q, m) => void c.ack(q, m.msgId));
    const { queue, sender: sq } = await securedQueue(c);
    await c.subscribe(queue);
    const forwarder = await RawSession.open(d.address);
    closers.push(() => forwarder.close());
    const route = sealedFor(forwarder.transport, d.address, sendRequest(sq, text('once')));
    const [first] = await forwarder.send(rfwdOf(route));
    assert.equal(first?.type, 'RRES');
    assert.deepEqual(openRoute(route, (first as Extract<Response, { type: 'RRES' }>).sealed), { type: 'OK' });
    const [replay] = await forwarder.send(rfwdOf(route));
    assert.deepEqual(replay, { type: 'ERR', code: 'AUTH' }, 'a replay is refused, and not sealed under the used response key');
    const now = Math.floor(Date.now() / 1000);
    const stale = sealedFor(forwarder.transport, d.address, sendRequest(sq, text('stale')), now - 301);
    const future = sealedFor(forwarder.transport, d.address, sendRequest(sq, text('future')), now + 120);
    const changed = sealedFor(forwarder.transport, d.address, sendRequest(sq, text('changed')));
    const bad = changed.command.sealed.slice();
    bad[77]! ^= 0x40;
    const lowOrder = new Uint8Array(32); // an all-zero X25519 point
    const answers = await forwarder.send(
      rfwdOf(stale),
      rfwdOf(future),
      { type: 'RFWD', ephemeralKey: changed.command.ephemeralKey, sealed: bad },
      { type: 'RFWD', ephemeralKey: lowOrder, sealed: changed.command.sealed },
      { type: 'RFWD', ephemeralKey: changed.command.ephemeralKey, sealed: changed.command.sealed.subarray(1) },
    );
    assert.deepEqual(answers, [
      { type: 'ERR', code: 'AUTH' },
      { type: 'ERR', code: 'AUTH' },
      { type: 'ERR', code: 'AUTH' },
      { type: 'ERR', code: 'AUTH' },
      { type: 'ERR', code: 'CMD_SYNTAX' },
    ]);
    // The untouched request still works once: its key was never used.
    const [late] = await forwarder.send(rfwdOf(changed));
    assert.equal(late?.type, 'RRES');
    await inbox.waitForCount(2);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(inbox.all.map((m) => str(m.message.body)), ['once', 'changed'], 'the replayed, stale, future and changed requests stored nothing');
  });

  test('only SEND, LGET, PING, PRXY and PFWD may be forwarded; a relay layer must hold a PFWD', async () => {
    const forwarder = await RawSession.open(d.address);
    closers.push(() => forwarder.close());
    const inner = (command: Command) => ({ corrId: randomBytes(4), entityId: new Uint8Array(0), command });
    const answerOf = async (route: ReturnType<typeof sealedFor>): Promise<unknown> => {
      const [r] = await forwarder.send(rfwdOf(route));
      assert.equal(r?.type, 'RRES');
      try {
        return openRoute(route, (r as Extract<Response, { type: 'RRES' }>).sealed);
      } catch (e) {
        return e instanceof RelayError ? e.code : e;
      }
    };
    const queueCommand = (command: Command) => ({ corrId: randomBytes(4), entityId: randomBytes(24), command, signingKey: randomBytes(32) });
    const lset: Command = { type: 'LSET', linkId: randomBytes(24), linkData: Uint8Array.of(1) };
    for (const command of [{ type: 'SUB' }, { type: 'GET' }, { type: 'DEL' }, { type: 'OFF' }, { type: 'ACK', msgId: randomBytes(24) }, lset] as Command[]) {
      assert.equal(await answerOf(sealedFor(forwarder.transport, d.address, queueCommand(command))), 'CMD_PROHIBITED', command.type);
    }
    const newQueue: Command = { type: 'NEW', recipientAuthKey: randomBytes(32), recipientDhKey: randomBytes(32), basicAuth: new Uint8Array(0), queueMode: 'messaging', powNonce: new Uint8Array(0) };
    assert.equal(await answerOf(sealedFor(forwarder.transport, d.address, inner(newQueue))), 'CMD_PROHIBITED');
    assert.equal(await answerOf(sealedFor(forwarder.transport, d.address, inner({ type: 'RFWD', ephemeralKey: randomBytes(32), sealed: new Uint8Array(0) }))), 'CMD_PROHIBITED');
    assert.deepEqual(await answerOf(sealedFor(forwarder.transport, d.address, inner({ type: 'PING' }))), { type: 'PONG' });
    const lget = { corrId: randomBytes(4), entityId: randomBytes(24), command: { type: 'LGET' } as Command };
    assert.equal(await answerOf(sealedFor(forwarder.transport, d.address, lget)), 'AUTH', 'LGET is executed: an unknown link ID');
    // A PFWD in an exit layer is malformed (CMD_SYNTAX); so is a PING in a relay layer.
    assert.equal(await answerOf(sealedFor(forwarder.transport, d.address, inner({ type: 'PFWD', sessionId: randomBytes(24), ephemeralKey: randomBytes(32), sealed: new Uint8Array(0) }))), 'CMD_SYNTAX');
    const eph = generateDhKeyPair();
    const keys = deriveForwardKeys(dh(eph.privateKey, forwarder.transport.routingKey), eph.publicKey, forwarder.transport.routingKey);
    const ping = encodeTransmission(new Uint8Array(0), encodeTransmissionBody(Uint8Array.of(7), new Uint8Array(0), Buffer.from('PING')));
    const [r] = await forwarder.send({ type: 'RFWD', ephemeralKey: eph.publicKey, sealed: sealRequest(keys, 'relay', Math.floor(Date.now() / 1000), ping) });
    assert.equal(r?.type, 'RRES');
  });

  test('forwarding sessions are bounded per connection and per relay (BUSY with a retry hint) and end with their connection', async () => {
    const small = await start('127.0.0.6', { maxForwardSessionsPerConnection: 2, maxForwardSessions: 3 });
    const first = await RawSession.open(small.address);
    const second = await RawSession.open(small.address);
    const prxy: Command = { type: 'PRXY', destRelay: formatAddress(d.address), basicAuth: new Uint8Array(0) };
    const types = (rs: Response[]) => rs.map((r) => (r.type === 'ERR' ? `${r.code}${r.retryAfterMs === undefined ? '' : `/${r.retryAfterMs}`}` : r.type));
    assert.deepEqual(types(await first.send(prxy, prxy, prxy)), ['PKEY', 'PKEY', 'BUSY/1000']);
    assert.deepEqual(types(await second.send(prxy, prxy)), ['PKEY', 'BUSY/1000'], 'the relay-wide limit');
    assert.equal(small.forwardSessionCount(), 3);
    first.close();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(small.forwardSessionCount(), 1, 'the closed connection\'s sessions are gone');
    assert.deepEqual(types(await second.send(prxy)), ['PKEY']);
    second.close();
    await small.close();
  });

  test('PRXY and PFWD refusals: unreachable, private, malformed, wrong password, unknown session, odd size', async () => {
    const closedPort = await start('127.0.0.7');
    const gone = closedPort.address;
    await closedPort.close();
    const strict = await start('127.0.0.8', { forwardToPrivateAddresses: false, password: 'secret' });
    const raw = await RawSession.open(a.address);
    const rawStrict = await RawSession.open(strict.address);
    const prxy = (dest: RelayAddress | string, basicAuth = ''): Command => ({
      type: 'PRXY',
      destRelay: typeof dest === 'string' ? dest : formatAddress(dest),
      basicAuth: Buffer.from(basicAuth),
    });
    const codes = (rs: Response[]) => rs.map((r) => (r.type === 'ERR' ? r.code : r.type));
    assert.deepEqual(codes(await raw.send(prxy(gone), prxy('not an address'), prxy(d.address))), ['PROXY', 'CMD_SYNTAX', 'PKEY']);
    assert.deepEqual(codes(await rawStrict.send(prxy(d.address), prxy(d.address, 'secret'))), ['AUTH', 'PROXY'], 'a password, then private addresses refused');
    const sealed = new Uint8Array(15_632);
    assert.deepEqual(
      codes(
        await raw.send(
          { type: 'PFWD', sessionId: randomBytes(24), ephemeralKey: randomBytes(32), sealed },
          { type: 'PFWD', sessionId: randomBytes(24), ephemeralKey: randomBytes(32), sealed: sealed.subarray(1) },
        ),
      ),
      ['PROXY', 'PROXY'],
    );
    const [pkey] = await raw.send(prxy(d.address));
    assert.equal(pkey?.type, 'PKEY');
    const sessionId = (pkey as Extract<Response, { type: 'PKEY' }>).sessionId;
    assert.deepEqual(codes(await raw.send({ type: 'PFWD', sessionId, ephemeralKey: randomBytes(32), sealed: sealed.subarray(1) })), ['CMD_SYNTAX']);
    assert.deepEqual(codes(await raw.send({ type: 'PFWD', sessionId, ephemeralKey: generateDhKeyPair().publicKey, sealed })), ['AUTH'], 'D cannot open it');
    raw.close();
    rawStrict.close();
    await strict.close();
  });
});

test('a connection that negotiated version 1 does not know the forwarding commands', async () => {
  const store = new SqliteQueueStore(':memory:');
  const config = resolveConfig({ dataDir: '/unused' });
  const identity = await generateIdentity();
  const routing = generateDhKeyPair();
  const pool = new PeerPool({ timeoutMs: 1000, allowPrivate: true, idleMs: 1000, log: createRelayLogger('silent') });
  const routingKey = { ...routing, signature: certifyRoutingKey(identity.keyPem, routing.publicKey) };
  const dispatcher = new Dispatcher(store, config, { routingKey, pool });
  const t = (command: Command) =>
    decodeTransmission(encodeTransmission(new Uint8Array(0), encodeTransmissionBody(Uint8Array.of(1), new Uint8Array(0), encodeCommand(command))));
  const v1: ClientSession = { binding: randomBytes(32), push: () => undefined, version: 1 };
  const v2: ClientSession = { binding: randomBytes(32), push: () => undefined, version: 2 };
  const prxy: Command = { type: 'PRXY', destRelay: 'nonsense', basicAuth: new Uint8Array(0) };
  assert.deepEqual(await dispatcher.handle(v1, t(prxy)), { type: 'ERR', code: 'CMD_UNKNOWN' });
  assert.deepEqual(await dispatcher.handle(v2, t(prxy)), { type: 'ERR', code: 'CMD_SYNTAX' });
  const plain = new Dispatcher(store, config);
  assert.deepEqual(await plain.handle(v2, t(prxy)), { type: 'ERR', code: 'CMD_UNKNOWN' }, 'a dispatcher without forwarding');
  dispatcher.forwarder?.close();
  await store.close();
});

test('the client opens a forgotten session again once, and only once', async () => {
  // A fake first hop that plays both the forwarding relay and the destination.
  const identity = await generateIdentity();
  const cert = new Uint8Array(new X509Certificate(identity.certPem).raw);
  const routing = generateDhKeyPair();
  const dest: RelayAddress = { fingerprint: identity.fingerprint, host: 'dest.example', port: 5225 };
  const hop: RelayAddress = { fingerprint: randomBytes(32), host: 'hop.example', port: 5225 };
  let forget = 1;
  let prxys = 0;
  const first: FirstHop = {
    address: hop,
    async request(command) {
      if (command.type === 'PRXY') {
        prxys++;
        return { type: 'PKEY', sessionId: randomBytes(24), destCert: cert, routingKey: routing.publicKey, routingKeySig: certifyRoutingKey(identity.keyPem, routing.publicKey) };
      }
      if (command.type !== 'PFWD') throw new Error(`unexpected ${command.type}`);
      if (forget-- > 0) throw new RelayError('PROXY', 'PFWD', formatAddress(hop));
      const keys = deriveForwardKeys(dh(routing.privateKey, command.ephemeralKey), command.ephemeralKey, routing.publicKey);
      const inner = decodeTransmission(openRequest(keys, command.sealed).transmission);
      const answer = encodeTransmission(new Uint8Array(0), encodeTransmissionBody(inner.corrId, inner.entityId, encodeResponse({ type: 'OK' })));
      return { type: 'PRES', sealed: sealResponse(keys, 'exit', answer) };
    },
  };
  const routes = new ForwardRoutes(first);
  const send = { corrId: randomBytes(4), entityId: randomBytes(24), command: { type: 'SEND' as const, flags: 0, body: text('hi') } };
  assert.deepEqual(await routes.request([hop], dest, send), { type: 'OK' });
  assert.equal(prxys, 2, 'the forgotten session was opened again');
  assert.deepEqual(await routes.request([hop], dest, send), { type: 'OK' });
  assert.equal(prxys, 2, 'and then reused');
  forget = 2;
  await assert.rejects(routes.request([hop], dest, send), relayError('PROXY', 'PFWD'));
  assert.equal(prxys, 3, 'one more attempt, not a loop');
  await assert.rejects(routes.request([dest], dest, send), RangeError, 'the route must start at the first hop');
  // A response that does not open is a ConnectionError, not a hang or a crash.
  const garbled = new ForwardRoutes({ ...first, request: async (c) => (c.type === 'PRXY' ? first.request(c) : { type: 'PRES', sealed: randomBytes(2576) }) });
  await assert.rejects(garbled.request([hop], dest, send), (e: unknown) => e instanceof ConnectionError && e.reason === 'CLOSED');
});
