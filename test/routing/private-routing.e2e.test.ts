/**
 * Private and onion routing with real relay processes on distinct loopback
 * addresses and a sender bound to its own address: the destination never
 * has a connection from the sender, the forwarding relays' traffic and
 * disks never hold the queue IDs or the plaintext, and every message
 * arrives exactly once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RelayClient } from '../../src/client/relay-client.js';
import { RelayError } from '../../src/client/errors.js';
import type { RecipientQueue, SenderQueue } from '../../src/client/queues.js';
import { randomBytes } from '../../src/crypto/random.js';
import { formatAddress, parseAddress, type RelayAddress } from '../../src/protocol/address.js';
import type { Command, Response } from '../../src/protocol/commands.js';
import { openRoute } from '../../src/client/forwarding.js';
import { Inbox } from '../helpers/inbox.js';
import { startRelayProcess, tempDir, type RelayProcess } from '../helpers/relay-process.js';
import { RawSession, rfwdOf, sealedFor, securedQueue, sendRequest } from './routing-fixture.js';

const SENDER_IP = '127.0.0.5';
const run = promisify(execFile);

/** Peer IP addresses of the established TCP connections whose local port is `port` (`ss`, else /proc/net/tcp). */
async function peersOf(port: number): Promise<string[]> {
  try {
    const { stdout } = await run('ss', ['-tnH', 'state', 'established', `( sport = :${port} )`]);
    return stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => line.trim().split(/\s+/).at(-1)!.replace(/:\d+$/, '').replace(/^\[|\]$/g, '').replace(/^::ffff:/, ''));
  } catch {
    // /proc/net/tcp: "sl local_address rem_address st ...", addresses as little-endian hex "0100007F:1F90"; st 01 = established.
    const ip = (h: string): string => [6, 4, 2, 0].map((i) => parseInt(h.slice(i, i + 2), 16)).join('.');
    return readFileSync('/proc/net/tcp', 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f[3] === '01' && parseInt(f[1]!.split(':')[1]!, 16) === port)
      .map((f) => ip(f[2]!.split(':')[0]!));
  }
}

/** Everything in a relay's data directory, concatenated (database, WAL, keys). */
function diskOf(dir: string): Buffer {
  return Buffer.concat(readdirSync(dir).filter((f) => statSync(join(dir, f)).isFile()).map((f) => readFileSync(join(dir, f))));
}

function encodings(id: Uint8Array): Buffer[] {
  const b = Buffer.from(id);
  return [b, Buffer.from(b.toString('hex')), Buffer.from(b.toString('base64')), Buffer.from(b.toString('base64url'))];
}

describe('private and onion routing between relay processes', () => {
  let a: RelayProcess;
  let b: RelayProcess;
  let d: RelayProcess;
  const traces = { a: join(tempDir(), 'a.trace'), b: join(tempDir(), 'b.trace'), d: join(tempDir(), 'd.trace') };
  let recipient: RelayClient;
  let sender: RelayClient;
  let queue: RecipientQueue;
  let sq: SenderQueue;
  let inbox: Inbox;
  const bodies: Uint8Array[] = [];
  const addr = (p: RelayProcess): RelayAddress => parseAddress(p.address);
  const relayArgs = (host: string, trace: string): string[] => ['--host', host, '--outgoing-address', host, '--pow-bits', '0', '--debug-trace-file', trace];

  before(async () => {
    [a, b, d] = await Promise.all([
      startRelayProcess({ args: relayArgs('127.0.0.2', traces.a) }),
      startRelayProcess({ args: relayArgs('127.0.0.3', traces.b) }),
      startRelayProcess({ args: relayArgs('127.0.0.4', traces.d) }),
    ]);
    assert.equal(addr(a).host, '127.0.0.2');
    recipient = await RelayClient.connect(d.address);
    inbox = new Inbox(recipient);
    recipient.on('message', (q, m) => void recipient.ack(q, m.msgId));
    ({ queue, sender: sq } = await securedQueue(recipient));
    await recipient.subscribe(queue);
    sender = await RelayClient.connect(a.address, { localAddress: SENDER_IP });
  });
  after(async () => {
    await sender?.close();
    await recipient?.close();
    await Promise.all([a, b, d].map((p) => p?.stop()));
  });

  test('while messages flow privately and by onion, the destination never sees the sender\'s address', async () => {
    const seenByD = new Set<string>();
    const seenByA = new Set<string>();
    let samples = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        for (const ip of await peersOf(addr(d).port)) seenByD.add(ip);
        for (const ip of await peersOf(addr(a).port)) seenByA.add(ip);
        samples++;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    for (let i = 0; i < 12; i++) {
      const body = randomBytes(64 + i * 1200);
      bodies.push(body);
      await sender.sendVia(i % 2 === 0 ? [addr(a)] : [addr(a), addr(b)], sq, body, i);
    }
    const largest = randomBytes(15_360);
    bodies.push(largest);
    await sender.sendVia([addr(a), addr(b)], sq, largest);
    await inbox.waitForCount(bodies.length);
    sampling = false;
    await sampler;
    assert.ok(samples >= 3, `the connection table was sampled while sending (${samples} times)`);
    assert.ok(seenByA.has(SENDER_IP), `the sender is bound to ${SENDER_IP} and reaches A (A saw ${[...seenByA]})`);
    assert.ok(!seenByD.has(SENDER_IP), `D's connections: ${[...seenByD]}`);
    assert.ok(seenByD.has('127.0.0.2') && seenByD.has('127.0.0.3'), `D sees the forwarding relays A and B: ${[...seenByD]}`);

    // Exactly once, in order, with their flags.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(inbox.all.length, bodies.length);
    assert.deepEqual(inbox.all.map((m) => Buffer.from(m.message.body).toString('hex')), bodies.map((x) => Buffer.from(x).toString('hex')));
    assert.deepEqual(inbox.all.slice(0, 12).map((m) => m.message.flags), Array.from({ length: 12 }, (_, i) => i));
  });

  test('a wrong destination fingerprint is refused, and a replayed RFWD is rejected', async () => {
    const forged = { ...sq, relay: { ...sq.relay, fingerprint: randomBytes(32) } };
    await assert.rejects(sender.sendVia([addr(a)], forged, randomBytes(10)), (e: unknown) => e instanceof RelayError && e.code === 'PROXY');
    // The test plays a forwarding relay that keeps what it forwarded and sends it again.
    const before = inbox.all.length;
    const forwarder = await RawSession.open(addr(d));
    const route = sealedFor(forwarder.transport, addr(d), sendRequest(sq, Buffer.from('replayed once')));
    const [first] = await forwarder.send(rfwdOf(route));
    assert.deepEqual(first?.type === 'RRES' ? openRoute(route, first.sealed) : first, { type: 'OK' });
    assert.deepEqual(await forwarder.send(rfwdOf(route), rfwdOf(route)), [
      { type: 'ERR', code: 'AUTH' },
      { type: 'ERR', code: 'AUTH' },
    ]);
    forwarder.close();
    await inbox.waitForCount(before + 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(inbox.all.length, before + 1, 'delivered once');
    assert.equal(Buffer.from(inbox.all.at(-1)!.message.body).toString(), 'replayed once');
  });

  /** A PRXY to `dest` sealed to `relay` and handed to it in an RFWD on `raw`: what it answers, opened. */
  async function prxyInRfwd(raw: RawSession, relay: RelayAddress, dest: RelayAddress): Promise<Response | string> {
    const prxy: Command = { type: 'PRXY', destRelay: formatAddress(dest), basicAuth: new Uint8Array(0) };
    const route = sealedFor(raw.transport, relay, { corrId: randomBytes(4), entityId: new Uint8Array(0), command: prxy });
    const [r] = await raw.send(rfwdOf(route));
    if (r?.type !== 'RRES') return r?.type === 'ERR' ? r.code : String(r?.type);
    try {
      return openRoute(route, r.sealed);
    } catch (e) {
      if (e instanceof RelayError) return `${e.code}${e.retryAfterMs === undefined ? '' : `/${e.retryAfterMs}`}`;
      throw e;
    }
  }

  test('PRXYs wrapped in RFWD count against the connection that carries them; its PRXYs to one destination share a session', async () => {
    const small = await startRelayProcess({
      args: [...relayArgs('127.0.0.6', join(tempDir(), 'small.trace')), '--max-forward-sessions-per-connection', '2', '--max-forward-sessions', '50'],
    });
    const raw = await RawSession.open(addr(small));
    const other = await RawSession.open(addr(small));
    try {
      const first = await prxyInRfwd(raw, addr(small), addr(a));
      assert.equal((first as Response).type, 'PKEY', String(first));
      const again = await prxyInRfwd(raw, addr(small), addr(a));
      assert.equal((again as Response).type, 'PKEY', String(again));
      const id = (r: Response | string): string => Buffer.from((r as Extract<Response, { type: 'PKEY' }>).sessionId).toString('hex');
      assert.equal(id(again), id(first), 'the same destination, on the same connection: one shared session');
      assert.equal((await prxyInRfwd(raw, addr(small), addr(b)) as Response).type, 'PKEY');
      assert.equal(await prxyInRfwd(raw, addr(small), addr(d)), 'BUSY/1000', 'a third destination is over this connection\'s share');
      const direct: Command = { type: 'PRXY', destRelay: formatAddress(addr(d)), basicAuth: new Uint8Array(0) };
      assert.deepEqual(await raw.send(direct), [{ type: 'ERR', code: 'BUSY', retryAfterMs: 1000 }], 'direct and wrapped PRXYs share one count');
      assert.equal((await other.send(direct))[0]?.type, 'PKEY', 'another connection has a share of its own');
    } finally {
      raw.close();
      other.close();
      await small.stop();
    }
  });

  test('one client flooding RFWD fills only its own share of the replay cache: forwarding stays open to everyone else', async () => {
    // A destination with a small cache: 300 entries, 100 per source.
    const dd = await startRelayProcess({
      args: [...relayArgs('127.0.0.7', join(tempDir(), 'dd.trace')), '--max-replay-entries', '300', '--max-replay-entries-per-source', '100'],
    });
    const owner = await RelayClient.connect(dd.address);
    const flooder = await RawSession.open(addr(dd), { localAddress: '127.0.0.66' });
    try {
      const { queue: q2, sender: sq2 } = await securedQueue(owner);
      // 400 valid, fresh requests from one client, more than the whole cache holds.
      const floods = Array.from({ length: 400 }, () => rfwdOf(sealedFor(flooder.transport, addr(dd), { corrId: randomBytes(4), entityId: new Uint8Array(0), command: { type: 'PING' } })));
      const answers = await flooder.send(...floods);
      // Everyone else's requests, through A, still reach the destination.
      await sender.pingVia([addr(a)], addr(dd));
      await sender.sendVia([addr(a)], sq2, Buffer.from('through the flood'));
      assert.equal(Buffer.from((await owner.get(q2))!.body).toString(), 'through the flood');
      const kinds = answers.map((r) => (r.type === 'ERR' ? `${r.code}/${r.retryAfterMs}` : r.type));
      assert.equal(kinds.filter((k) => k === 'RRES').length, 100, 'the flooder got its share');
      assert.equal(kinds.filter((k) => k === 'BUSY/1000').length, 300, 'and BUSY beyond it');
      // And the flooder stays refused, on a new connection too: its share is its address's.
      const again = await RawSession.open(addr(dd), { localAddress: '127.0.0.66' });
      const [late] = await again.send(rfwdOf(sealedFor(again.transport, addr(dd), { corrId: randomBytes(4), entityId: new Uint8Array(0), command: { type: 'PING' } })));
      assert.deepEqual(late, { type: 'ERR', code: 'BUSY', retryAfterMs: 1000 });
      again.close();
    } finally {
      flooder.close();
      await owner.close();
      await dd.stop();
    }
  });

  test('the forwarding relays\' traffic, disks and logs hold neither the queue IDs nor the plaintext', async () => {
    await sender.close();
    await recipient.close();
    await Promise.all([a.stop(), b.stop(), d.stop()]);
    const trace = { a: readFileSync(traces.a), b: readFileSync(traces.b), d: readFileSync(traces.d) };
    // The captures work: A saw the client's PRXY naming D and forwarded RFWDs; D saw the recipient's queue.
    assert.ok(trace.a.includes(Buffer.from(formatAddress(addr(d)))), 'A\'s capture holds the PRXY to D');
    assert.ok(trace.a.includes(Buffer.from('PFWD ')) && trace.a.includes(Buffer.from('RFWD ')), 'A\'s capture covers both of its sides');
    assert.ok(trace.b.includes(Buffer.from('RFWD ')), 'B\'s capture works');
    assert.ok(trace.d.includes(Buffer.from(queue.recipientId)), 'D\'s capture works');
    assert.ok(trace.a.length >= 16_385 * 20 && trace.b.length >= 16_385 * 10);
    for (const [name, relay] of [['A', a], ['B', b]] as const) {
      const haystacks = { traffic: name === 'A' ? trace.a : trace.b, disk: diskOf(relay.dataDir), log: Buffer.from(relay.stderr()) };
      for (const [what, hay] of Object.entries(haystacks)) {
        for (const id of [queue.senderId, queue.recipientId]) for (const e of encodings(id)) assert.ok(!hay.includes(e), `${name}'s ${what} holds a queue ID`);
        for (const [i, body] of bodies.entries()) {
          for (let at = 0; at + 16 <= body.length; at += 997) assert.ok(!hay.includes(Buffer.from(body.subarray(at, at + 16))), `${name}'s ${what} holds plaintext of message ${i}`);
        }
      }
      // At the default log level, no addresses at all: neither the sender's nor the destination's.
      const log = relay.stderr();
      assert.match(log, /relay started/);
      assert.doesNotMatch(log, /\b\d{1,3}(\.\d{1,3}){3}\b/, `${name}'s log holds an IP address`);
      assert.ok(!log.includes(formatAddress(addr(d)).split('@')[0]!.slice('nightjar://'.length)), `${name}'s log names D`);
    }
  });
});
