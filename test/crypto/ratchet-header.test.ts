import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KEM_CIPHERTEXT_LENGTH, KEM_PUBLIC_KEY_LENGTH } from '../../src/crypto/kem.js';
import { RatchetError } from '../../src/crypto/ratchet-error.js';
import {
  ENCRYPTED_HEADER_LENGTH,
  ENVELOPE_OVERHEAD,
  HEADER_LENGTH,
  decodeHeader,
  encodeHeader,
  openHeader,
  parseEnvelope,
  sealHeader,
  type MessageHeader,
} from '../../src/crypto/ratchet-header.js';
import { flipped } from './bytes-fixture.js';

const ratchetError = (code: string) => (err: unknown) => err instanceof RatchetError && err.code === code;

const header: MessageHeader = {
  dh: new Uint8Array(32).fill(7),
  previousCount: 3,
  count: 0x01020304,
  kemPublicKey: new Uint8Array(KEM_PUBLIC_KEY_LENGTH).fill(8),
  kemCiphertext: new Uint8Array(KEM_CIPHERTEXT_LENGTH).fill(9),
};
const hk = new Uint8Array(32).fill(1);
const ad = Uint8Array.of(0xaa, 0xbb);
const nonce = new Uint8Array(12).fill(2);

test('sizes of the version 1 layout', () => {
  assert.equal(HEADER_LENGTH, 2312);
  assert.equal(ENCRYPTED_HEADER_LENGTH, 2340);
  assert.equal(ENVELOPE_OVERHEAD, 2359);
});

test('header encodes at fixed offsets and decodes back', () => {
  const bytes = encodeHeader(header);
  assert.equal(bytes.length, HEADER_LENGTH);
  assert.equal(Buffer.from(bytes.subarray(32, 40)).toString('hex'), '0000000301020304');
  assert.deepEqual(decodeHeader(bytes), header);
  assert.throws(() => decodeHeader(bytes.subarray(1)), ratchetError('BAD_HEADER'));
});

test('sealed header: prefix, nonce, then ciphertext; opens only with its key and AD', () => {
  const head = sealHeader(hk, header, ad, nonce);
  assert.equal(Buffer.from(head.subarray(0, 3)).toString('hex'), '010924');
  assert.deepEqual(head.subarray(3, 15), nonce);
  const message = new Uint8Array([...head, ...new Uint8Array(20)]);
  const envelope = parseEnvelope(message);
  assert.deepEqual(openHeader(hk, envelope, ad), header);
  assert.equal(openHeader(new Uint8Array(32), envelope, ad), null);
  assert.equal(openHeader(hk, envelope, Uint8Array.of(0xaa)), null);
});

test('parseEnvelope checks version, header length and minimum size', () => {
  const message = new Uint8Array([...sealHeader(hk, header, ad, nonce), ...new Uint8Array(20)]);
  assert.equal(parseEnvelope(message).body.length, 20);
  assert.throws(() => parseEnvelope(message.subarray(0, 2)), ratchetError('BAD_MESSAGE'));
  assert.throws(() => parseEnvelope(message.subarray(0, message.length - 1)), ratchetError('BAD_MESSAGE'));
  const v2 = message.slice();
  v2[0] = 2;
  assert.throws(() => parseEnvelope(v2), ratchetError('UNSUPPORTED_VERSION'));
  assert.throws(() => parseEnvelope(flipped(message, 2)), ratchetError('BAD_MESSAGE'));
});
