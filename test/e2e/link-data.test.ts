/**
 * Link data (protocol version 3) end to end: real relay processes and real
 * TLS clients. Set, fetch directly and through private routing, replace,
 * the refusals, the lifetime rules (KEY spends a one-time invitation, DEL
 * deletes, a contact address survives a restart), and both directions of
 * version 2 compatibility.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { RelayClient } from '../../src/client/relay-client.js';
import { ConnectionError, RelayError } from '../../src/client/errors.js';
import { openTransport, type RelayTransport } from '../../src/transport/session.js';
import { generateSigningKeyPair, sign } from '../../src/crypto/keys.js';
import { randomBytes } from '../../src/crypto/random.js';
import { formatAddress, parseAddress } from '../../src/protocol/address.js';
import { BlockReader } from '../../src/protocol/block-reader.js';
import { decodeBatch, encodeBatch, padBlock, unpadBlock } from '../../src/protocol/block.js';
import { decodeResponse, encodeCommand, MAX_LINK_DATA_LENGTH, type Command, type Response } from '../../src/protocol/commands.js';
import { decodeRelayHello, encodeClientHello } from '../../src/protocol/handshake.js';
import { decodeTransmission, encodeTransmission, encodeTransmissionBody, signedData } from '../../src/protocol/transmission.js';
import { CURRENT_VERSION } from '../../src/protocol/version.js';
import { startRelayProcess, tempDir, type RelayProcess } from '../helpers/relay-process.js';
import { startVersion2Relay } from '../helpers/version2-relay.js';

const relayError = (code: string, command?: string) => (e: unknown) => e instanceof RelayError && e.code === code && (command === undefined || e.command === command);
const versionError = (e: unknown) => e instanceof ConnectionError && e.reason === 'VERSION' && !e.retryable;
const linkId = (): Uint8Array => randomBytes(24);
/** Link data as an agent would store it: opaque, padded to one size. */
const linkData = (): Uint8Array => randomBytes(MAX_LINK_DATA_LENGTH);

/** Writes one transmission on a raw transport (signed over its binding when `key` is given) and reads the answer. */
function rawRequest(t: RelayTransport, entityId: Uint8Array, command: Uint8Array, key?: Uint8Array): Promise<Response> {
  const body = encodeTransmissionBody(Uint8Array.of(1), entityId, command);
  t.socket.write(encodeBatch([encodeTransmission(key ? sign(key, signedData(t.binding, body)) : new Uint8Array(0), body)]));
  return new Promise((resolve) => {
    const onData = (chunk: Buffer): void => {
      const blocks = t.reader.push(chunk);
      if (blocks.length === 0) return;
      t.socket.off('data', onData);
      resolve(decodeResponse(decodeTransmission(decodeBatch(blocks[0]!)[0]!).command));
    };
    t.socket.on('data', onData);
  });
}

describe('link data between relay processes', () => {
  let a: RelayProcess; // the fetcher's own relay, which forwards
  let d: RelayProcess; // the relay that holds the queue and its link
  const trace = join(tempDir(), 'a.trace');
  const clients: RelayClient[] = [];
  const connect = async (address: string): Promise<RelayClient> => {
    const c = await RelayClient.connect(address);
    clients.push(c);
    return c;
  };

  before(async () => {
    [a, d] = await Promise.all([startRelayProcess({ args: ['--debug-trace-file', trace] }), startRelayProcess()]);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all([a.stop(), d.stop()]);
  });

  test('set, fetch directly, replace; an unknown link ID is AUTH', async () => {
    const owner = await connect(d.address);
    const joiner = await connect(d.address);
    const queue = await owner.createQueue();
    const id = linkId();
    const first = linkData();
    await assert.rejects(joiner.getLinkData(id), relayError('AUTH', 'LGET'), 'nothing before LSET');
    await owner.setLinkData(queue, id, first);
    assert.deepEqual(await joiner.getLinkData(id), first);
    assert.deepEqual(await joiner.getLinkData(id), first, 'fetching takes nothing away');

    const second = linkData();
    await owner.setLinkData(queue, id, second);
    assert.deepEqual(await joiner.getLinkData(id), second, 'replaced');
    const moved = linkId();
    await owner.setLinkData(queue, moved, first);
    assert.deepEqual(await joiner.getLinkData(moved), first);
    await assert.rejects(joiner.getLinkData(id), relayError('AUTH', 'LGET'), 'a queue has one link: its old ID finds nothing');
    await assert.rejects(joiner.getLinkData(linkId()), relayError('AUTH', 'LGET'));
    await assert.rejects(joiner.getLinkData(queue.recipientId), relayError('AUTH', 'LGET'), 'a queue ID is no link ID');
    await assert.rejects(joiner.getLinkData(queue.senderId), relayError('AUTH', 'LGET'));
  });

  test('fetch through private routing: the forwarding relay never sees the link ID or the data', async () => {
    const owner = await connect(d.address);
    const joiner = await connect(a.address);
    const queue = await owner.createQueue({ mode: 'contact' });
    const id = linkId();
    const data = linkData();
    await owner.setLinkData(queue, id, data);
    const route = [parseAddress(a.address)];
    const dest = parseAddress(d.address);
    assert.deepEqual(await joiner.getLinkDataVia(route, dest, id), data);
    assert.deepEqual(await joiner.getLinkDataVia(route, dest, id), data, 'the forwarding session is reused');
    await assert.rejects(joiner.getLinkDataVia(route, dest, linkId()), (e: unknown) => relayError('AUTH', 'LGET')(e) && (e as RelayError).relay === d.address);
    // A's decrypted traffic holds the forwarded requests, but only sealed.
    await new Promise((r) => setTimeout(r, 200));
    const seen = readFileSync(trace);
    assert.ok(seen.includes(Buffer.from('PFWD ')) && seen.includes(Buffer.from(formatAddress(dest))), 'the capture works');
    assert.ok(!seen.includes(Buffer.from(id)), 'no link ID at the forwarding relay');
    assert.ok(!seen.includes(Buffer.from(data.subarray(0, 32))), 'no link data at the forwarding relay');
  });

  test('a one-time invitation is spent when its queue is secured; DEL deletes a contact address\'s link', async () => {
    const owner = await connect(d.address);
    const joiner = await connect(d.address);
    const invitation = await owner.createQueue();
    const id = linkId();
    const data = linkData();
    await owner.setLinkData(invitation, id, data);
    assert.deepEqual(await joiner.getLinkData(id), data);
    // The joiner's confirmation arrives; the inviter secures the queue with the joiner's key.
    const keys = generateSigningKeyPair();
    await joiner.send({ relay: invitation.relay, senderId: invitation.senderId }, keys.publicKey);
    assert.deepEqual(await joiner.getLinkData(id), data, 'the confirmation alone does not spend it');
    await owner.secureQueue(invitation, keys.publicKey);
    await assert.rejects(joiner.getLinkData(id), relayError('AUTH', 'LGET'), 'spent by KEY');
    await assert.rejects(owner.setLinkData(invitation, linkId(), data), relayError('AUTH', 'LSET'), 'a secured messaging queue takes no link');

    const address = await owner.createQueue({ mode: 'contact' });
    const addressId = linkId();
    await owner.setLinkData(address, addressId, data);
    await assert.rejects(owner.secureQueue(address, keys.publicKey), relayError('AUTH', 'KEY'));
    assert.deepEqual(await joiner.getLinkData(addressId), data, 'a refused KEY spends nothing');
    await owner.suspend(address);
    await assert.rejects(joiner.getLinkData(addressId), relayError('AUTH', 'LGET'), 'a suspended queue\'s link');
    await owner.deleteQueue(address);
    await assert.rejects(joiner.getLinkData(addressId), relayError('AUTH', 'LGET'), 'deleted with its queue');
  });

  test('refusals: a wrong key, another queue\'s link ID, oversized data, malformed input', async () => {
    const owner = await connect(d.address);
    const attacker = await connect(d.address);
    const queue = await owner.createQueue({ mode: 'contact' });
    const id = linkId();
    const data = linkData();
    await owner.setLinkData(queue, id, data);

    await assert.rejects(attacker.setLinkData({ ...queue, recipientKey: generateSigningKeyPair().privateKey }, linkId(), linkData()), relayError('AUTH', 'LSET'));
    const own = await attacker.createQueue({ mode: 'contact' });
    await assert.rejects(attacker.setLinkData(own, id, linkData()), relayError('AUTH', 'LSET'), 'the link ID is another queue\'s');
    assert.deepEqual(await attacker.getLinkData(id), data, 'unchanged');

    // The client refuses what the relay would refuse; the relay refuses it from any client.
    await assert.rejects(owner.setLinkData(queue, id, new Uint8Array(MAX_LINK_DATA_LENGTH + 1)), RangeError);
    await assert.rejects(owner.setLinkData(queue, id, new Uint8Array(0)), RangeError);
    await assert.rejects(owner.setLinkData(queue, new Uint8Array(23), data), RangeError);
    await assert.rejects(owner.getLinkData(new Uint8Array(32)), RangeError);
    const raw = await openTransport(parseAddress(d.address), 5000);
    try {
      const over = encodeCommand({ type: 'LSET', linkId: id, linkData: new Uint8Array(MAX_LINK_DATA_LENGTH + 1).fill(9) });
      assert.deepEqual(await rawRequest(raw, queue.recipientId, over, queue.recipientKey), { type: 'ERR', code: 'LARGE_MSG' });
      assert.deepEqual(await rawRequest(raw, queue.recipientId, over, generateSigningKeyPair().privateKey), { type: 'ERR', code: 'AUTH' }, 'the size is told only to the queue\'s owner');
      const empty = Uint8Array.from([...Buffer.from('LSET '), 24, ...id]);
      assert.deepEqual(await rawRequest(raw, queue.recipientId, empty, queue.recipientKey), { type: 'ERR', code: 'CMD_SYNTAX' });
      const lget = encodeCommand({ type: 'LGET' });
      assert.deepEqual(await rawRequest(raw, id, lget, generateSigningKeyPair().privateKey), { type: 'ERR', code: 'CMD_HAS_AUTH' });
      assert.deepEqual(await rawRequest(raw, new Uint8Array(0), lget), { type: 'ERR', code: 'CMD_NO_ENTITY' });
    } finally {
      raw.socket.destroy();
    }
    assert.deepEqual(await attacker.getLinkData(id), data, 'nothing refused changed the link');
  });
});

test('a contact address keeps its link data across a relay restart, until DEL', async () => {
  const relay = await startRelayProcess();
  let restarted: RelayProcess | undefined;
  const c = await RelayClient.connect(relay.address, { reconnect: false });
  try {
    const address = await c.createQueue({ mode: 'contact' });
    const id = linkId();
    const data = linkData();
    await c.setLinkData(address, id, data);
    // Contact requests come and go; the link stays.
    for (let i = 0; i < 3; i++) await c.send({ relay: address.relay, senderId: address.senderId }, Buffer.from(`request ${i}`));
    await c.close();
    await relay.stop('SIGKILL'); // OK was sent after the commit: nothing depends on a clean shutdown
    restarted = await startRelayProcess({ dataDir: relay.dataDir, port: relay.port });
    const again = await RelayClient.connect(restarted.address);
    try {
      assert.deepEqual(await again.getLinkData(id), data);
      await again.deleteQueue(address);
      await assert.rejects(again.getLinkData(id), relayError('AUTH', 'LGET'));
    } finally {
      await again.close();
    }
    assert.match(restarted.stderr(), /"links":1/, 'the operator\'s start line counts links, naming none');
  } finally {
    await c.close();
    await relay.stop();
    await restarted?.stop();
  }
});

describe('version 2 compatibility', () => {
  test('a version 3 client gets ConnectionError VERSION from a version 2 relay, directly and through private routing', async () => {
    const old = await startVersion2Relay();
    const forwarding = await startRelayProcess();
    const direct = await RelayClient.connect(old.address, { reconnect: false });
    const viaClient = await RelayClient.connect(forwarding.address, { reconnect: false });
    try {
      await direct.ping(); // the connection works, at version 2
      const queue = { relay: old.address, recipientId: randomBytes(24), senderId: randomBytes(24), recipientKey: generateSigningKeyPair().privateKey, queueKey: randomBytes(32) };
      await assert.rejects(direct.setLinkData(queue, linkId(), linkData()), versionError);
      await assert.rejects(direct.getLinkData(linkId()), versionError);
      // Through a version 3 forwarding relay, the version 2 destination answers the sealed LGET with CMD_UNKNOWN.
      await viaClient.pingVia([parseAddress(forwarding.address)], old.address);
      await assert.rejects(viaClient.getLinkDataVia([parseAddress(forwarding.address)], old.address, linkId()), (e: unknown) => versionError(e) && (e as ConnectionError).relay === formatAddress(old.address));
    } finally {
      await direct.close();
      await viaClient.close();
      await forwarding.stop();
      await old.close();
    }
  });

  test('a version 2 client is served by a current relay as before, and LSET and LGET are unknown to it', async () => {
    const relay = await startRelayProcess();
    const address = parseAddress(relay.address);
    const socket = tlsConnect({ host: address.host, port: address.port, rejectUnauthorized: false, minVersion: 'TLSv1.3' });
    const reader = new BlockReader();
    const blocks: Uint8Array[] = [];
    let wake: (() => void) | undefined;
    socket.on('data', (chunk: Buffer) => {
      blocks.push(...reader.push(chunk).map((b) => b.slice()));
      wake?.();
    });
    const nextBlock = async (): Promise<Uint8Array> => {
      while (blocks.length === 0) await new Promise<void>((r) => (wake = r));
      return blocks.shift()!;
    };
    try {
      const hello = decodeRelayHello(unpadBlock(await nextBlock()));
      assert.deepEqual(hello.versions, { min: 1, max: CURRENT_VERSION });
      socket.write(padBlock(encodeClientHello({ version: 2 })));
      const commands: [Uint8Array, Command][] = [
        [new Uint8Array(0), { type: 'PING' }],
        [linkId(), { type: 'LGET' }],
        [randomBytes(24), { type: 'LSET', linkId: linkId(), linkData: linkData() }],
      ];
      socket.write(encodeBatch(commands.map(([entity, c], i) => encodeTransmission(new Uint8Array(0), encodeTransmissionBody(Uint8Array.of(i), entity, encodeCommand(c))))));
      const answers = decodeBatch(await nextBlock()).map((t) => decodeResponse(decodeTransmission(t).command));
      assert.deepEqual(answers, [{ type: 'PONG' }, { type: 'ERR', code: 'CMD_UNKNOWN' }, { type: 'ERR', code: 'CMD_UNKNOWN' }]);
    } finally {
      socket.destroy();
      await relay.stop();
    }
  });
});
