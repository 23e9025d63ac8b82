/**
 * The published relay-protocol vectors (test/vectors/protocol.json, printed
 * in docs/protocol.md, "Test vectors") must be reproduced exactly by the
 * implementation, and must decode back to their stated fields.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hkdf as nobleHkdf } from '@noble/hashes/hkdf.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';
import { dh, signingPublicKey, dhPublicKey, verify } from '../../src/crypto/keys.js';
import { sha256 } from '../../src/crypto/kdf.js';
import { BLOCK_SIZE, decodeBatch, padBlock, unpadBlock } from '../../src/protocol/block.js';
import { decodeCommand, decodeResponse } from '../../src/protocol/commands.js';
import { decodeClientHello, decodeRelayHello } from '../../src/protocol/handshake.js';
import { deriveQueueKey, openMessage } from '../../src/protocol/queue-crypto.js';
import { routingKeySignedData } from '../../src/protocol/forward-crypto.js';
import { decodeTransmission, signedData } from '../../src/protocol/transmission.js';
import { MAC_KEY_LABEL, macMatches, registrationSignedData } from '../../src/protocol/authenticator.js';
import { PUSH_WINDOW_VERSION } from '../../src/protocol/version.js';
import { computeProtocolVectors, extractVectorsBlock, fieldsJson, renderVectorsMarkdown, type BlockVector, type ProtocolVectors } from '../vectors/protocol-vectors.js';
import { fromHex, hex } from './protocol-fixture.js';

const stored = JSON.parse(readFileSync(new URL('../vectors/protocol.json', import.meta.url), 'utf8')) as ProtocolVectors;

/** The full block a vector describes: u16 length, content, zeros up to blockLength. */
function blockOf(v: BlockVector): Uint8Array {
  assert.equal(v.blockLength, BLOCK_SIZE);
  const block = new Uint8Array(v.blockLength);
  const content = fromHex(v.content);
  assert.equal(content.length, v.contentLength);
  block[0] = content.length >>> 8;
  block[1] = content.length & 0xff;
  block.set(content, 2);
  assert.equal(hex(sha256(block)), v.blockSha256);
  assert.deepEqual(block, padBlock(content));
  return block;
}

test('the implementation reproduces every vector byte for byte', () => {
  assert.deepEqual(computeProtocolVectors(), stored);
});

test('docs/protocol.md prints exactly the stored vectors', () => {
  const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
  assert.equal(extractVectorsBlock(doc), renderVectorsMarkdown(stored));
});

test('the vectors cover every command and response', () => {
  assert.deepEqual(stored.commands.map((c) => c.value.type).sort(), ['ACK', 'DEL', 'GET', 'KEY', 'LGET', 'LSET', 'LSUB', 'LTRIM', 'NEW', 'NEW', 'OFF', 'PFWD', 'PING', 'PRXY', 'RFWD', 'SEND', 'SUB', 'SUB']);
  assert.deepEqual(stored.responses.map((r) => r.value.type).sort(), ['END', 'ERR', 'ERR', 'IDS', 'LENT', 'LNK', 'MSG', 'OK', 'PKEY', 'PONG', 'POW', 'PRES', 'RRES']);
  assert.deepEqual(stored.commands.filter((c) => c.value.type === 'NEW').map((c) => c.value['queueMode']), ['messaging', 'log']);
});

test('stored keys are the public keys of the stored private keys', () => {
  const k = stored.keys;
  assert.equal(hex(signingPublicKey(fromHex(k.recipientAuthPrivateKey))), k.recipientAuthPublicKey);
  assert.equal(hex(signingPublicKey(fromHex(k.senderAuthPrivateKey))), k.senderAuthPublicKey);
  assert.equal(hex(dhPublicKey(fromHex(k.recipientDhPrivateKey))), k.recipientDhPublicKey);
  assert.equal(hex(dhPublicKey(fromHex(k.relayDhPrivateKey))), k.relayDhPublicKey);
  assert.equal(hex(signingPublicKey(fromHex(k.relayIdentityPrivateKey))), k.relayIdentityPublicKey);
  assert.equal(hex(dhPublicKey(fromHex(k.routingPrivateKey))), k.routingPublicKey);
});

test('stored hellos decode to their versions', () => {
  const relay = unpadBlock(blockOf(stored.handshake.relayHello));
  const h = stored.handshake.relayHello.value;
  assert.deepEqual(decodeRelayHello(relay), {
    versions: { min: h.min, max: h.max },
    powBits: h.powBits,
    routingKey: fromHex(h.routingKey),
    routingKeySig: fromHex(h.routingKeySig),
  });
  // The routing key is certified by the relay's certificate key.
  assert.ok(verify(fromHex(stored.keys.relayIdentityPublicKey), routingKeySignedData(fromHex(h.routingKey)), fromHex(h.routingKeySig)));
  const client = unpadBlock(blockOf(stored.handshake.clientHello));
  assert.deepEqual(decodeClientHello(client), stored.handshake.clientHello.value);
});

test('stored command and response encodings decode to their stated fields', () => {
  for (const c of stored.commands) assert.deepEqual(fieldsJson(decodeCommand(fromHex(c.encoding))), c.value, c.value.type);
  for (const r of stored.responses) assert.deepEqual(fieldsJson(decodeResponse(fromHex(r.encoding))), r.value, r.value.type);
});

test('the stored sealed message opens on the recipient side of the DH', () => {
  const q = stored.queueCrypto;
  const recipientSide = deriveQueueKey(dh(fromHex(stored.keys.recipientDhPrivateKey), fromHex(stored.keys.relayDhPublicKey)));
  assert.equal(hex(recipientSide), q.queueKey);
  assert.equal(hex(dh(fromHex(stored.keys.relayDhPrivateKey), fromHex(stored.keys.recipientDhPublicKey))), q.dhSecret);
  const m = openMessage(recipientSide, fromHex(q.msgId), fromHex(q.sealed));
  assert.deepEqual({ timestamp: m.timestamp, flags: m.flags, body: hex(m.body) }, { timestamp: q.timestamp, flags: q.flags, body: q.body });
  const msg = stored.responses.find((r) => r.value.type === 'MSG')!;
  assert.equal(msg.value['encryptedBody'], q.sealed);
});

test('stored transmissions parse, and each signature verifies over sessionBinding ‖ body only', () => {
  const binding = fromHex(stored.keys.sessionBinding);
  for (const v of stored.transmissions.filter((t) => !t.macKey)) {
    const t = decodeTransmission(fromHex(v.transmission));
    assert.equal(hex(t.authenticator), v.authenticator, v.name);
    assert.equal(hex(t.corrId), v.corrId);
    assert.equal(hex(t.entityId), v.entityId);
    assert.equal(hex(t.signedBody), v.body);
    const decoded = ['IDS', 'OK', 'MSG', 'END', 'ERR', 'PONG', 'LNK', 'LENT'].includes(v.command.type) ? decodeResponse(t.command) : decodeCommand(t.command);
    assert.deepEqual(fieldsJson(decoded), v.command);
    if (v.signingPublicKey) {
      assert.equal(v.signedData, hex(signedData(binding, t.signedBody)));
      assert.ok(verify(fromHex(v.signingPublicKey), signedData(binding, t.signedBody), t.authenticator), v.name);
      assert.ok(!verify(fromHex(v.signingPublicKey), signedData(new Uint8Array(32), t.signedBody), t.authenticator), v.name);
    } else {
      assert.equal(v.authenticator, '');
    }
  }
});

test('the MAC vectors (version 5): the registering SEND signs binding ‖ label ‖ macKey ‖ body and carries macKey; the next SEND is HMAC-SHA256(macKey, binding ‖ body)', () => {
  const binding = fromHex(stored.keys.sessionBinding);
  const [register, mac] = stored.transmissions.filter((t) => t.macKey);
  assert.ok(register && mac);
  assert.equal(register.macKey, stored.keys.macKey);
  assert.equal(mac.macKey, stored.keys.macKey);
  const macKey = fromHex(stored.keys.macKey);

  const r = decodeTransmission(fromHex(register.transmission));
  assert.equal(r.authenticator.length, 96);
  assert.equal(hex(r.authenticator.subarray(64)), stored.keys.macKey);
  assert.equal(register.signingPublicKey, stored.keys.senderAuthPublicKey);
  assert.equal(register.signedData, hex(registrationSignedData(binding, macKey, r.signedBody)));
  assert.equal(register.signedData, hex(binding) + hex(MAC_KEY_LABEL) + stored.keys.macKey + register.body);
  assert.ok(verify(fromHex(register.signingPublicKey!), fromHex(register.signedData!), r.authenticator.subarray(0, 64)));
  // Not a plain signature of the same body: the label separates the two.
  assert.ok(!verify(fromHex(register.signingPublicKey!), signedData(binding, r.signedBody), r.authenticator.subarray(0, 64)));

  const m = decodeTransmission(fromHex(mac.transmission));
  assert.equal(m.authenticator.length, 32);
  assert.equal(mac.macData, hex(signedData(binding, m.signedBody)));
  assert.ok(macMatches(macKey, binding, m.signedBody, m.authenticator));
  assert.ok(!macMatches(macKey, new Uint8Array(32), m.signedBody, m.authenticator));
  assert.ok(!macMatches(new Uint8Array(32), binding, m.signedBody, m.authenticator));
  assert.equal(hex(nobleHmac(nobleSha256, macKey, fromHex(mac.macData!))), mac.authenticator);

  // Both forms are a syntax error on a connection of version 4, as they were.
  for (const v of [register, mac]) assert.throws(() => decodeTransmission(fromHex(v.transmission), PUSH_WINDOW_VERSION), /authenticator/);
});

test('the link vectors: LSET is signed by the queue\'s recipient key, LGET is unsigned and names the link ID, LNK returns the data', () => {
  const byName = (prefix: string) => stored.transmissions.find((t) => t.name.startsWith(prefix))!;
  const lset = byName('LSET');
  assert.equal(lset.entityId, stored.keys.recipientId);
  assert.equal(lset.signingPublicKey, stored.keys.recipientAuthPublicKey);
  assert.equal(lset.command['linkId'], stored.keys.linkId);
  const lget = byName('LGET');
  assert.equal(lget.entityId, stored.keys.linkId);
  assert.equal(lget.authenticator, '');
  const lnk = byName('LNK');
  assert.equal(lnk.entityId, stored.keys.linkId);
  assert.equal(lnk.corrId, lget.corrId);
  assert.equal(lnk.command['linkData'], lset.command['linkData']);
});

test('the log vectors (version 6): LSUB and LTRIM are signed by the recipient key; LENT is a push on the recipientId whose entry opens under its entryId as a message does', () => {
  const byName = (prefix: string) => stored.transmissions.find((t) => t.name.startsWith(prefix))!;
  for (const name of ['LSUB', 'LTRIM']) {
    const t = byName(name);
    assert.equal(t.entityId, stored.keys.recipientId);
    assert.equal(t.signingPublicKey, stored.keys.recipientAuthPublicKey);
  }
  const lent = byName('LENT');
  assert.equal(lent.corrId, '');
  assert.equal(lent.entityId, stored.keys.recipientId);
  assert.equal(lent.command['position'], byName('LSUB').command['position'], 'the entry at the position subscribed from');
  const q = stored.queueCrypto;
  assert.equal(lent.command['entryId'], stored.keys.entryId);
  assert.equal(lent.command['sealed'], q.sealedEntry);
  const recipientSide = deriveQueueKey(dh(fromHex(stored.keys.recipientDhPrivateKey), fromHex(stored.keys.relayDhPublicKey)));
  const e = openMessage(recipientSide, fromHex(q.entryId), fromHex(q.sealedEntry));
  assert.deepEqual({ timestamp: e.timestamp, flags: e.flags, body: hex(e.body) }, { timestamp: q.timestamp, flags: q.flags, body: q.body });
  assert.notEqual(q.sealedEntry, q.sealed, 'the same message sealed under another ID shares no byte pattern');
  assert.throws(() => openMessage(recipientSide, fromHex(q.msgId), fromHex(q.sealedEntry)), 'the entry ID is authenticated');
  // Position 300 is the u64 0x12c, big-endian.
  assert.match(stored.responses.find((r) => r.value.type === 'LENT')!.encoding, new RegExp(`^${hex(Buffer.from('LENT '))}18${stored.keys.entryId}000000000000012c`));
});

test('stored batch blocks hold the stored transmissions in order', () => {
  for (const b of stored.batches) {
    const ts = decodeBatch(blockOf(b)).map(hex);
    assert.deepEqual(ts, b.transmissions.map((name) => stored.transmissions.find((t) => t.name === name)!.transmission));
  }
});

test('a second implementation (@noble/curves, @noble/hashes) agrees on keys, DH, queue key and signatures', () => {
  const k = stored.keys;
  assert.equal(hex(ed25519.getPublicKey(fromHex(k.recipientAuthPrivateKey))), k.recipientAuthPublicKey);
  assert.equal(hex(ed25519.getPublicKey(fromHex(k.senderAuthPrivateKey))), k.senderAuthPublicKey);
  assert.equal(hex(x25519.getPublicKey(fromHex(k.recipientDhPrivateKey))), k.recipientDhPublicKey);
  assert.equal(hex(x25519.getPublicKey(fromHex(k.relayDhPrivateKey))), k.relayDhPublicKey);
  const secret = x25519.getSharedSecret(fromHex(k.relayDhPrivateKey), fromHex(k.recipientDhPublicKey));
  assert.equal(hex(secret), stored.queueCrypto.dhSecret);
  const info = new TextEncoder().encode('nightjar/relay/queue-key/v1');
  assert.equal(hex(nobleHkdf(nobleSha256, secret, new Uint8Array(0), info, 32)), stored.queueCrypto.queueKey);
  for (const t of stored.transmissions) {
    if (!t.signingPrivateKey || !t.signedData) continue;
    // A registering authenticator is the signature followed by the MAC key it registers.
    assert.equal(hex(ed25519.sign(fromHex(t.signedData), fromHex(t.signingPrivateKey))) + (t.macKey ?? ''), t.authenticator, t.name);
  }
  for (const b of stored.batches) assert.equal(hex(nobleSha256(padBlock(fromHex(b.content)))), b.blockSha256);
});
