import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CryptoError } from '../../src/crypto/errors.js';
import { dh, generateDhKeyPair } from '../../src/crypto/keys.js';
import { hkdf } from '../../src/crypto/kdf.js';
import { open, seal } from '../../src/crypto/aead.js';
import { ID_LENGTH } from '../../src/protocol/commands.js';
import { deriveQueueKey, openMessage, sealMessage, type DeliveredMessage } from '../../src/protocol/queue-crypto.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { arbBody, bytesOf, hex, PLAIN } from './protocol-fixture.js';

const decryptError = (e: unknown) => e instanceof CryptoError && e.code === 'DECRYPT';
const arbMessage: fc.Arbitrary<DeliveredMessage> = fc.record({
  timestamp: fc.integer({ min: 0, max: 2 ** 40 }),
  flags: fc.integer({ min: 0, max: 255 }),
  body: arbBody(4096),
}, PLAIN);

test('relay and recipient derive the same queue key from their X25519 keys', () => {
  const relay = generateDhKeyPair();
  const recipient = generateDhKeyPair();
  const a = deriveQueueKey(dh(relay.privateKey, recipient.publicKey));
  const b = deriveQueueKey(dh(recipient.privateKey, relay.publicKey));
  assert.deepEqual(a, b);
  assert.equal(a.length, 32);
  const secret = dh(relay.privateKey, recipient.publicKey);
  assert.deepEqual(a, hkdf(secret, new Uint8Array(0), 'nightjar/relay/queue-key/v1', 32));
});

test('seal then open returns timestamp, flags and body', () => {
  fc.assert(
    fc.property(bytesOf(32), bytesOf(ID_LENGTH), arbMessage, (key, msgId, m) => {
      const sealed = sealMessage(key, msgId, m);
      assert.equal(sealed.length, 8 + 1 + m.body.length + 16);
      assert.deepEqual(openMessage(key, msgId, sealed), m);
    }),
    { numRuns: 200 },
  );
});

test('layout: ChaCha20-Poly1305 under the queue key, nonce msgId[0..12], aad msgId, plaintext timestamp u64 | flags u8 | body', () => {
  const key = new Uint8Array(32).fill(7);
  const msgId = new Uint8Array(ID_LENGTH).map((_, i) => i);
  const sealed = sealMessage(key, msgId, { timestamp: 0x0102030405, flags: 0xaa, body: Uint8Array.of(1, 2, 3) });
  assert.equal(hex(open(key, msgId.subarray(0, 12), sealed, msgId)), '0000000102030405' + 'aa' + '010203');
});

test('what the recipient gets shares no run of bytes with what the sender sent', () => {
  fc.assert(
    fc.property(bytesOf(32), bytesOf(ID_LENGTH), fc.uint8Array({ minLength: 64, maxLength: 512 }), (key, msgId, body) => {
      const sealed = Buffer.from(sealMessage(key, msgId, { timestamp: 1, flags: 0, body }));
      // No 16-byte window of the body appears in the sealed bytes (chance ~2^-128 per window).
      for (let at = 0; at + 16 <= body.length; at += 16) assert.equal(sealed.indexOf(Buffer.from(body.subarray(at, at + 16))), -1);
    }),
    { numRuns: 50 },
  );
});

test('wrong key, wrong message ID, or any tampered byte is CryptoError DECRYPT', () => {
  fc.assert(
    fc.property(bytesOf(32), bytesOf(32), bytesOf(ID_LENGTH), arbMessage, fc.nat(), fc.integer({ min: 1, max: 255 }), (key, other, msgId, m, at, mask) => {
      const sealed = sealMessage(key, msgId, m);
      if (hex(key) !== hex(other)) assert.throws(() => openMessage(other, msgId, sealed), decryptError);
      const tampered = sealed.slice();
      tampered[at % tampered.length]! ^= mask;
      assert.throws(() => openMessage(key, msgId, tampered), decryptError);
      const otherId = msgId.slice();
      otherId[at % ID_LENGTH]! ^= mask; // the AAD covers all 24 bytes, not only the nonce
      assert.throws(() => openMessage(key, otherId, sealed), decryptError);
      assert.throws(() => openMessage(key, msgId, sealed.subarray(0, at % sealed.length)), decryptError);
    }),
    { numRuns: 200 },
  );
});

test('openMessage refuses message IDs of the wrong length', () => {
  const key = new Uint8Array(32);
  const sealed = sealMessage(key, new Uint8Array(ID_LENGTH), { timestamp: 0, flags: 0, body: new Uint8Array(0) });
  assert.throws(() => openMessage(key, new Uint8Array(12), sealed), RangeError);
});

test('a sealed plaintext too short for its header is a ProtocolError, not a crash', () => {
  // Only a holder of the queue key can make such a ciphertext; the recipient still gets a typed error.
  const key = new Uint8Array(32).fill(1);
  const msgId = new Uint8Array(ID_LENGTH).fill(2);
  const short = seal(key, msgId.subarray(0, 12), Uint8Array.of(1, 2, 3), msgId);
  assert.throws(() => openMessage(key, msgId, short), (e: unknown) => e instanceof ProtocolError);
});
